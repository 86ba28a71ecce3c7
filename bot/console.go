package bot

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/rs/zerolog"
)

// ConsoleUser is who the console starts as when Names has no "me".
const ConsoleUser = "U00CONSOLE"

// Console is the bot in a terminal: each line read is what a user would write
// after @dobrobot, and every effect is printed, DMs with their recipient.
// Lines starting with / are console commands (/as USER, /who, /help, /quit).
type Console struct {
	Service Service
	Store   Outbox
	In      io.Reader
	Out     io.Writer
	// Names maps readable names to user IDs (/as approver); IDs print as
	// names. The console starts as Names["me"], or ConsoleUser without one.
	Names map[string]string
	// Prompt is printed before each line read (for people at a terminal).
	// Without it (a script on stdin) each command also waits for the hooks
	// it started, so a scripted release runs the same way every time.
	Prompt bool
	Log    zerolog.Logger
	Now    func() time.Time
	// Export writes the audit exports an admin asks for with the audit
	// command; the console writes each to a new file in Dir (the working
	// directory if ""), named as in Slack, and prints its path.
	Export Exporter
	Dir    string

	mu   sync.Mutex // serialises output and outbox draining
	user string
	seq  int
	wake chan struct{}
}

// Notify is the Service's hook: a hook result committed effects to print.
func (c *Console) Notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run reads commands until the end of input (or /quit), then waits for
// running hooks, prints what they reported, and returns.
func (c *Console) Run(ctx context.Context) error {
	c.wake = make(chan struct{}, 1)
	if _, ok := c.Names["me"]; !ok {
		names := map[string]string{"me": ConsoleUser}
		for k, v := range c.Names {
			names[k] = v
		}
		c.Names = names
	}
	c.user = c.Names["me"] // users.me, or ConsoleUser
	if c.Now == nil {
		c.Now = time.Now
	}
	if err := c.Service.Recover(ctx); err != nil {
		return err
	}
	if err := c.drain(ctx); err != nil {
		return err
	}
	printerDone := make(chan struct{})
	printerCtx, stopPrinter := context.WithCancel(ctx)
	go func() {
		defer close(printerDone)
		for {
			select {
			case <-printerCtx.Done():
				return
			case <-c.wake:
				if err := c.drain(printerCtx); err != nil && printerCtx.Err() == nil {
					c.Log.Error().Err(err).Msg("console: could not read the outbox")
				}
			}
		}
	}()
	defer func() {
		stopPrinter()
		<-printerDone
	}()

	in := bufio.NewScanner(c.In)
	in.Buffer(make([]byte, 0, 64*1024), 1<<20)
	run := fmt.Sprintf("%d", c.Now().UnixNano())
	for {
		if c.Prompt {
			c.printf("%s> ", c.name(c.user))
		}
		if !in.Scan() {
			break
		}
		line := strings.TrimSpace(in.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "/") {
			if quit := c.slash(line); quit {
				break
			}
			continue
		}
		c.seq++
		m := commands.Message{
			EventID: fmt.Sprintf("console-%s-%d", run, c.seq), User: c.user, Channel: "console",
			Text: stripMention(line), Via: commands.ViaConsole, Time: c.Now().UTC(),
		}
		c.printf("%s: %s\n", c.name(c.user), line)
		if fresh, err := c.Service.Receive(ctx, m); err != nil {
			return fmt.Errorf("console: %w", err)
		} else if fresh {
			if err := c.Service.Handle(ctx, m); err != nil {
				c.Log.Error().Err(err).Msg("command failed")
			}
		}
		if !c.Prompt {
			c.Service.Wait()
		}
		if err := c.drain(ctx); err != nil {
			return err
		}
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("console: reading input: %w", err)
	}
	c.Service.Wait()
	return c.drain(ctx)
}

var userID = regexp.MustCompile(`^[UW][A-Z0-9]{1,20}$`)

// ConsoleGroups is the console's commands.Groups: it knows users only. A
// user ID stands for that user; a user group or channel has no member the
// console could know, so it grants nobody a role and is told nothing.
type ConsoleGroups struct{}

// Members returns id itself for a user ID, and no one for a user group or a
// channel.
func (ConsoleGroups) Members(_ context.Context, id string) ([]string, error) {
	if isGroup(id) {
		return nil, nil
	}
	return []string{id}, nil
}

var mentionPrefix = regexp.MustCompile(`^(?i)(@dobrobot|<@[A-Z0-9]+>)[:,]?\s+`)

func stripMention(s string) string { return mentionPrefix.ReplaceAllString(s, "") }

// slash handles a console command; it reports whether to quit.
func (c *Console) slash(line string) bool {
	f := strings.Fields(line)
	switch strings.ToLower(f[0]) {
	case "/as":
		if len(f) != 2 {
			c.printf("usage: /as NAME or /as USER_ID (names: %s)\n", c.nameList())
			return false
		}
		if id, ok := c.Names[strings.ToLower(f[1])]; ok {
			c.user = id
		} else if id := strings.ToUpper(f[1]); userID.MatchString(id) {
			c.user = id
		} else {
			c.printf("%q is neither a known name (%s) nor a user ID like U0123ABC\n", f[1], c.nameList())
			return false
		}
		c.printf("(you are now %s)\n", c.describe(c.user))
	case "/who", "/whoami":
		c.printf("(you are %s)\n", c.describe(c.user))
	case "/quit", "/exit":
		return true
	case "/help":
		c.printf("Type what you would write after @dobrobot, e.g. dobro DEMO-1, queue, help.\n"+
			"/as NAME      act as someone else (%s, or a user ID)\n"+
			"/who          who you are now\n"+
			"/quit         leave (also end of input)\n", c.nameList())
	default:
		c.printf("unknown console command %s: try /help\n", f[0])
	}
	return false
}

func (c *Console) nameList() string {
	var names []string
	for n := range c.Names {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func (c *Console) describe(id string) string {
	if n := c.name(id); n != id {
		return fmt.Sprintf("%s, %s", n, id)
	}
	return id
}

// name returns the readable name of a user ID, or the ID.
func (c *Console) name(id string) string {
	best := ""
	for n, v := range c.Names {
		if v == id && (best == "" || n < best) {
			best = n
		}
	}
	if best == "" {
		return id
	}
	return best
}

// drain prints and removes every pending effect.
func (c *Console) drain(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		effects, err := c.Store.Pending(ctx, 100)
		if err != nil {
			return fmt.Errorf("console: outbox: %w", err)
		}
		if len(effects) == 0 {
			return nil
		}
		ids := make([]uint64, 0, len(effects))
		for _, e := range effects {
			if e.Kind == commands.EffectFile {
				// Written here, where the command's context is.
				e.Text = append(e.Text[:len(e.Text):len(e.Text)], commands.Plain(" "+c.writeExport(ctx, e)))
			}
			c.print(e)
			ids = append(ids, e.ID)
		}
		if err := c.Store.Delivered(ctx, ids...); err != nil {
			return fmt.Errorf("console: outbox: %w", err)
		}
	}
}

func (c *Console) print(e commands.Effect) {
	var head string
	switch e.Kind {
	case commands.EffectReply:
		head = "  → to " + c.name(e.User) + " only"
	case commands.EffectCard:
		head = "  ▣ card " + e.Release.Ticket
		e.Text = commands.CardText(*e.Release, c.Now())
		e.Legacy = ""
	case commands.EffectThread:
		head = "  ↳ thread of " + e.Release.Ticket
	case commands.EffectDM:
		head = "  ✉ DM to " + c.name(e.User)
	case commands.EffectPost:
		head = "  ▤ channel"
	case commands.EffectFile:
		head = "  ⇩ file for " + c.name(e.User)
	default:
		head = "  ? " + string(e.Kind)
	}
	text := c.text(e.Text)
	if len(e.Text) == 0 && e.Legacy != "" {
		text = c.plain(e.Legacy) // written by an earlier version, in Slack mrkdwn
	}
	text = strings.ReplaceAll(text, "\n", "\n      ")
	c.printRaw(fmt.Sprintf("%s: %s\n", head, text))
	for _, b := range e.Buttons {
		c.printRaw(fmt.Sprintf("      [%s] → %s\n", b.Label, b.Command))
	}
}

var (
	mentionRef = regexp.MustCompile(`<@([A-Z0-9]+)>`)
	linkRef    = regexp.MustCompile(`<(https?://[^|>]+)\|([^>]+)>`)
)

// plain turns Slack mrkdwn into terminal text: the text of an effect an
// earlier version wrote to the outbox before effects were structured.
func (c *Console) plain(s string) string {
	s = mentionRef.ReplaceAllStringFunc(s, func(m string) string { return "@" + c.name(m[2:len(m)-1]) })
	s = linkRef.ReplaceAllString(s, "$2")
	return unescape(s)
}

// text renders the core's structured text for the terminal: people by
// their console names, a program's output (a hook's, the report's table)
// as its own lines, the rest as the core's plain rendering has it.
func (c *Console) text(t commands.Text) string {
	var b strings.Builder
	for i, s := range t {
		switch s.Kind {
		case commands.SpanPerson:
			b.WriteString("@" + c.name(s.ID))
			continue
		case commands.SpanOutput:
			// A block of its own lines: the terminal needs no fence
			// around it (print indents every line of an effect).
			b.WriteString("\n" + s.Text)
			continue
		}
		b.WriteString(t[i : i+1].String())
	}
	return b.String()
}

func (c *Console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.Out, format, args...)
}

// printRaw writes with c.mu already held.
func (c *Console) printRaw(s string) { io.WriteString(c.Out, s) }

// writeExport writes the audit export e asks for to a new file and says
// where, or why it could not. A file of that name is never overwritten:
// the name gets -2, -3, … instead.
func (c *Console) writeExport(ctx context.Context, e commands.Effect) string {
	if e.Export == nil || c.Export == nil {
		return "This console cannot export the audit log: use dobrobot audit export."
	}
	dir := c.Dir
	if dir == "" {
		dir = "."
	}
	name := e.Export.FileName(c.Now())
	base, ext := strings.TrimSuffix(name, "."+e.Export.Format), "."+e.Export.Format
	var f *os.File
	var err error
	for n := 1; n <= 100; n++ {
		try := name
		if n > 1 {
			try = fmt.Sprintf("%s-%d%s", base, n, ext)
		}
		f, err = os.OpenFile(filepath.Join(dir, try), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return fmt.Sprintf("Could not write the audit log: %v.", err)
	}
	path := f.Name()
	err = c.Export(ctx, e.Export.Filter(), e.Export.Format, f)
	size, serr := f.Seek(0, io.SeekCurrent)
	if cerr := f.Close(); err == nil {
		err = cmp.Or(serr, cerr)
	}
	if err != nil {
		os.Remove(path)
		return fmt.Sprintf("Could not write the audit log: %v.", err)
	}
	return fmt.Sprintf("Written to %s (%d bytes).", path, size)
}
