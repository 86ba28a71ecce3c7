package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/failpoint"
)

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
	extra     string        // more configuration YAML, appended
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
	cfg += o.extra
	for name, body := range map[string]string{"tickets.yaml": crashTickets, "dobrobot.yaml": cfg} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w.env = append(os.Environ(), "SLACK_APP_TOKEN="+fakeslack.AppToken, "SLACK_BOT_TOKEN="+fakeslack.BotToken,
		"DOBROBOT_CONFIG="+filepath.Join(dir, "dobrobot.yaml"))
	return w
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
	env := append(slices.Clone(w.env), failpoint.EnvVar+"="+failpoints)
	return startProc(w.t, fmt.Sprintf("run %d", w.runs), w.bin, env, "--log-level", "debug", "run")
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

// send delivers text from user as a mention in the release channel. Slack
// keeps an event until a connection takes it; fakeslack refuses one when no
// connection is open, so send waits (up to 10 s) for one: between a
// leader's standby connections closing and its own opening there is none.
func (w *world) send(user, text string) fakeslack.Envelope {
	w.t.Helper()
	e := mention(user, text)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		env, err := w.slack.Deliver(e)
		if err == nil {
			return env
		}
		if !errors.Is(err, fakeslack.ErrNoConnection) || time.Now().After(deadline) {
			w.t.Fatalf("deliver %q: %v", text, err)
		}
	}
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
