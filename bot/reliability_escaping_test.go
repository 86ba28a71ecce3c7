package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
)

// Output escaping as Slack receives it (docs/reliability.md, T53): every text and
// every Block Kit text object the bot sends holds no unescaped <, > or &,
// and no markup but the bot's own, whatever users, the tracker and hooks
// wrote. (commands has the same check on the core's effects.)

var (
	slackTicketLinkRE = regexp.MustCompile(`^<https://jira\.example\.com/browse/([A-Z][A-Z0-9]+-[0-9]+)\|([A-Z][A-Z0-9]+-[0-9]+)>$`)
	slackUserRefRE    = regexp.MustCompile(`^<@([UW][A-Z0-9]+)>$`)
	slackChannelRefRE = regexp.MustCompile(`^<#C[A-Z0-9]+>$`)
	slackDateRE       = regexp.MustCompile(`^<!date\^[0-9]+\^\{date_short_pretty\} \{time\}\|[0-9: UTC-]+>$`)
)

// slackMarkupProblems returns every piece of s that is neither escaped text
// nor the bot's own markup (mentions of users, ticket links, the release
// channel, dates).
func slackMarkupProblems(s string, users []string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '<':
			j := strings.IndexByte(s[i:], '>')
			if j < 0 {
				out = append(out, fmt.Sprintf("unclosed < in %q", s[max(0, i-30):min(len(s), i+40)]))
				continue
			}
			tok := s[i : i+j+1]
			m := slackUserRefRE.FindStringSubmatch(tok)
			l := slackTicketLinkRE.FindStringSubmatch(tok)
			if !(m != nil && slices.Contains(users, m[1])) && !(l != nil && l[1] == l[2]) &&
				!slackChannelRefRE.MatchString(tok) && !slackDateRE.MatchString(tok) {
				out = append(out, fmt.Sprintf("markup %q", tok))
			}
			i += j
		case '>':
			out = append(out, fmt.Sprintf("unescaped > in %q", s[max(0, i-30):min(len(s), i+40)]))
		case '&':
			if r := s[i:]; !strings.HasPrefix(r, "&amp;") && !strings.HasPrefix(r, "&lt;") && !strings.HasPrefix(r, "&gt;") {
				out = append(out, fmt.Sprintf("unescaped & in %q", s[max(0, i-30):min(len(s), i+40)]))
			}
		}
	}
	return out
}

// blockTexts returns the text of every text object in Block Kit JSON.
func blockTexts(t *testing.T, raw string) []string {
	t.Helper()
	var out []string
	for _, o := range textObjects(t, raw) {
		out = append(out, o.Text)
	}
	return out
}

// nonVerbatim returns the text of every mrkdwn text object in Block Kit JSON
// that is not verbatim: Slack's automatic parsing may turn words in such
// text into links or mentions (issue 12, item 14).
func nonVerbatim(t *testing.T, raw string) []string {
	t.Helper()
	var out []string
	for _, o := range textObjects(t, raw) {
		if o.Type == slack.MarkdownType && !o.Verbatim {
			out = append(out, o.Text)
		}
	}
	return out
}

// textObjects returns every text object in Block Kit JSON.
func textObjects(t *testing.T, raw string) []slack.TextBlockObject {
	t.Helper()
	if raw == "" {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("blocks %s: %v", raw, err)
	}
	var out []slack.TextBlockObject
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if typ, _ := v["type"].(string); typ == slack.MarkdownType || typ == slack.PlainTextType {
				if text, ok := v["text"].(string); ok {
					verbatim, _ := v["verbatim"].(bool)
					out = append(out, slack.TextBlockObject{Type: typ, Text: text, Verbatim: verbatim})
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return out
}

var slackHostile = []string{
	"<!channel>", "<!here>", "<!everyone>", "<!subteam^S01QA|@qa>", "<@U0EVIL>", "<<@U0EVIL>>", "<@W0EVIL|admin>",
	"<#C0OTHER|general>", "<https://evil.example|click me>", "&lt;!channel&gt;", "&amp;lt;!here&amp;gt;",
	"a & b", "a &lt; b &gt; c", "<<!channel>>", "&amp", "*bold* `code`", "\u202e<!here>",
	"@here", "@channel", "@everyone", "@qa", "#general", "https://evil.example/x",
}

// hostileTracker answers every ticket with hostile text in every field.
type hostileTracker struct{ text string }

func (h hostileTracker) Ticket(_ context.Context, key string) (commands.Ticket, error) {
	return commands.Ticket{Key: key, Project: commands.ProjectOf(key), Summary: h.text, Status: h.text, Assignee: h.text,
		FixVersions: []string{h.text}, Components: []string{h.text, "backend"}, URL: "https://jira.example.com/browse/" + key}, nil
}

// failingHook fails with hostile output.
type failingHook struct{ text string }

func (f failingHook) Run(_ context.Context, job commands.Job) commands.HookResult {
	return commands.HookResult{Phase: job.Phase, Attempt: job.Attempt, ExitCode: 2, Error: "exited " + f.text, Output: f.text}
}

func TestSlackOutputEscaping(t *testing.T) {
	fs := fakeslack.New(t)
	hostile := strings.Join(slackHostile, " ")
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), hostileTracker{hostile}, func(_ *Slack, c *commands.Config) {
		c.Hooks = commands.Hooks{Start: failingHook{hostile}, Finish: failingHook{hostile}}
	})
	// What users type reaches the bot as Slack sends it: markup they
	// picked (mentions, links) raw, typed < > & escaped.
	// A command holding a bidirectional override is refused (issue 12,
	// item 11): what users type leaves it out; the tracker and the hooks
	// still carry it.
	said := strings.ReplaceAll(hostile, "\u202e", "")
	typed := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(said)
	long := strings.Repeat("&<>", 1200) // escaped, longer than a section may be
	for _, text := range []string{
		"dobro PAY-1 " + said + " no_need_admin", "dobro PAY-2 " + typed, "dobro PAY-3 " + long,
		"dobro " + hostile, hostile, typed,
		"reject PAY-2 " + said, "lock backend " + typed, "queue", "unlock backend", "cancel PAY-3 " + long,
	} {
		user := ann
		switch {
		case strings.HasPrefix(text, "reject"):
			user = bob
		case strings.HasPrefix(text, "lock"), strings.HasPrefix(text, "unlock"):
			user = adm
		}
		do(t, fs, fs.EventEnvelope(fakeslack.Mention(user, releaseChannel, text)))
		// Each command's effects are delivered before the next one, so
		// that no card update is folded into a later one and the number
		// of texts checked does not depend on the machine's load.
		h.settle(t)
	}
	do(t, fs, fs.ClickEnvelope(fakeslack.ClickOn(bob, button(t, fs, bob, "accept PAY-1"))))
	h.settle(t)
	if got := h.state(t, "PAY-1"); got != commands.StateAccepted {
		t.Fatalf("PAY-1 after the click: %s, want accepted", got)
	}
	do(t, fs, fs.EventEnvelope(fakeslack.DM(ann, "dep start PAY-1")))
	h.settle(t)
	if got := h.state(t, "PAY-1"); got != commands.StateFailed {
		t.Fatalf("PAY-1 after its start hook: %s, want failed", got)
	}
	for _, text := range []string{"status PAY-1", "log PAY-1", "history", "queue", "dep finish PAY-1"} {
		do(t, fs, fs.EventEnvelope(fakeslack.DM(ann, text)))
		h.settle(t)
	}
	if !slices.ContainsFunc(h.audit(t, "PAY-1"), func(a string) bool { return strings.HasSuffix(a, ":hook_failed") }) {
		t.Fatalf("PAY-1's finish hook failure is not in its audit: %v", h.audit(t, "PAY-1"))
	}

	users := []string{ann, bob, adm}
	checked, objects, literal := 0, 0, 0
	for _, c := range fs.Calls("") {
		switch c.Method {
		case "chat.postMessage", "chat.update", "chat.postEphemeral":
		default:
			continue
		}
		// Slack's automatic parsing (link_names, parse=full) would turn a
		// literal @here in the message text into a mention; parse=none
		// asks for no processing of the text (issue 12, item 14).
		if got := c.Args.Get("parse"); got != "none" {
			t.Errorf("%s to %s: parse=%q, want \"none\"", c.Method, c.Args.Get("channel"), got)
		}
		if got := c.Args.Get("link_names"); got != "" && got != "false" && got != "0" {
			t.Errorf("%s to %s: link_names=%q, want it unset", c.Method, c.Args.Get("channel"), got)
		}
		for _, text := range nonVerbatim(t, c.Args.Get("blocks")) {
			t.Errorf("%s to %s: a mrkdwn text object without verbatim: true: %q", c.Method, c.Args.Get("channel"), clipText(text, 80))
		}
		objects += len(textObjects(t, c.Args.Get("blocks")))
		texts := append([]string{c.Args.Get("text")}, blockTexts(t, c.Args.Get("blocks"))...)
		for _, text := range texts {
			checked++
			if strings.Contains(text, "@here") || strings.Contains(text, "@everyone") {
				literal++
			}
			for _, p := range slackMarkupProblems(text, users) {
				t.Errorf("%s to %s: %s", c.Method, c.Args.Get("channel"), p)
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d texts checked", checked)
	}
	if literal == 0 {
		t.Errorf("no text carried a literal @here or @everyone: the check of how they are sent checked nothing")
	}
	t.Logf("FIGURE escaping (Slack): %d Slack texts and Block Kit text objects checked, 0 unescaped; %d block text objects all verbatim, %d texts carrying a literal @here/@everyone all sent with parse=none and no link_names", checked, objects, literal)
}

// FuzzCardMessage: any text in any field of a release renders to a card
// whose every text object holds nothing but escaped text and the bot's own
// markup.
func FuzzCardMessage(f *testing.F) {
	for _, s := range slackHostile {
		if strings.HasPrefix(s, "https://") {
			// x is also the release's URL, which the tracker gives and the
			// card links to: a URL there is not hostile text.
			continue
		}
		f.Add(s, 1)
	}
	f.Add("&", 4000)
	f.Add("<@U0EVIL>", 300)
	f.Fuzz(func(t *testing.T, x string, repeat int) {
		if repeat < 1 || repeat > 5000 || len(x)*repeat > 50000 {
			return
		}
		long := strings.Repeat(x, repeat)
		now := time.Unix(1700000000, 0)
		r := commands.Release{ID: 7, Ticket: "PAY-7", Summary: long, Note: long, Reason: long, URL: x, State: commands.StateFailed,
			Requester: ann, Approver: bob, Admin: adm, Components: []string{long, "backend"}, Locks: []string{"backend"},
			Created: now, Updated: now, LastHook: &commands.HookResult{Phase: commands.PhaseStart, Error: long}}
		fallback, blocks := cardMessage(r, now)
		raw, err := json.Marshal(blocks)
		if err != nil {
			t.Fatal(err)
		}
		texts := append([]string{fallback}, blockTexts(t, string(raw))...)
		// The core's texts as this adapter renders them: user text in
		// every kind of span that holds it (moved here from the core's
		// FuzzOutputEscaping with the rendering).
		texts = append(texts, mrkdwnText(commands.Text{commands.Plain(x), commands.Component(x), commands.Code(x), commands.Output(x),
			commands.TicketRef(r), commands.Plain(testMe.commandText(x))}))
		texts = append(texts, mrkdwnText(commands.CardText(r, now)))
		// escape also neutralises control and bidirectional characters
		// (issue 12, item 11), so its entities reverse to the neutralised
		// text, not always to x itself.
		if got := unescape(escape(x)); got != commands.Neutralise(x) {
			t.Fatalf("unescape(escape(%q)) = %q, want Neutralise's %q", x, got, commands.Neutralise(x))
		}
		for _, b := range textBlocks(escape(long), []commands.Button{{Label: "Go", Command: "accept PAY-7"}}) {
			raw, _ := json.Marshal(b)
			texts = append(texts, blockTexts(t, string(raw))...)
		}
		for _, text := range texts {
			if p := slackMarkupProblems(text, []string{ann, bob, adm}); len(p) > 0 {
				t.Fatalf("%q × %d: %v", x, repeat, p)
			}
		}
		// Every mrkdwn text object is verbatim, so Slack's automatic
		// parsing cannot make a mention of a literal @here (item 14).
		unparsed := nonVerbatim(t, string(raw))
		for _, b := range textBlocks(escape(long), []commands.Button{{Label: "Go", Command: "accept PAY-7"}}) {
			raw, _ := json.Marshal(b)
			unparsed = append(unparsed, nonVerbatim(t, string(raw))...)
		}
		if len(unparsed) > 0 {
			t.Fatalf("%q × %d: %d mrkdwn text objects without verbatim: true, the first %q", x, repeat, len(unparsed), clipText(unparsed[0], 80))
		}
	})
}
