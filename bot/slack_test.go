package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// The people of the end-to-end tests.
const (
	ann     = "U01ANN" // requester
	bob     = "U02BOB" // approver
	adm     = "U03ADM" // admin
	mallory = "U0MALLORY"
)

// testTracker knows every ticket; it can be slow.
type testTracker struct {
	delay time.Duration
	// gate, if set, holds every answer until it is closed.
	gate  chan struct{}
	mu    sync.Mutex
	calls int
}

// entered returns how many calls the tracker has received.
func (tr *testTracker) entered() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.calls
}

func (tr *testTracker) Ticket(ctx context.Context, key string) (commands.Ticket, error) {
	tr.mu.Lock()
	tr.calls++
	tr.mu.Unlock()
	if tr.gate != nil {
		select {
		case <-tr.gate:
		case <-ctx.Done():
			return commands.Ticket{}, commands.Errorf(commands.EUNAVAILABLE, "could not reach the tracker in time")
		}
	}
	if tr.delay > 0 {
		select {
		case <-time.After(tr.delay):
		case <-ctx.Done():
			return commands.Ticket{}, commands.Errorf(commands.EUNAVAILABLE, "could not reach the tracker in time")
		}
	}
	return commands.Ticket{Key: key, Project: commands.ProjectOf(key), Summary: "Release of " + key, Status: "Ready",
		Assignee: "ann@example.com", FixVersions: []string{"1.0"}, Components: []string{"backend"},
		URL: "https://jira.example.com/browse/" + key}, nil
}

type botHarness struct {
	fs   *fakeslack.Server
	db   *storage.DB
	svc  *commands.Service
	bot  *Slack
	logs *syncBuffer
	stop func() error
}

// startBot runs the real bot against fs, on the bbolt file at path, and
// waits until it is connected.
func startBot(t *testing.T, fs *fakeslack.Server, path string, tr commands.Tracker, tune ...func(*Slack, *commands.Config)) *botHarness {
	t.Helper()
	db := openDB(t, path)
	logs := &syncBuffer{}
	log := zerolog.New(logs)
	cfg := commands.Config{Store: db, Tracker: tr, Log: log, Policy: commands.Policy{
		Approvers: []string{bob}, Admins: []string{adm}, Components: []string{"backend"}, Channel: releaseChannel}}
	b := &Slack{
		AppToken: fakeslack.AppToken, BotToken: fakeslack.BotToken,
		APIURL:  strings.TrimSuffix(fs.URL, "/"), // Run adds the slash slack-go needs
		Channel: releaseChannel, Store: db, Log: log,
		Pace: 5 * time.Millisecond, RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second,
	}
	for _, f := range tune {
		f(b, &cfg)
	}
	// As dobrobot run builds it: the bot gives the Service its Groups and
	// Notify.
	cfg.Groups, cfg.Notify = b.Groups(), b.Notify
	svc := commands.NewService(cfg)
	b.Service = svc
	hellos := fs.Hellos()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(15 * time.Second):
				runErr = errors.New("Run did not return within 15 s of its context ending")
			}
			svc.Wait()
			if err := db.Close(); err != nil && runErr == nil {
				runErr = err
			}
			for _, secret := range []string{fakeslack.BotToken, fakeslack.AppToken} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("the log contains a token")
				}
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("bot: %v", err)
		}
	})
	conns := b.Connections
	if conns == 0 {
		conns = DefaultConnections
	}
	if err := fs.WaitConnections(conns, hellos+conns, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return &botHarness{fs: fs, db: db, svc: svc, bot: b, logs: logs, stop: stop}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Generous: it bounds only how long a failure takes to show, on a
	// machine that may be loaded.
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20 s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// send delivers e like Slack: held while no socket is open.
func send(t *testing.T, fs *fakeslack.Server, env fakeslack.Envelope) fakeslack.Envelope {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		sent, err := fs.Send(env)
		if err == nil {
			return sent
		}
		if !errors.Is(err, fakeslack.ErrNoConnection) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// do sends an envelope and waits for its ack.
func do(t *testing.T, fs *fakeslack.Server, env fakeslack.Envelope) fakeslack.Envelope {
	t.Helper()
	sent := send(t, fs, env)
	if _, err := fs.WaitAck(sent.EnvelopeID, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	return sent
}

func (h *botHarness) release(t *testing.T, ticket string) commands.Release {
	t.Helper()
	var r commands.Release
	err := h.db.View(context.Background(), func(tx commands.Tx) error {
		var err error
		r, err = tx.LastRelease(ticket)
		return err
	})
	if err != nil && commands.ErrorCode(err) != commands.ENOTFOUND {
		t.Fatal(err)
	}
	return r
}

func (h *botHarness) state(t *testing.T, ticket string) commands.State {
	return h.release(t, ticket).State
}

// audit returns the audit actions of ticket, as actor:action.
func (h *botHarness) audit(t *testing.T, ticket string) []string {
	t.Helper()
	var out []string
	err := h.db.Audit(context.Background(), commands.AuditFilter{Ticket: ticket}, func(e commands.AuditEntry) error {
		out = append(out, e.Actor+":"+string(e.Action))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// cards returns the top-level messages of the release channel.
func cards(fs *fakeslack.Server) []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range fs.Messages(releaseChannel) {
		if m.ThreadTS == "" {
			out = append(out, m)
		}
	}
	return out
}

// settle waits until the bot is idle by what it records, not by a pause:
// every event it acked (the inbox holds it before the ack) is handled, every
// hook it started has ended and its result is recorded, and every effect
// is delivered (the fake Slack records a call before the outbox forgets
// it). Nothing can come after that but what a test sends next.
func (h *botHarness) settle(t *testing.T) {
	t.Helper()
	eventually(t, "every received event handled", func() bool {
		var pending []commands.InboxEvent
		err := h.db.View(context.Background(), func(tx commands.Tx) error {
			var err error
			pending, err = tx.PendingEvents()
			return err
		})
		return err == nil && len(pending) == 0
	})
	h.svc.Wait()
	eventually(t, "an empty outbox", func() bool {
		p, err := h.db.Pending(context.Background(), 1)
		return err == nil && len(p) == 0
	})
}

func button(t *testing.T, fs *fakeslack.Server, user, command string) fakeslack.Button {
	t.Helper()
	var found fakeslack.Button
	eventually(t, "a "+command+" button for "+user, func() bool {
		for _, b := range fs.Buttons(fakeslack.DMChannel(user)) {
			if b.Value == command {
				found = b
				return true
			}
		}
		return false
	})
	return found
}

func ephemeralTo(fs *fakeslack.Server, user, contains string) bool {
	return slices.ContainsFunc(fs.Ephemerals(user), func(m fakeslack.Message) bool { return strings.Contains(m.Text, contains) })
}

func TestSlackFullRelease(t *testing.T) {
	fs := fakeslack.New(t)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{})

	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1 no_need_admin")))
	approve := button(t, fs, bob, "accept PAY-1")
	eventually(t, "the card", func() bool { return len(cards(fs)) == 1 })
	card := cards(fs)[0]

	// Each step waits for the card to show it: a card update still queued
	// when a newer one comes is skipped by design (the card shows the
	// latest state), so without the wait the count of updates would
	// depend on the sender's pace.
	cardReads := func(state string) func() bool {
		return func() bool {
			c := cards(fs)
			return len(c) == 1 && strings.Contains(string(c[0].Blocks), state)
		}
	}
	do(t, fs, fs.ClickEnvelope(fakeslack.ClickOn(bob, approve)))
	eventually(t, "accepted", func() bool { return h.state(t, "PAY-1") == commands.StateAccepted })
	button(t, fs, ann, "dep start PAY-1")
	eventually(t, "the card accepted", cardReads("accepted"))

	do(t, fs, fs.EventEnvelope(fakeslack.DM(ann, "dep start PAY-1")))
	eventually(t, "deploying", func() bool { return h.state(t, "PAY-1") == commands.StateDeploying })
	eventually(t, "the card deploying", cardReads("deploying"))
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dep finish PAY-1")))
	eventually(t, "done", func() bool { return h.state(t, "PAY-1") == commands.StateDone })
	h.settle(t)

	final := cards(fs)
	if len(final) != 1 || final[0].TS != card.TS {
		t.Fatalf("release channel has %d top-level messages, want the one card %s", len(final), card.TS)
	}
	if final[0].Updates < 3 || !strings.Contains(string(final[0].Blocks), "done") {
		t.Errorf("the card was updated %d times and reads %s; want ≥ 3 updates ending in done", final[0].Updates, final[0].Blocks)
	}
	if got := h.release(t, "PAY-1").Card; got != card.TS {
		t.Errorf("the release's card: got %q, want %q", got, card.TS)
	}
	if n := len(fs.Messages(releaseChannel)) - 1; n == 0 {
		t.Error("no progress in the card's thread")
	}
	for _, m := range fs.Messages(releaseChannel)[1:] {
		if m.ThreadTS != card.TS {
			t.Errorf("a message outside the card's thread: %+v", m)
		}
	}
	if !ephemeralTo(fs, bob, "accepted PAY-1") {
		t.Errorf("the approver's click got no ephemeral reply: %+v", fs.Ephemerals(bob))
	}
	if dms := fs.Messages(fakeslack.DMChannel(ann)); !slices.ContainsFunc(dms, func(m fakeslack.Message) bool { return strings.Contains(m.Text, "PAY-1") }) {
		t.Errorf("the requester's DM reply is missing: %+v", dms)
	}
	audit := h.audit(t, "PAY-1")
	for _, want := range []string{ann + ":request", bob + ":accept", ann + ":start", ann + ":finish"} {
		if count(audit, want) != 1 {
			t.Errorf("audit has %d × %s, want 1: %v", count(audit, want), want, audit)
		}
	}
}

func TestSlackDuplicateDeliveryHasOneEffect(t *testing.T) {
	fs := fakeslack.New(t)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{})

	first := do(t, fs, fs.EventEnvelope(fakeslack.Event{ID: "EvDUP", User: ann, Channel: releaseChannel,
		Text: "<@" + fakeslack.BotUser + "> dobro PAY-1"}))
	second, _ := fs.Redeliver(first, "timeout")
	if _, err := fs.WaitAck(second.EnvelopeID, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	h.settle(t)
	// A late copy (Slack's 5 min retry, compressed) after all the effects.
	third, _ := fs.Redeliver(second, "timeout")
	if _, err := fs.WaitAck(third.EnvelopeID, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	h.settle(t)

	attempts := []int{}
	for _, s := range fs.Sent() {
		attempts = append(attempts, s.RetryAttempt)
	}
	if !slices.Equal(attempts, []int{0, 1, 2}) || len(fs.Acks()) != 3 {
		t.Errorf("deliveries %v, acks %d; want attempts 0, 1, 2 each acked", attempts, len(fs.Acks()))
	}
	if n := len(cards(fs)); n != 1 {
		t.Errorf("cards: got %d, want 1", n)
	}
	if n := len(fs.Messages(fakeslack.DMChannel(bob))); n != 1 {
		t.Errorf("approver DMs: got %d, want 1", n)
	}
	if a := h.audit(t, "PAY-1"); len(a) != 1 {
		t.Errorf("audit entries: %v, want one request", a)
	}
}

func TestSlackRedeliveryAfterRestart(t *testing.T) {
	fs := fakeslack.New(t)
	path := filepath.Join(t.TempDir(), "bot.db")
	h := startBot(t, fs, path, &testTracker{})
	env := do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1")))
	h.settle(t)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}

	// An event recorded just before a crash, never handled.
	db := openDB(t, path)
	svc := commands.NewService(commands.Config{Store: db, Tracker: &testTracker{}, Log: zerolog.Nop()})
	pending := commands.Message{EventID: "EvCRASH", Team: fakeslack.TeamID, User: ann, Channel: releaseChannel,
		Text: "dobro PAY-2", Via: commands.ViaMention, Time: time.Now().UTC()}
	if fresh, err := svc.Receive(context.Background(), pending); err != nil || !fresh {
		t.Fatalf("Receive: %v, %v", fresh, err)
	}
	db.Close()

	h = startBot(t, fs, path, &testTracker{})
	again, err := fs.Redeliver(env, "timeout")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.WaitAck(again.EnvelopeID, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the recovered command", func() bool { return h.state(t, "PAY-2") == commands.StateRequested })
	h.settle(t)
	if n := len(cards(fs)); n != 2 {
		t.Errorf("cards: got %d, want 2 (PAY-1 once, PAY-2 recovered)", n)
	}
	if a := h.audit(t, "PAY-1"); len(a) != 1 {
		t.Errorf("PAY-1 audit: %v, want one request", a)
	}
}

func TestSlackAcksFastWhileTheTrackerIsSlow(t *testing.T) {
	fs := fakeslack.New(t)
	// The tracker answers nothing until the gate opens: an ack that waited
	// for the tracker would never come, whatever the machine's load, and
	// one that came proves that it did not wait (no time threshold).
	tr := &testTracker{gate: make(chan struct{})}
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), tr)
	var envs []fakeslack.Envelope
	for _, ticket := range []string{"PAY-1", "PAY-2", "PAY-3", "PAY-4", "PAY-5", "PAY-6", "PAY-7", "PAY-8"} {
		envs = append(envs, send(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro "+ticket))))
		envs = append(envs, send(t, fs, fs.EventEnvelope(fakeslack.DM(bob, "queue"))))
	}
	var worst time.Duration
	for _, e := range envs {
		if _, err := fs.WaitAck(e.EnvelopeID, 20*time.Second); err != nil {
			t.Fatalf("envelope %s: %v (the tracker has not answered yet: the ack waited for it)", e.EnvelopeID, err)
		}
		if lat, _ := fs.AckLatency(e.EnvelopeID); lat > worst {
			worst = lat
		}
	}
	eventually(t, "the tracker asked", func() bool { return tr.entered() > 0 })
	if got := len(cards(fs)); got != 0 {
		t.Fatalf("%d cards before the tracker answered", got)
	}
	close(tr.gate)
	eventually(t, "eight cards", func() bool { return len(cards(fs)) == 8 })
	h.settle(t)
	t.Logf("FIGURE acks while the tracker answers nothing: %d of %d acked, slowest %v", len(envs), len(envs), worst)
}

func TestSlackReconnectLosesNothing(t *testing.T) {
	fs := fakeslack.New(t)
	fs.SetRetries(300*time.Millisecond, 0, 100*time.Millisecond, 500*time.Millisecond)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{})
	fs.RouteToDraining(true)
	fs.Disconnect("refresh_requested", 50*time.Millisecond)
	// Sent on the socket being closed: lost there, redelivered on the new one.
	send(t, fs, fs.EventEnvelope(fakeslack.Event{ID: "EvREFRESH", User: ann, Channel: releaseChannel,
		Text: "<@" + fakeslack.BotUser + "> dobro PAY-7"}))
	eventually(t, "the command", func() bool { return h.state(t, "PAY-7") == commands.StateRequested })
	// Both sockets were asked to refresh: each is opened again.
	if err := fs.WaitConnections(DefaultConnections, 2*DefaultConnections, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	h.settle(t)
	if n := fs.Opens(); n != 2*DefaultConnections {
		t.Errorf("apps.connections.open calls: got %d, want %d", n, 2*DefaultConnections)
	}
	if n := len(cards(fs)); n != 1 {
		t.Errorf("cards: got %d, want 1", n)
	}
	if a := h.audit(t, "PAY-7"); len(a) != 1 {
		t.Errorf("audit: %v, want one request", a)
	}
	// And the new connection serves.
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-8")))
	eventually(t, "a command on the new connection", func() bool { return h.state(t, "PAY-8") == commands.StateRequested })
}

func TestSlackReconnectsWhenPingsStop(t *testing.T) {
	fs := fakeslack.New(t)
	fs.SetPingInterval(50 * time.Millisecond)
	// An event sent to a socket the bot is giving up is redelivered, as Slack does.
	fs.SetRetries(300*time.Millisecond, 0, 100*time.Millisecond, 500*time.Millisecond)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{},
		func(s *Slack, _ *commands.Config) { s.PingInterval = 300 * time.Millisecond })
	fs.WithholdPings(true)
	if !fs.WaitFor(3*time.Second, func(st fakeslack.State) bool { return st.Opens >= 2*DefaultConnections }) {
		t.Fatal("the bot did not reconnect the sockets that stopped pinging")
	}
	fs.WithholdPings(false)
	if !fs.WaitFor(3*time.Second, func(st fakeslack.State) bool {
		return st.Connections == DefaultConnections && st.Hellos >= 2*DefaultConnections
	}) {
		t.Fatal("the bot did not settle on new connections")
	}
	send(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1")))
	eventually(t, "a command after the reconnect", func() bool { return h.state(t, "PAY-1") == commands.StateRequested })
}

func TestSlackAuthorisation(t *testing.T) {
	fs := fakeslack.New(t)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{})
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1")))
	approve := button(t, fs, bob, "accept PAY-1")

	// A display name is not an identity.
	do(t, fs, fs.EventEnvelope(fakeslack.Event{User: "U0ATTACKER", Channel: releaseChannel,
		Text: "<@" + fakeslack.BotUser + "> accept PAY-1", Username: "bob",
		Profile: map[string]string{"name": "bob", "display_name": bob, "real_name": "Bob the Approver"}}))
	// A click on the approver's button by someone else is theirs, not his.
	do(t, fs, fs.ClickEnvelope(fakeslack.Click{User: mallory, Username: "bob", Name: "bob", Channel: approve.Channel,
		MessageTS: approve.MessageTS, ActionID: approve.ActionID, BlockID: approve.BlockID, Value: approve.Value}))
	eventually(t, "both refusals", func() bool {
		return len(fs.Ephemerals("U0ATTACKER")) >= 1 && len(fs.Ephemerals(mallory)) >= 1
	})
	h.settle(t)
	if a, m := fs.Ephemerals("U0ATTACKER"), fs.Ephemerals(mallory); len(a) != 1 || len(m) != 1 {
		t.Errorf("refusals: %+v and %+v, want one each\nlog:\n%s", a, m, h.logs.String())
	}
	h.settle(t)
	if s := h.state(t, "PAY-1"); s != commands.StateRequested {
		t.Errorf("state: got %s, want requested", s)
	}
	audit := h.audit(t, "PAY-1")
	for _, want := range []string{"U0ATTACKER:refused", mallory + ":refused"} {
		if count(audit, want) != 1 {
			t.Errorf("audit lacks %s: %v", want, audit)
		}
	}
	if eph := fs.Ephemerals(mallory); eph[0].Channel != approve.Channel {
		t.Errorf("the refusal went to %s, want where the click was (%s)", eph[0].Channel, approve.Channel)
	}

	// The approver's double click: one transition, and "already" for the second.
	do(t, fs, fs.ClickEnvelope(fakeslack.ClickOn(bob, approve)))
	do(t, fs, fs.ClickEnvelope(fakeslack.ClickOn(bob, approve)))
	eventually(t, "two replies to the approver", func() bool { return len(fs.Ephemerals(bob)) == 2 })
	if count(h.audit(t, "PAY-1"), bob+":accept") != 1 {
		t.Errorf("audit: %v, want one accept", h.audit(t, "PAY-1"))
	}
	if !ephemeralTo(fs, bob, "already") {
		t.Errorf("the second click's reply: %+v", fs.Ephemerals(bob))
	}
}

func TestSlackUserGroupRoles(t *testing.T) {
	fs := fakeslack.New(t)
	fs.SetGroup("S01QA", bob)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{},
		func(_ *Slack, c *commands.Config) { c.Policy.Approvers = []string{"S01QA"} })
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1")))
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-2")))
	// The group's member was asked, and may approve.
	do(t, fs, fs.ClickEnvelope(fakeslack.ClickOn(bob, button(t, fs, bob, "accept PAY-1"))))
	eventually(t, "PAY-1 accepted", func() bool { return h.state(t, "PAY-1") == commands.StateAccepted })

	// Bob leaves the group: as soon as Slack says so, he no longer approves,
	// although the cached list is younger than its TTL.
	fs.SetGroup("S01QA")
	do(t, fs, fs.GroupChangedEnvelope("S01QA", nil, []string{bob}))
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(bob, releaseChannel, "accept PAY-2")))
	eventually(t, "the refusal", func() bool { return ephemeralTo(fs, bob, "Only approvers") })
	h.settle(t)
	if s := h.state(t, "PAY-2"); s != commands.StateRequested {
		t.Errorf("PAY-2: got %s, want requested", s)
	}
	if n := len(fs.Calls("usergroups.users.list")); n > 4 {
		t.Errorf("usergroups.users.list calls: %d; the cache should answer most checks", n)
	}
}

func TestSlackIgnoresWhatIsNotACommand(t *testing.T) {
	fs := fakeslack.New(t)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{})
	bot := "<@" + fakeslack.BotUser + "> "
	events := []fakeslack.Event{
		{ID: "EvBOT", Type: "message", Subtype: "bot_message", BotID: "B09OTHER", Channel: "D01ANN", Text: "dobro PAY-1"},
		{ID: "EvBOTUSER", User: "U09BOTUSER", BotID: "B09OTHER", Channel: releaseChannel, Text: bot + "dobro PAY-1"},
		{ID: "EvEDIT", Type: "message", Subtype: "message_changed", User: ann, Channel: "D01ANN", Text: "dobro PAY-1"},
		{ID: "EvEDITMENTION", User: ann, Channel: releaseChannel, Text: bot + "dobro PAY-1", Edited: true},
		{ID: "EvBROADCAST", Subtype: "thread_broadcast", User: ann, Channel: releaseChannel, Text: bot + "dobro PAY-1", ThreadTS: "1.2"},
		{ID: "EvOWN", Type: "message", User: fakeslack.BotUser, Channel: "D01ANN", Text: "dobro PAY-1"},
		{ID: "EvTEAM", Team: "T0OTHER", User: ann, Channel: releaseChannel, Text: bot + "dobro PAY-1"},
		{ID: "EvSHARED", UserTeam: "T0OTHER", User: "U0OUTSIDER", Channel: releaseChannel, Text: bot + "dobro PAY-1"},
		{ID: "EvCHANNEL", Type: "message", User: ann, Channel: releaseChannel, Text: "dobro PAY-1"},
	}
	for _, e := range events {
		do(t, fs, fs.EventEnvelope(e))
	}
	h.settle(t)
	var methods []string
	for _, c := range fs.Calls("") {
		if c.Method != "auth.test" && c.Method != "apps.connections.open" {
			methods = append(methods, c.Method)
		}
	}
	if len(methods) != 0 {
		t.Errorf("Web API calls: %v, want none but connecting", methods)
	}
	for _, e := range events {
		var seen bool
		_ = h.db.View(context.Background(), func(tx commands.Tx) error {
			_, seen, _ = tx.Event(e.ID)
			return nil
		})
		if seen {
			t.Errorf("%s was recorded in the inbox", e.ID)
		}
	}
	if r := h.release(t, "PAY-1"); r.ID != 0 {
		t.Errorf("a release was created: %+v", r)
	}
}

func TestSlackReadsEnvelopesSlackGoCannotParse(t *testing.T) {
	fs := fakeslack.New(t)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{})
	// An event type slack-go does not know is acked (and ignored), not
	// left for Slack to retry for ever.
	unknown := fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "x"))
	unknown.Payload = json.RawMessage(strings.Replace(string(unknown.Payload), `"type":"app_mention"`, `"type":"brand_new_event"`, 1))
	do(t, fs, unknown)
	// A mention slack-go fails to decode (a field of an unexpected shape)
	// is still a command: the bot reads only the fields it needs.
	odd := fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1"))
	var p map[string]any
	if err := json.Unmarshal(odd.Payload, &p); err != nil {
		t.Fatal(err)
	}
	p["event"].(map[string]any)["blocks"] = "not a list"
	odd.Payload, _ = json.Marshal(p)
	do(t, fs, odd)
	eventually(t, "the command", func() bool { return h.state(t, "PAY-1") == commands.StateRequested })
}

func TestSlackMentionElsewherePointsToTheChannel(t *testing.T) {
	fs := fakeslack.New(t)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{})
	env := do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, "C0OTHER", "dobro PAY-1")))
	again, _ := fs.Redeliver(env, "timeout")
	if _, err := fs.WaitAck(again.EnvelopeID, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	h.settle(t)
	eph := fs.Ephemerals(ann)
	if len(eph) != 1 || eph[0].Channel != "C0OTHER" || !strings.Contains(eph[0].Text, "<#"+releaseChannel+">") {
		t.Errorf("replies: %+v, want one pointer to <#%s> in C0OTHER", eph, releaseChannel)
	}
	if r := h.release(t, "PAY-1"); r.ID != 0 || len(cards(fs)) != 0 {
		t.Errorf("a mention elsewhere changed something: %+v", r)
	}
}

func TestSlackShutdownFinishesCommandsInFlight(t *testing.T) {
	fs := fakeslack.New(t)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{delay: 500 * time.Millisecond})
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1")))
	start := time.Now()
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if n := len(cards(fs)); n != 1 {
		t.Errorf("cards after shutdown: got %d, want the in-flight command's card", n)
	}
	if fs.Connections() != 0 {
		t.Errorf("a socket is still open after Run returned")
	}
}

// TestSlackWarnsAboutAnotherConnection opens other connections to the app
// before the bot connects. Slack's hello counts them: the bot logs an error
// (another process uses the app token) unless OtherConnections says whose
// they are, as a PostgreSQL leader can of a deposed leader's sockets; then
// it logs that at info level. More than one other bot can hold is an error
// whatever it says.
func TestSlackWarnsAboutAnotherConnection(t *testing.T) {
	const warning = "another connection to this Slack app is open: Slack gives each event to one connection, so only one dobrobot may run per app; stop the other"
	type line struct{ Level, Message string }
	tests := []struct {
		name       string
		others     int
		explain    func(int) string
		want       []line
		wantExtras []int
	}{
		{name: "another process", others: 1, want: []line{{"error", warning}}},
		{name: "a cause the caller does not know", others: 1, explain: func(int) string { return "" },
			want: []line{{"error", warning}}, wantExtras: []int{1}},
		{name: "a deposed leader's sockets", others: 2, explain: func(int) string { return "the deposed leader's" },
			want: []line{{"info", "other connections to this Slack app are open: the deposed leader's"}}, wantExtras: []int{2}},
		{name: "more than one bot can hold", others: MaxConnections + 1, explain: func(int) string { return "the deposed leader's" },
			want: []line{{"error", warning}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := fakeslack.New(t)
			for range tt.others {
				fs.OtherConnection(t)
			}
			var mu sync.Mutex
			var extras []int
			h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{}, func(b *Slack, _ *commands.Config) {
				b.Connections = 1 // one hello, which counts the others and this one
				if tt.explain != nil {
					b.OtherConnections = func(extra int) string {
						mu.Lock()
						defer mu.Unlock()
						extras = append(extras, extra)
						return tt.explain(extra)
					}
				}
			})
			lines := func() []line {
				var got []line
				for _, l := range strings.Split(h.logs.String(), "\n") {
					var e struct{ Level, Message string }
					if json.Unmarshal([]byte(l), &e) == nil && strings.Contains(e.Message, "connection") && strings.Contains(e.Message, "to this Slack app") {
						got = append(got, line(e))
					}
				}
				return got
			}
			eventually(t, "what the bot says of the other connections", func() bool { return len(lines()) >= len(tt.want) })
			if diff := cmp.Diff(tt.want, lines()); diff != "" {
				t.Errorf("log lines (-want +got):\n%s", diff)
			}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(tt.wantExtras, extras); diff != "" {
				t.Errorf("extra connections asked about (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSlackRefusedTokens(t *testing.T) {
	fs := fakeslack.New(t)
	db := openDB(t, filepath.Join(t.TempDir(), "bot.db"))
	defer db.Close()
	svc := commands.NewService(commands.Config{Store: db, Tracker: &testTracker{}, Log: zerolog.Nop()})
	tests := []struct {
		name               string
		app, bot, contains string
	}{
		{"bot token", fakeslack.AppToken, "xoxb-wrong", "slack.bot_token"},
		{"app token", "xapp-wrong", fakeslack.BotToken, "slack.app_token"},
		{"not an app token", fakeslack.BotToken, fakeslack.BotToken, "slack.app_token"},
		{"no channel", fakeslack.AppToken, fakeslack.BotToken, "slack.channel"},
		{"a channel name", fakeslack.AppToken, fakeslack.BotToken, "slack.channel must be the release channel's ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Slack{AppToken: tt.app, BotToken: tt.bot, APIURL: fs.URL, Channel: releaseChannel, Service: svc, Store: db, Log: zerolog.Nop()}
			switch tt.name {
			case "no channel":
				b.Channel = ""
			case "a channel name":
				b.Channel = "#releases"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := b.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.contains) || strings.Contains(err.Error(), "xoxb-") {
				t.Errorf("Run: %v; want an error naming %s (and no token)", err, tt.contains)
			}
			if ctx.Err() != nil {
				t.Error("Run kept trying until the context ended")
			}
		})
	}
}

// TestSlackRefreshLosesNoClick (T23): Slack refreshes one connection at a
// time and does not redeliver a click (an interactive payload) that was not
// acknowledged. Clicks sent while a connection is being refreshed count as
// lost when no ack comes, or when Slack had no connection to give them to.
// With two connections none is lost: the other one serves throughout. In
// the worst case, where Slack still gives envelopes to a connection it has
// asked to go, the test only reports the figure.
func TestSlackRefreshLosesNoClick(t *testing.T) {
	const rounds, clicks = 20, 5
	for _, tc := range []struct {
		conns      int
		toDraining bool
	}{{1, false}, {2, false}, {2, true}} {
		t.Run(fmt.Sprintf("%d connections, to draining %t", tc.conns, tc.toDraining), func(t *testing.T) {
			fs := fakeslack.New(t)
			fs.SetRetries(300*time.Millisecond, 0, 100*time.Millisecond)
			fs.RouteToDraining(tc.toDraining)
			h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{}, func(s *Slack, _ *commands.Config) { s.Connections = tc.conns })
			do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1")))
			approve := button(t, fs, bob, "accept PAY-1")
			var sent []string
			undelivered := 0
			for range rounds {
				hellos := fs.Hellos()
				if !fs.Refresh("refresh_requested", 50*time.Millisecond) {
					t.Fatal("no connection to refresh")
				}
				for range clicks {
					// A guest's click: refused, so it changes nothing and
					// can be clicked any number of times.
					env, err := fs.SendClick(fakeslack.ClickOn("U0GUEST", approve))
					if err != nil {
						undelivered++ // nowhere to deliver it: the user sees an error
					} else {
						sent = append(sent, env.EnvelopeID)
					}
					time.Sleep(20 * time.Millisecond)
				}
				if err := fs.WaitConnections(tc.conns, hellos+1, 5*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			unacked := func(st fakeslack.State) int {
				n := 0
				for _, id := range sent {
					if !st.Acked(id) {
						n++
					}
				}
				return n
			}
			fs.WaitFor(2*time.Second, func(st fakeslack.State) bool { return unacked(st) == 0 })
			var lost int
			fs.WaitFor(0, func(st fakeslack.State) bool { lost = undelivered + unacked(st); return true })
			h.settle(t)
			if rel := h.state(t, "PAY-1"); rel != commands.StateRequested {
				t.Errorf("PAY-1 is %s after guests' clicks, want requested", rel)
			}
			t.Logf("FIGURE refresh: %d connection(s), envelopes to a draining socket %t: %d refreshes, %d clicks during them, %d lost (%d with no connection to go to)",
				tc.conns, tc.toDraining, rounds, rounds*clicks, lost, undelivered)
			if tc.conns > 1 && !tc.toDraining && lost > 0 {
				// Say which clicks were lost, on which socket, and what the
				// bot logged about them: the figure alone does not say why.
				var st fakeslack.State
				fs.WaitFor(0, func(now fakeslack.State) bool { st = now; return true })
				for _, x := range st.Sent {
					if slices.Contains(sent, x.EnvelopeID) && !st.Acked(x.EnvelopeID) {
						t.Logf("not acked: %s, sent on socket %d at %s", x.EnvelopeID, x.Conn, x.Time.Format("15:04:05.000"))
						for _, line := range strings.Split(h.logs.String(), "\n") {
							if strings.Contains(line, x.EnvelopeID) {
								t.Log("  bot:", line)
							}
						}
					}
				}
				t.Errorf("%d of %d clicks were lost in refreshes with %d connections, want 0", lost, rounds*clicks, tc.conns)
			}
		})
	}
}

// TestSlackSendsALostAckAgain: the connection that carried an ack drops
// before Slack reads it. Slack does not send a click again, so the bot
// sends its recent acks again once it sees the connection go: on the other
// connection if it has one, else on the reopened one.
func TestSlackSendsALostAckAgain(t *testing.T) {
	for _, conns := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d connections", conns), func(t *testing.T) {
			fs := fakeslack.New(t)
			h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{}, func(s *Slack, _ *commands.Config) { s.Connections = conns })
			do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1")))
			approve := button(t, fs, bob, "accept PAY-1")
			hellos := fs.Hellos()
			fs.DropNextAcks(1)
			env, err := fs.SendClick(fakeslack.ClickOn(bob, approve))
			if err != nil {
				t.Fatal(err)
			}
			ack, err := fs.WaitAck(env.EnvelopeID, ackWindow)
			if err != nil {
				t.Fatalf("the lost ack was not sent again within Slack's %v: %v", ackWindow, err)
			}
			if err := fs.WaitConnections(conns, hellos+1, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			h.settle(t)
			if rel := h.state(t, "PAY-1"); rel != commands.StateAccepted {
				t.Errorf("PAY-1 is %s after bob's click, want accepted", rel)
			}
			if !strings.Contains(h.logs.String(), "sent its recent acks again") {
				t.Error("the log does not say the acks were sent again")
			}
			t.Logf("the ack came again on socket %d", ack.Conn)
		})
	}
}

func TestSocketRemembersAcksForTheAckWindow(t *testing.T) {
	var sock socket
	now := time.Now()
	sock.remember("stale", now.Add(-ackWindow-time.Second))
	sock.remember("first", now.Add(-time.Second))
	sock.remember("second", now)
	got := sock.takeRecent(now)
	var ids []string
	for _, a := range got {
		ids = append(ids, a.envelope)
	}
	if diff := cmp.Diff([]string{"first", "second"}, ids); diff != "" {
		t.Errorf("acks to send again (-want +got):\n%s", diff)
	}
	if again := sock.takeRecent(now); len(again) != 0 {
		t.Errorf("taken twice: %v", again)
	}
	// The stale one was forgotten when the next one was remembered.
	sock.remember("stale", now.Add(-ackWindow-time.Second))
	sock.remember("fresh", now)
	if n := len(sock.recent); n != 1 {
		t.Errorf("remembered %d acks, want only the fresh one", n)
	}
}
