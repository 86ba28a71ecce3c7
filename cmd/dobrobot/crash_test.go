package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/failpoint"
	"github.com/dobrobot/dobrobot/storage"
)

// The crash tests run the real binary, built with the failpoints tag,
// against fakeslack, kill it with SIGKILL (at a failpoint or at a random
// time), start it again, and check the database between runs.

// binaries are built once for the whole test run.
var binaries struct {
	once      sync.Once
	dir       string
	bot, hook string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// testBinaries returns dobrobot built with the failpoints tag and the fake
// hook program, building them on first use.
func testBinaries(t *testing.T) (bot, hook string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "dobrobot-test-bin")
		if err != nil {
			binaries.err = err
			return
		}
		binaries.dir = dir
		binaries.bot, binaries.hook = filepath.Join(dir, "dobrobot"), filepath.Join(dir, "fakehook")
		for _, b := range [][]string{
			{"build", "-tags", "failpoints", "-o", binaries.bot, "."},
			{"build", "-o", binaries.hook, "../../commands/hook/internal/fakehook"},
		} {
			if out, err := exec.Command("go", b...).CombinedOutput(); err != nil {
				binaries.err = fmt.Errorf("go %s: %v\n%s", strings.Join(b, " "), err, out)
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.bot, binaries.hook
}

// The people and places of the crash tests.
const (
	channel   = "C0RELEASE"
	requester = "U0ANN"
	approver  = "U0APPROVER"
	admin     = "U0ADMIN"
)

const crashTickets = `tickets:
  - {key: PAY-1, summary: Faster checkout, status: Ready, components: [backend, payments]}
  - {key: PAY-2, summary: Receipts, status: Ready, components: [backend]}
  - {key: PAY-3, summary: Refunds, status: Ready, components: [payments]}
  - {key: PAY-4, summary: Widget, status: Ready, components: [ios]}
  - {key: PAY-5, summary: Dark mode, status: Ready, components: [ios, backend]}
  - {key: PAY-6, summary: Docs, status: Ready, components: [docs]}
`

// world is one database, one fake Slack and the files around them, on which
// dobrobot runs are started and killed.
type world struct {
	t      *testing.T
	bin    string
	slack  *fakeslack.Server
	dir    string
	db     string
	record string // every hook spawn appends a line here
	env    []string
	runs   int
}

// worldOptions tune newWorld.
type worldOptions struct {
	seed      string        // a database file to start from
	hookSleep time.Duration // how long each hook runs
	http      bool          // turn on http.listen (127.0.0.1:0)
	cancel    bool          // configure a cancel hook too
}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	bin, hook := testBinaries(t)
	// Short paths: the admin socket's must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "dbt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	w := &world{t: t, bin: bin, slack: fakeslack.New(t), dir: dir, db: filepath.Join(dir, "bot.db"), record: filepath.Join(dir, "hooks.jsonl")}
	// Slack redelivers an envelope that was not acked, time-compressed.
	w.slack.SetRetries(time.Second, 0, 500*time.Millisecond, time.Second, 2*time.Second)
	if o.seed != "" {
		data, err := os.ReadFile(o.seed)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(w.db, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if o.hookSleep == 0 {
		o.hookSleep = 300 * time.Millisecond
	}
	hookExec := func() string {
		return fmt.Sprintf("[%q, -record, %q, -sleep, %s]", hook, w.record, o.hookSleep)
	}
	cfg := `
slack: {app_token: "${SLACK_APP_TOKEN}", bot_token: "${SLACK_BOT_TOKEN}", api_url: ` + w.slack.URL + `, channel: ` + channel + `}
storage: {path: ` + w.db + `}
tracker: {kind: file, file: tickets.yaml, url: https://jira.example.com}
roles: {approvers: [` + approver + `], admins: [` + admin + `]}
components: [backend, payments, ios]
hooks:
  start: {exec: ` + hookExec() + `, timeout: 30s}
  finish: {exec: ` + hookExec() + `, timeout: 30s}
`
	if o.cancel {
		cfg += "  cancel: {exec: " + hookExec() + ", timeout: 30s}\n"
	}
	if o.http {
		cfg += "http: {listen: \"127.0.0.1:0\"}\n"
	}
	for name, body := range map[string]string{"tickets.yaml": crashTickets, "dobrobot.yaml": cfg} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w.env = append(os.Environ(), "SLACK_APP_TOKEN="+fakeslack.AppToken, "SLACK_BOT_TOKEN="+fakeslack.BotToken,
		"DOBROBOT_CONFIG="+filepath.Join(dir, "dobrobot.yaml"))
	return w
}

// proc is one `dobrobot run` process.
type proc struct {
	w    *world
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
}

// syncBuffer is a bytes.Buffer safe for a process to write while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start starts `dobrobot run` with failpoints armed (none if "") and waits
// until Slack said hello to it.
func (w *world) start(failpoints string) *proc {
	w.t.Helper()
	hellos := w.slack.Hellos()
	p := w.spawn(failpoints)
	if !w.slack.WaitFor(20*time.Second, func(st fakeslack.State) bool { return st.Hellos > hellos }) {
		p.kill()
		w.t.Fatalf("run %d did not connect to Slack\n%s", w.runs, p.logs)
	}
	return p
}

// spawn starts `dobrobot run` without waiting for it to connect.
func (w *world) spawn(failpoints string) *proc {
	w.t.Helper()
	w.runs++
	p := &proc{w: w, logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(w.bin, "--log-level", "debug", "run")
	p.cmd.Env = append(slices.Clone(w.env), failpoint.EnvVar+"="+failpoints)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	w.t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.w.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			p.w.t.Errorf("exit after SIGTERM: %v\n%s", p.err, p.logs)
		}
	case <-time.After(45 * time.Second):
		p.kill()
		p.w.t.Fatalf("no exit within 45 s of SIGTERM\n%s", p.logs)
	}
}

// waitCrash waits for the process to kill itself at failpoint name.
func (p *proc) waitCrash(name string) {
	p.w.t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
		p.w.t.Fatalf("the bot did not reach failpoint %s\n%s", name, p.logs)
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) {
		p.w.t.Fatalf("the bot exited with %v, want SIGKILL at %s\n%s", p.err, name, p.logs)
	}
	if ws, _ := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		p.w.t.Fatalf("the bot exited with %v, want SIGKILL at %s\n%s", p.err, name, p.logs)
	}
	if !strings.Contains(p.logs.String(), "failpoint "+name+":") {
		p.w.t.Fatalf("the bot was killed, but not at failpoint %s\n%s", name, p.logs)
	}
}

// eventSeq numbers events across worlds: a world that starts from another's
// database must not reuse its event IDs (the inbox would take them for
// redeliveries).
var eventSeq atomic.Int64

// mention is a mention of the bot by user in the release channel, with an
// event ID no other world uses.
func mention(user, text string) fakeslack.Event {
	e := fakeslack.Mention(user, channel, text)
	e.ID = fmt.Sprintf("Ev%08dCRASH", eventSeq.Add(1))
	return e
}

// send delivers text from user as a mention in the release channel.
func (w *world) send(user, text string) fakeslack.Envelope {
	w.t.Helper()
	env, err := w.slack.Deliver(mention(user, text))
	if err != nil {
		w.t.Fatalf("deliver %q: %v", text, err)
	}
	return env
}

// waitReply waits for an ephemeral reply to user containing text.
func (w *world) waitReply(user, text string) {
	w.t.Helper()
	w.waitMessage(func() []fakeslack.Message { return w.slack.Ephemerals(user) }, text, "a reply to "+user)
}

// waitMessage waits until one of list's messages contains text.
func (w *world) waitMessage(list func() []fakeslack.Message, text, what string) {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range list() {
			if strings.Contains(m.Text, text) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.t.Fatalf("no %s containing %q within 30 s; got %+v", what, text, list())
}

// audit runs `dobrobot audit export` on the world's database (through the
// running bot when one holds it) and returns the entries of ticket.
func (w *world) audit(ticket string) []commands.AuditEntry {
	w.t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(w.bin, "--log-level", "error", "audit", "export", "--db", w.db, "--ticket", ticket)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		w.t.Fatalf("audit export: %v\n%s", err, errb.String())
	}
	var entries []commands.AuditEntry
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var e commands.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			w.t.Fatalf("audit export line %q: %v", sc.Text(), err)
		}
		entries = append(entries, e)
	}
	return entries
}

// waitAudit polls the audit log of ticket until it has an entry of action
// after the first skip entries, and returns the entries.
func (w *world) waitAudit(ticket string, action commands.Action, skip int) []commands.AuditEntry {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got []commands.AuditEntry
	for time.Now().Before(deadline) {
		got = w.audit(ticket)
		for i := skip; i < len(got); i++ {
			if got[i].Action == action {
				return got
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.t.Fatalf("no %s entry for %s in the audit log within 30 s: %v", action, ticket, actions(got))
	return nil
}

func actions(entries []commands.AuditEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, string(e.Action))
	}
	return out
}

// spawns are the hooks the fake hook program recorded.
type spawn struct{ ticket, phase, attempt string }

func (w *world) spawns() []spawn {
	w.t.Helper()
	data, err := os.ReadFile(w.record)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		w.t.Fatal(err)
	}
	var out []spawn
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec struct{ Env []string }
		if err := json.Unmarshal(line, &rec); err != nil {
			w.t.Fatalf("hook record %q: %v", line, err)
		}
		var s spawn
		for _, kv := range rec.Env {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "DOBROBOT_TICKET":
				s.ticket = v
			case "DOBROBOT_PHASE":
				s.phase = v
			case "DOBROBOT_ATTEMPT":
				s.attempt = v
			}
		}
		out = append(out, s)
	}
	return out
}

// countSpawns counts the recorded spawns of ticket's phase hook.
func countSpawns(spawns []spawn, ticket, phase string) int {
	n := 0
	for _, s := range spawns {
		if s.ticket == ticket && s.phase == phase {
			n++
		}
	}
	return n
}

// snapshot is what inspect read from a stopped bot's database.
type snapshot struct {
	open    []commands.Release
	last    map[string]commands.Release // the latest release of each ticket
	locks   []commands.Lock
	pending []commands.InboxEvent
	outbox  []commands.Effect
	audit   []commands.AuditEntry
	events  map[string]commands.InboxEvent
	closed  map[uint64]commands.Release // releases no longer open that hold a lock
}

// lockHolders returns component → ticket of the releases' locks.
func (s snapshot) lockHolders() map[string]string {
	out := map[string]string{}
	for _, l := range s.locks {
		if !l.Frozen() {
			out[l.Component] = l.Ticket
		}
	}
	return out
}

var attemptRE = regexp.MustCompile(`attempt ([0-9a-f]{16})`)

// inspect opens the database of a stopped (or killed) bot read-only and
// checks the invariants that must hold after any crash:
//
//	bbolt's consistency check passes and the whole audit chain verifies;
//	I1 at most one release holds each component (deploying or failed);
//	I2 every release lock belongs to a release in a lock-holding state that
//	   lists the component, and such a release holds all of its locks; or
//	   to a cancelled release whose cancel hook runs (it holds all of
//	   them) or was found running after a restart (until an admin frees
//	   them);
//	I3 the queue is in ID order, one open release per ticket;
//	I5 each ticket's newest state-changing audit entry ends in its state;
//	I6 every outbox message about a release names a committed one;
//	hooks: no attempt was spawned twice, and every spawned attempt was
//	   committed first (it is in the audit log or a release's Running).
func (w *world) inspect(tickets ...string) snapshot {
	w.t.Helper()
	return w.check(w.t, tickets...)
}

// reporter is the part of testing.T the invariant checker uses, so that a
// test can check that the checker itself fails.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// check is inspect reporting to t.
func (w *world) check(t reporter, tickets ...string) snapshot {
	t.Helper()
	db, err := storage.Open(w.db, storage.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s after the run: %v", w.db, err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatalf("bbolt check: %v", err)
	}
	// The chain only: the invariants below are this checker's own, and
	// TestInvariantChecker feeds it states no log explains.
	if err := db.Audit(context.Background(), commands.AuditFilter{}, commands.NewVerifier().Add); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	s := snapshot{last: map[string]commands.Release{}, events: map[string]commands.InboxEvent{}, closed: map[uint64]commands.Release{}}
	err = db.View(context.Background(), func(tx commands.Tx) error {
		var err error
		if s.open, err = tx.Open(); err != nil {
			return err
		}
		if s.locks, err = tx.Locks(); err != nil {
			return err
		}
		for _, l := range s.locks {
			if l.Frozen() || slices.ContainsFunc(s.open, func(r commands.Release) bool { return r.ID == l.Release }) {
				continue
			}
			r, err := tx.Release(l.Release)
			if err != nil {
				return err
			}
			s.closed[r.ID] = r
		}
		if s.pending, err = tx.PendingEvents(); err != nil {
			return err
		}
		for _, tk := range tickets {
			r, err := tx.LastRelease(tk)
			if commands.ErrorCode(err) == commands.ENOTFOUND {
				continue
			}
			if err != nil {
				return err
			}
			s.last[tk] = r
		}
		for _, sent := range w.slack.Sent() {
			if sent.EventID == "" {
				continue
			}
			if ev, ok, err := tx.Event(sent.EventID); err != nil {
				return err
			} else if ok {
				s.events[sent.EventID] = ev
			}
		}
		return nil
	})
	if err == nil {
		s.outbox, err = db.Pending(context.Background(), 0)
	}
	if err == nil {
		err = db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
			s.audit = append(s.audit, e)
			return nil
		})
	}
	if err != nil {
		t.Fatalf("read the database: %v", err)
	}

	// I1, I2.
	holders := map[string][]string{}
	openByID := map[uint64]commands.Release{}
	for _, r := range s.open {
		openByID[r.ID] = r
		if r.State.HoldsLocks() {
			for _, c := range r.Locks {
				holders[c] = append(holders[c], r.Ticket)
				if !slices.ContainsFunc(s.locks, func(l commands.Lock) bool { return l.Component == c && l.Release == r.ID }) {
					t.Errorf("I2: %s is %s but does not hold its lock on %s; locks: %+v", r.Ticket, r.State, c, s.locks)
				}
			}
		}
	}
	for c, h := range holders {
		if len(h) > 1 {
			t.Errorf("I1: %s is held by %d releases: %v", c, len(h), h)
		}
	}
	for _, l := range s.locks {
		if l.Frozen() {
			continue
		}
		if r, ok := s.closed[l.Release]; ok {
			cancelling := r.Running != nil && r.Running.Phase == commands.PhaseCancel
			left := r.Running == nil && r.LastHook != nil && r.LastHook.Phase == commands.PhaseCancel && !r.LastHook.OK
			if r.State != commands.StateCancelled || !(cancelling || left) || !slices.Contains(r.Locks, l.Component) || r.Ticket != l.Ticket {
				t.Errorf("I2: lock %s held by release %d (%s), which is %s with running %+v and last hook %+v", l.Component, l.Release, l.Ticket, r.State, r.Running, r.LastHook)
			}
			for _, h := range holders[l.Component] {
				t.Errorf("I1: %s is held by %s and by %s, which is cancelled", l.Component, h, r.Ticket)
			}
			continue
		}
		r, ok := openByID[l.Release]
		if !ok || !r.State.HoldsLocks() || !slices.Contains(r.Locks, l.Component) || r.Ticket != l.Ticket {
			t.Errorf("I2: lock %s held by release %d (%s), which is not an open release holding it (%+v)", l.Component, l.Release, l.Ticket, r)
		}
	}
	// I3.
	seen := map[string]bool{}
	for i, r := range s.open {
		if i > 0 && r.ID <= s.open[i-1].ID {
			t.Errorf("I3: the queue is out of order at %s", r.Ticket)
		}
		if seen[r.Ticket] {
			t.Errorf("I3: %s has two open releases", r.Ticket)
		}
		seen[r.Ticket] = true
	}
	// I5.
	for tk, r := range s.last {
		var lastTo commands.State
		for _, e := range s.audit {
			if e.Ticket == tk && e.To != commands.StateNone {
				lastTo = e.To
			}
		}
		if lastTo != r.State {
			t.Errorf("I5: %s is %s, but its last audit entry says %q", tk, r.State, lastTo)
		}
	}
	// I6.
	for _, e := range s.outbox {
		if e.Release == nil {
			continue
		}
		if err := db.View(context.Background(), func(tx commands.Tx) error {
			_, err := tx.Release(e.Release.ID)
			return err
		}); err != nil {
			t.Errorf("I6: outbox message %d is about release %d, which is not in the database: %v", e.ID, e.Release.ID, err)
		}
	}
	// Hooks: each attempt spawned at most once, and only after its commit.
	committed := map[string]bool{}
	for _, e := range s.audit {
		for _, m := range attemptRE.FindAllStringSubmatch(e.Detail, -1) {
			committed[m[1]] = true
		}
	}
	for _, r := range s.open {
		if r.Running != nil {
			committed[r.Running.Attempt] = true
		}
	}
	for _, r := range s.last {
		if r.Running != nil {
			committed[r.Running.Attempt] = true
		}
	}
	for _, r := range s.closed {
		if r.Running != nil {
			committed[r.Running.Attempt] = true
		}
	}
	spawned := map[string]int{}
	for _, sp := range w.spawns() {
		spawned[sp.attempt]++
		if spawned[sp.attempt] == 2 {
			t.Errorf("hook attempt %s (%s %s) was spawned twice", sp.attempt, sp.ticket, sp.phase)
		}
		if !committed[sp.attempt] {
			t.Errorf("hook attempt %s (%s %s) was spawned but never committed", sp.attempt, sp.ticket, sp.phase)
		}
	}
	// Persist-then-ack: every acknowledged command is in the inbox.
	sentEvent := map[string]string{}
	for _, sent := range w.slack.Sent() {
		sentEvent[sent.EnvelopeID] = sent.EventID
	}
	for _, a := range w.slack.Acks() {
		if ev := sentEvent[a.EnvelopeID]; ev != "" {
			if _, ok := s.events[ev]; !ok {
				t.Errorf("event %s was acknowledged but is not in the inbox: lost", ev)
			}
		}
	}
	return s
}

// acked reports whether Slack saw an ack for any envelope of event id.
func (w *world) acked(eventID string) bool {
	ids := map[string]bool{}
	for _, s := range w.slack.Sent() {
		if s.EventID == eventID {
			ids[s.EnvelopeID] = true
		}
	}
	for _, a := range w.slack.Acks() {
		if ids[a.EnvelopeID] {
			return true
		}
	}
	return false
}

// seedCrash builds the database the dep start crash tests start from: PAY-1
// requested, accepted and claimed; PAY-2 waiting behind it. With started, PAY-1's
// start hook has also run: the start for the dep finish tests.
func seedCrash(t *testing.T, started bool) string {
	w := newWorld(t, worldOptions{})
	p := w.start("")
	w.send(requester, "dobro PAY-1")
	w.waitReply(requester, "PAY-1> is in the queue")
	w.send(requester, "dobro PAY-2")
	w.waitReply(requester, "PAY-2> is in the queue")
	w.send(approver, "accept PAY-1")
	w.waitReply(approver, "You accepted PAY-1.")
	w.send(admin, "here PAY-1")
	w.waitReply(admin, "You claimed PAY-1.")
	if started {
		w.send(requester, "dep start PAY-1")
		w.waitAudit("PAY-1", commands.ActionStarted, 0)
	}
	p.kill() // a crash is as good a stop as any
	w.inspect("PAY-1", "PAY-2")
	seed := filepath.Join(t.TempDir(), "seed.db")
	data, err := os.ReadFile(w.db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seed, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return seed
}

// crashCase is one kill -9 at a failpoint of dep start or dep finish.
type crashCase struct {
	failpoint string // as armed, with its delay
	// committed: the command's transaction committed before the kill (the
	// release is deploying with its hook attempt recorded); otherwise it
	// is still to be handled after the restart.
	committed bool
	spawned   int  // hooks of the phase spawned before the kill
	noAck     bool // the bot dies before it acks the command
}

// TestCrashDepStart kills the bot at each failpoint of dep start, starts it
// again, and checks that the hook was spawned at most once, that a release
// whose hook may have run is reported and keeps its locks rather than being
// re-run, that nothing acknowledged was lost, and that an admin can resolve
// it (RELIABILITY T14, R3).
func TestCrashDepStart(t *testing.T) {
	t.Parallel()
	seed := seedCrash(t, false)
	cases := []crashCase{
		{failpoint: failpoint.AfterInboxCommitBeforeAck, noAck: true},
		{failpoint: failpoint.BeforeTransitionCommit},
		{failpoint: failpoint.AfterTransitionCommitBeforeOutboxSend, committed: true},
		{failpoint: failpoint.AfterDeployIntentCommitBeforeSpawn, committed: true},
		{failpoint: failpoint.HookRunning + "=150ms", committed: true, spawned: 1},
		{failpoint: failpoint.AfterHookExitBeforeResultCommit, committed: true, spawned: 1},
	}
	for i, tc := range cases {
		t.Run(tc.failpoint, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, worldOptions{seed: seed})
			name, _, _ := strings.Cut(tc.failpoint, "=")
			p := w.start(tc.failpoint)
			env := w.send(requester, "dep start PAY-1")
			p.waitCrash(name)
			// A hook spawned before the kill records itself as it starts,
			// maybe just after: wait for that record rather than a pause.
			// With spawned 0 the failpoint precedes the spawn, so none can
			// come.
			if tc.spawned > 0 {
				waitFor(20*time.Second, func() bool { return countSpawns(w.spawns(), "PAY-1", "start") >= tc.spawned })
			}
			s := w.inspect("PAY-1", "PAY-2")
			rel := s.last["PAY-1"]
			// The ack is written by the Socket Mode client's own goroutine,
			// so one sent just before the kill may never leave: only its
			// absence is certain.
			if got := w.acked(env.EventID()); got && tc.noAck {
				t.Errorf("acked before the kill, though the bot died before acking")
			}
			if got := countSpawns(w.spawns(), "PAY-1", "start"); got != tc.spawned {
				t.Errorf("start hooks spawned before the kill = %d, want %d", got, tc.spawned)
			}
			if tc.committed {
				if rel.State != commands.StateDeploying || rel.Running == nil || s.lockHolders()["backend"] != "PAY-1" {
					t.Errorf("after the kill: PAY-1 %s, running %v, locks %v; want deploying with its hook attempt recorded and its locks", rel.State, rel.Running, s.lockHolders())
				}
			} else {
				if rel.State != commands.StateClaimed || len(s.lockHolders()) != 0 || len(s.pending) != 1 {
					t.Errorf("after the kill: PAY-1 %s, locks %v, %d unprocessed events; want claimed, no locks, the dep start in the inbox", rel.State, s.lockHolders(), len(s.pending))
				}
			}

			// Restart: what was acknowledged is done, what may have run is
			// reported and not run again.
			p = w.start("")
			// Slack redelivers an envelope whose ack did not reach it.
			if !waitFor(15*time.Second, func() bool { return w.acked(env.EventID()) }) {
				t.Errorf("the dep start was never acked")
			}
			if !tc.committed {
				w.waitAudit("PAY-1", commands.ActionStarted, 0)
				// Not a pause: a clean stop returns once the commands in
				// flight are handled and every hook the bot started has
				// ended, so a second spawn would be recorded by then.
				p.stop()
				if got := countSpawns(w.spawns(), "PAY-1", "start"); got != 1 {
					t.Errorf("start hooks spawned = %d, want 1", got)
				}
				s := w.inspect("PAY-1", "PAY-2")
				if rel := s.last["PAY-1"]; rel.State != commands.StateDeploying || rel.LastHook == nil || !rel.LastHook.OK || len(s.pending) != 0 {
					t.Errorf("after the restart: PAY-1 %s, last hook %+v, %d unprocessed; want deploying, start hook ok", rel.State, rel.LastHook, len(s.pending))
				}
				return
			}
			w.waitAudit("PAY-1", commands.ActionInterrupt, 0)
			w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(channel) }, "restarted while the start hook of", "an alert in the release channel")
			w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(fakeslack.DMChannel(requester)) }, "restarted while the start hook", "an alert to the requester")
			w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(fakeslack.DMChannel(admin)) }, "restarted while the start hook", "an alert to the admin")
			w.send(requester, "queue")
			w.waitReply(requester, "backend is locked by")
			if got := countSpawns(w.spawns(), "PAY-1", "start"); got != tc.spawned {
				t.Errorf("start hooks spawned after the restart = %d, want %d (no automatic re-run)", got, tc.spawned)
			}
			p.kill()
			s = w.inspect("PAY-1", "PAY-2")
			rel = s.last["PAY-1"]
			if rel.State != commands.StateDeploying || rel.Running != nil || rel.LastHook == nil || rel.LastHook.OK || s.lockHolders()["payments"] != "PAY-1" {
				t.Errorf("after the restart: PAY-1 %s, running %v, last hook %+v, locks %v; want deploying, outcome unknown, locks held", rel.State, rel.Running, rel.LastHook, s.lockHolders())
			}

			// An admin resolves it: half the cases finish, half start again.
			p = w.start("")
			n := len(w.audit("PAY-1"))
			if i%2 == 0 {
				w.send(admin, "dep finish PAY-1")
				w.waitAudit("PAY-1", commands.ActionFinish, n)
			} else {
				w.send(admin, "dep start PAY-1")
				w.waitAudit("PAY-1", commands.ActionStarted, n)
			}
			p.kill()
			s = w.inspect("PAY-1", "PAY-2")
			want := map[string]string{}
			if i%2 == 1 {
				want = map[string]string{"backend": "PAY-1", "payments": "PAY-1"}
			}
			if got := s.lockHolders(); !mapsEqual(got, want) {
				t.Errorf("locks after the admin's resolution = %v, want %v", got, want)
			}
		})
	}
}

// TestCrashDepFinish kills the bot at each failpoint of dep finish, starts
// it again, and checks the same things: a finish hook that may have run is
// reported, not re-run, and the locks stay until an admin finishes again.
func TestCrashDepFinish(t *testing.T) {
	t.Parallel()
	seed := seedCrash(t, true)
	cases := []crashCase{
		{failpoint: failpoint.BeforeTransitionCommit},
		{failpoint: failpoint.AfterTransitionCommitBeforeOutboxSend, committed: true},
		{failpoint: failpoint.AfterFinishIntentCommitBeforeSpawn, committed: true},
		{failpoint: failpoint.HookRunning + "=150ms", committed: true, spawned: 1},
		{failpoint: failpoint.AfterHookExitBeforeResultCommit, committed: true, spawned: 1},
	}
	for _, tc := range cases {
		t.Run(tc.failpoint, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, worldOptions{seed: seed})
			name, _, _ := strings.Cut(tc.failpoint, "=")
			p := w.start(tc.failpoint)
			env := w.send(requester, "dep finish PAY-1")
			p.waitCrash(name)
			if tc.spawned > 0 { // as in the start case: wait for the hook's own record
				waitFor(20*time.Second, func() bool { return countSpawns(w.spawns(), "PAY-1", "finish") >= tc.spawned })
			}
			s := w.inspect("PAY-1", "PAY-2")
			rel := s.last["PAY-1"]
			// The ack is written by the Socket Mode client's own goroutine,
			// so one sent just before the kill may never leave: only its
			// absence is certain.
			if got := w.acked(env.EventID()); got && tc.noAck {
				t.Errorf("acked before the kill, though the bot died before acking")
			}
			if got := countSpawns(w.spawns(), "PAY-1", "finish"); got != tc.spawned {
				t.Errorf("finish hooks spawned before the kill = %d, want %d", got, tc.spawned)
			}
			if rel.State != commands.StateDeploying || s.lockHolders()["backend"] != "PAY-1" || (rel.Running != nil) != tc.committed {
				t.Errorf("after the kill: PAY-1 %s, running %v, locks %v; want deploying, locks held, finish attempt recorded: %v\n%s", rel.State, rel.Running, s.lockHolders(), tc.committed, p.logs)
			}

			p = w.start("")
			if !waitFor(15*time.Second, func() bool { return w.acked(env.EventID()) }) {
				t.Errorf("the dep finish was never acked")
			}
			if !tc.committed {
				w.waitAudit("PAY-1", commands.ActionFinish, 0)
				p.stop() // as in the start case: every hook has ended when it returns
				if got := countSpawns(w.spawns(), "PAY-1", "finish"); got != 1 {
					t.Errorf("finish hooks spawned = %d, want 1", got)
				}
				s := w.inspect("PAY-1", "PAY-2")
				if rel := s.last["PAY-1"]; rel.State != commands.StateDone || len(s.lockHolders()) != 0 {
					t.Errorf("after the restart: PAY-1 %s, locks %v; want done, no locks", rel.State, s.lockHolders())
				}
				return
			}
			w.waitAudit("PAY-1", commands.ActionInterrupt, 0)
			w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(channel) }, "restarted while the finish hook of", "an alert in the release channel")
			if got := countSpawns(w.spawns(), "PAY-1", "finish"); got != tc.spawned {
				t.Errorf("finish hooks spawned after the restart = %d, want %d (no automatic re-run)", got, tc.spawned)
			}
			p.kill()
			s = w.inspect("PAY-1", "PAY-2")
			if rel := s.last["PAY-1"]; rel.State != commands.StateDeploying || rel.Running != nil || s.lockHolders()["payments"] != "PAY-1" {
				t.Errorf("after the restart: PAY-1 %s, running %v, locks %v; want deploying, outcome unknown, locks held", rel.State, rel.Running, s.lockHolders())
			}

			p = w.start("")
			n := len(w.audit("PAY-1"))
			w.send(admin, "dep finish PAY-1")
			w.waitAudit("PAY-1", commands.ActionFinish, n)
			p.kill()
			s = w.inspect("PAY-1", "PAY-2")
			if got := s.lockHolders(); len(got) != 0 || s.last["PAY-1"].State != commands.StateDone {
				t.Errorf("after the admin's dep finish: PAY-1 %s, locks %v; want done, none", s.last["PAY-1"].State, got)
			}
			if got := countSpawns(w.spawns(), "PAY-1", "finish"); got != tc.spawned+1 {
				t.Errorf("finish hooks spawned in all = %d, want %d", got, tc.spawned+1)
			}
		})
	}
}

// TestCrashCancelHook kills the bot while the cancel hook of a deploying
// release runs, and after it ended but before its result was recorded
// (issue 12, item 3): after the restart the cancelled release still holds
// its locks, its hook is reported and not run again, another release on the
// same component cannot start until an admin frees the component, and then
// it can.
func TestCrashCancelHook(t *testing.T) {
	t.Parallel()
	seed := seedCrash(t, true)
	for _, fp := range []string{failpoint.HookRunning + "=150ms", failpoint.AfterHookExitBeforeResultCommit} {
		t.Run(fp, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, worldOptions{seed: seed, cancel: true})
			name, _, _ := strings.Cut(fp, "=")
			p := w.start(fp)
			w.send(requester, "cancel PAY-1 rollback")
			p.waitCrash(name)
			s := w.inspect("PAY-1", "PAY-2")
			rel := s.last["PAY-1"]
			if rel.State != commands.StateCancelled || rel.Running == nil || rel.Running.Phase != commands.PhaseCancel ||
				!mapsEqual(s.lockHolders(), map[string]string{"backend": "PAY-1", "payments": "PAY-1"}) {
				t.Errorf("after the kill: PAY-1 %s, running %+v, locks %v; want cancelled, its cancel hook running, its locks held", rel.State, rel.Running, s.lockHolders())
			}
			if got := countSpawns(w.spawns(), "PAY-1", "cancel"); got != 1 {
				t.Errorf("cancel hooks spawned before the kill = %d, want 1", got)
			}

			p = w.start("")
			w.waitAudit("PAY-1", commands.ActionInterrupt, 0)
			w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(fakeslack.DMChannel(requester)) }, "restarted while the cancel hook", "an alert to the requester")
			w.send(approver, "accept PAY-2")
			w.waitReply(approver, "You accepted PAY-2.")
			w.send(admin, "here PAY-2")
			w.waitReply(admin, "You claimed PAY-2.")
			w.send(requester, "dep start PAY-2")
			w.waitReply(requester, "Backend is locked by PAY-1")
			w.send(admin, "unlock backend")
			w.waitReply(admin, "Freed backend")
			w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(fakeslack.DMChannel(requester)) }, "You're next", "you're next for PAY-2")
			n := len(w.audit("PAY-2"))
			w.send(requester, "dep start PAY-2")
			w.waitAudit("PAY-2", commands.ActionStarted, n)
			p.kill()
			s = w.inspect("PAY-1", "PAY-2")
			if got, want := s.lockHolders(), map[string]string{"backend": "PAY-2", "payments": "PAY-1"}; !mapsEqual(got, want) {
				t.Errorf("locks after the admin's unlock and PAY-2's start = %v, want %v", got, want)
			}
			if got := countSpawns(w.spawns(), "PAY-1", "cancel"); got != 1 {
				t.Errorf("cancel hooks spawned in all = %d, want 1 (no automatic re-run)", got)
			}
		})
	}
}

// waitFor polls cond until it holds or timeout passes, and reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// crashIterations is how many random kills TestRandomKills survives;
// DOBROBOT_CRASH_ITERATIONS raises it for a longer run.
func crashIterations() int {
	if n, err := strconv.Atoi(os.Getenv("DOBROBOT_CRASH_ITERATIONS")); err == nil && n > 0 {
		return n
	}
	return 30
}

// TestRandomKills runs a mixed workload (requests, approvals, claims,
// starts, finishes, cancels and reads on six tickets, with Slack
// redelivering what was not acked) and kills the bot with SIGKILL at random
// times, checking the invariants after every kill; then it lets a last run
// settle and checks that every acknowledged command was processed and that
// every success the users saw is in the audit log (RELIABILITY T15).
func TestRandomKills(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{hookSleep: 50 * time.Millisecond})
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)
	tickets := []string{"PAY-1", "PAY-2", "PAY-3", "PAY-4", "PAY-5", "PAY-6"}
	// Each ticket mostly walks its release forward; now and then a random
	// command (often refused: out of order, wrong person) or a cancel.
	type step struct{ user, verb string }
	flow := []step{{requester, "dobro"}, {approver, "accept"}, {admin, "here"}, {requester, "dep start"}, {requester, "dep finish"}}
	odd := []step{{admin, "cancel"}, {requester, "accept"}, {requester, "status"}, {requester, "queue"}, {admin, "dep start"}, {approver, "reject"}}
	next := make([]int, len(tickets))
	pick := func() string {
		i := rng.IntN(len(tickets))
		st := flow[next[i]]
		if rng.IntN(5) == 0 {
			st = odd[rng.IntN(len(odd))]
		} else {
			next[i] = (next[i] + 1) % len(flow)
		}
		if st.verb == "queue" {
			return st.user + " queue"
		}
		return st.user + " " + st.verb + " " + tickets[i]
	}
	iterations := crashIterations()
	start := time.Now()
	sent := 0
	for i := range iterations {
		p := w.start("")
		until := time.Now().Add(time.Duration(20+rng.IntN(400)) * time.Millisecond)
		for time.Now().Before(until) {
			user, text, _ := strings.Cut(pick(), " ")
			if _, err := w.slack.Deliver(mention(user, text)); err == nil {
				sent++
			}
			time.Sleep(time.Duration(5+rng.IntN(20)) * time.Millisecond)
		}
		p.kill()
		w.inspect(tickets...)
		if t.Failed() {
			t.Fatalf("invariants broken after kill %d (seed %d)\n%s", i+1, seed, p.logs)
		}
	}
	// Last runs with no new commands: Slack's retries and the inbox bring
	// every acknowledged command to its end. On a loaded machine that can
	// take more than one run (each is killed too).
	var s snapshot
	unprocessed := func() []string {
		var out []string
		for id, ev := range s.events {
			if w.acked(id) && !ev.Processed {
				out = append(out, fmt.Sprintf("%s (%q)", id, ev.Message.Text))
			}
		}
		return out
	}
	settle, settleRuns := time.Now(), 0
	for {
		settleRuns++
		p := w.start("")
		time.Sleep(2 * time.Second)
		p.kill()
		s = w.inspect(tickets...)
		if len(unprocessed()) == 0 || time.Since(settle) > 40*time.Second {
			break
		}
	}
	for _, e := range unprocessed() {
		t.Errorf("event %s was acknowledged but never processed", e)
	}
	// Every success a user saw was committed.
	seen := map[commands.Action]*regexp.Regexp{
		commands.ActionRequest: regexp.MustCompile(`(PAY-\d)> is in the queue \(#`),
		commands.ActionAccept:  regexp.MustCompile(`^You accepted (PAY-\d)\.`),
		commands.ActionClaim:   regexp.MustCompile(`^You claimed (PAY-\d)\.`),
		commands.ActionStart:   regexp.MustCompile(`^Deploy of (PAY-\d) started\.`),
		commands.ActionCancel:  regexp.MustCompile(`^(PAY-\d) is cancelled\.`),
	}
	confirmed := 0
	for _, m := range w.slack.Ephemerals("") {
		for action, re := range seen {
			match := re.FindStringSubmatch(m.Text)
			if match == nil {
				continue
			}
			confirmed++
			if !slices.ContainsFunc(s.audit, func(e commands.AuditEntry) bool { return e.Action == action && e.Ticket == match[1] }) {
				t.Errorf("the user saw %q, but the audit log has no %s of %s", m.Text, action, match[1])
			}
		}
	}
	spawns := w.spawns()
	t.Logf("%d kills survived in %v: %d commands sent, %d acked, %d successes confirmed, %d audit entries, %d hooks spawned; settled in %d more runs",
		iterations, time.Since(start).Round(time.Millisecond), sent, len(w.slack.Acks()), confirmed, len(s.audit), len(spawns), settleRuns)
}

// recorder is a reporter that keeps what it is told; Fatalf stops the
// check by panicking with the recorder.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(r)
}

// TestInvariantChecker checks that the checker of the crash tests finds
// each kind of broken state it claims to find.
func TestInvariantChecker(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rel := func(ticket string, state commands.State, locks ...string) commands.Release {
		return commands.Release{Ticket: ticket, State: state, Requester: requester, Components: locks, Locks: locks, Created: t0, Updated: t0}
	}
	// put stores releases with an audit entry ending in their state, and locks.
	put := func(rels []commands.Release, locks []commands.Lock) func(commands.Tx) error {
		return func(tx commands.Tx) error {
			for _, r := range rels {
				stored, err := tx.PutRelease(r)
				if err != nil {
					return err
				}
				if _, err := tx.AppendAudit(commands.AuditEntry{Time: t0, Actor: requester, Action: commands.ActionRequest, Ticket: r.Ticket, To: r.State,
					Detail: "start hook attempt 00000000000000aa"}); err != nil {
					return err
				}
				for i := range locks {
					if locks[i].Ticket == r.Ticket {
						locks[i].Release = stored.ID
					}
				}
			}
			for _, l := range locks {
				if err := tx.PutLock(l); err != nil {
					return err
				}
			}
			return nil
		}
	}
	lock := func(comp, ticket string) commands.Lock {
		return commands.Lock{Component: comp, Ticket: ticket, By: requester, Since: t0}
	}
	spawnLine := func(attempt string) string {
		return `{"argv":["hook"],"env":["DOBROBOT_TICKET=PAY-1","DOBROBOT_PHASE=start","DOBROBOT_ATTEMPT=` + attempt + `"]}` + "\n"
	}
	for _, tc := range []struct {
		name   string
		update func(commands.Tx) error
		raw    func(*bolt.Tx) error
		spawns string
		want   string // "" for no error
	}{
		{name: "a sound state", update: put([]commands.Release{rel("PAY-1", commands.StateDeploying, "backend"), rel("PAY-2", commands.StateRequested, "backend")},
			[]commands.Lock{lock("backend", "PAY-1")}), spawns: spawnLine("00000000000000aa")},
		{name: "a lock of a release that does not hold it", update: put([]commands.Release{rel("PAY-1", commands.StateRequested, "backend")},
			[]commands.Lock{lock("backend", "PAY-1")}), want: "I2: lock backend"},
		{name: "a deploying release without its lock", update: put([]commands.Release{rel("PAY-1", commands.StateDeploying, "backend")}, nil),
			want: "I2: PAY-1 is deploying but does not hold its lock"},
		{name: "two holders of one component", update: put([]commands.Release{rel("PAY-1", commands.StateDeploying, "backend"), rel("PAY-2", commands.StateFailed, "backend")},
			[]commands.Lock{lock("backend", "PAY-1"), lock("backend", "PAY-2")}), want: "I1: backend is held by 2 releases"},
		{name: "a state the audit log does not explain", update: func(tx commands.Tx) error {
			if err := put([]commands.Release{rel("PAY-1", commands.StateRequested)}, nil)(tx); err != nil {
				return err
			}
			r, err := tx.OpenRelease("PAY-1")
			if err != nil {
				return err
			}
			r.State = commands.StateAccepted
			_, err = tx.PutRelease(r)
			return err
		}, want: "I5: PAY-1 is accepted"},
		{name: "an edited audit entry", update: put([]commands.Release{rel("PAY-1", commands.StateRequested)}, nil),
			raw: func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("audit"))
				k, v := b.Cursor().First()
				return b.Put(k, bytes.Replace(v, []byte(requester), []byte("U0MALLORY"), 1))
			}, want: "audit chain"},
		{name: "a hook spawned twice", update: put([]commands.Release{rel("PAY-1", commands.StateRequested)}, nil),
			spawns: spawnLine("00000000000000aa") + spawnLine("00000000000000aa"), want: "was spawned twice"},
		{name: "a hook spawned without a commit", update: put([]commands.Release{rel("PAY-1", commands.StateRequested)}, nil),
			spawns: spawnLine("00000000000000bb"), want: "was spawned but never committed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			db, err := storage.Open(w.db)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(context.Background(), tc.update); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if tc.raw != nil {
				b, err := bolt.Open(w.db, 0o600, &bolt.Options{Timeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				if err := b.Update(tc.raw); err != nil {
					t.Fatal(err)
				}
				b.Close()
			}
			if err := os.WriteFile(w.record, []byte(tc.spawns), 0o600); err != nil {
				t.Fatal(err)
			}
			r := &recorder{}
			func() {
				defer func() {
					if p := recover(); p != nil && p != r {
						panic(p)
					}
				}()
				w.check(r, "PAY-1", "PAY-2")
			}()
			got := strings.Join(r.errs, "\n")
			switch {
			case tc.want == "" && got != "":
				t.Errorf("the checker found problems in a sound state:\n%s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("the checker said %q, want it to report %q", got, tc.want)
			}
		})
	}
}
