package bot

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
)

// storeRecorder records events in a Store's inbox as postgres.Inbox does:
// pending, and only when the event ID is not there yet.
type storeRecorder struct{ store commands.Store }

func (r storeRecorder) Record(ctx context.Context, m commands.Message) (bool, error) {
	fresh := false
	err := r.store.Update(ctx, func(tx commands.Tx) error {
		if _, ok, err := tx.Event(m.EventID); err != nil || ok {
			return err
		}
		fresh = true
		return tx.PutEvent(commands.InboxEvent{ID: m.EventID, Message: m, Received: time.Now()})
	})
	return fresh, err
}

// TestSlackStandby runs a standby bot (Slack.Standby) against fakeslack: it
// records and acknowledges each command and click, once per event; it
// acknowledges what is not a command without recording it; it leaves a
// mention outside the release channel unacknowledged, for the leader to
// answer; it calls no Web API method but the two it connects with; and a
// leader's Service then carries out what it recorded.
func TestSlackStandby(t *testing.T) {
	fs := fakeslack.New(t)
	db := openDB(t, filepath.Join(t.TempDir(), "bot.db"))
	defer db.Close()
	logs := &syncBuffer{}
	b := &Slack{
		AppToken: fakeslack.AppToken, BotToken: fakeslack.BotToken, APIURL: strings.TrimSuffix(fs.URL, "/"),
		Channel: releaseChannel, Log: zerolog.New(logs).Level(zerolog.DebugLevel),
		Standby: storeRecorder{db}, Shared: true, ShutdownTimeout: 5 * time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	if err := fs.WaitConnections(DefaultConnections, DefaultConnections, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	dobro := do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1")))
	again, err := fs.Redeliver(dobro, "timeout")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.WaitAck(again.EnvelopeID, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	do(t, fs, fs.EventEnvelope(fakeslack.DM(ann, "queue")))
	do(t, fs, fs.ClickEnvelope(fakeslack.Click{User: bob, Channel: fakeslack.DMChannel(bob), MessageTS: "1.000001",
		ActionID: buttonPrefix + "decline", BlockID: "b1", Value: "decline PAY-1"}))
	do(t, fs, fs.EventEnvelope(fakeslack.Event{ID: "EvOWN", Type: "message", User: fakeslack.BotUser, Channel: "D01ANN", Text: "dobro PAY-2"}))
	elsewhere, err := fs.Send(fs.EventEnvelope(fakeslack.Mention(ann, "C0OTHER", "dobro PAY-3")))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the standby to pass over the mention elsewhere", func() bool {
		return strings.Contains(logs.String(), "a mention outside the release channel: left to the leader")
	})
	if _, acked := fs.AckLatency(elsewhere.EnvelopeID); acked {
		t.Errorf("the standby acknowledged a mention outside the release channel, which it cannot answer")
	}

	var pending []commands.InboxEvent
	if err := db.View(ctx, func(tx commands.Tx) error {
		var err error
		pending, err = tx.PendingEvents()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range pending {
		got = append(got, ev.Message.Text)
	}
	want := []string{"dobro PAY-1", "queue", "decline PAY-1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pending inbox events (-want +got):\n%s", diff)
	}
	if n := strings.Count(logs.String(), `"fresh":false`); n != 1 {
		t.Errorf("%d deliveries recorded as not new, want 1 (the redelivered dobro)", n)
	}
	var methods []string
	for _, c := range fs.Calls("") {
		if c.Method != "auth.test" && c.Method != "apps.connections.open" {
			methods = append(methods, c.Method)
		}
	}
	if len(methods) != 0 {
		t.Errorf("a standby called %v; want nothing but connecting", methods)
	}
	if strings.Contains(logs.String(), "another connection to this Slack app") {
		t.Errorf("a standby warned of its siblings' connections")
	}

	// The leader carries the recorded events out.
	svc := commands.NewService(commands.Config{Store: db, Tracker: &testTracker{}, Log: zerolog.Nop(), Policy: commands.Policy{
		Approvers: []string{bob}, Admins: []string{adm}, Components: []string{"backend"}, Channel: releaseChannel}})
	if err := svc.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	svc.Wait()
	var rel commands.Release
	if err := db.View(ctx, func(tx commands.Tx) error {
		var err error
		rel, err = tx.LastRelease("PAY-1")
		return err
	}); err != nil {
		t.Fatalf("PAY-1 after the leader's Recover: %v", err)
	}
	if rel.Requester != ann {
		t.Errorf("PAY-1 requested by %q, want %q", rel.Requester, ann)
	}

	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
	done <- nil // for the deferred wait
	if !fs.WaitFor(5*time.Second, func(st fakeslack.State) bool { return st.Connections == 0 }) {
		t.Errorf("%d sockets still open 5 s after the standby's Run returned", fs.Connections())
	}
}

// TestSlackStandbyNeedsNoService checks that a standby bot is accepted
// without a Service or a Store, and an ordinary one still is not.
func TestSlackStandbyNeedsNoService(t *testing.T) {
	base := &Slack{AppToken: "xapp-1", BotToken: "xoxb-1", Channel: releaseChannel}
	standby := &Slack{AppToken: "xapp-1", BotToken: "xoxb-1", Channel: releaseChannel, Standby: storeRecorder{}}
	if err := standby.check(); err != nil {
		t.Errorf("a standby without a Service: %v", err)
	}
	if err := base.check(); err == nil {
		t.Errorf("a bot with neither a Service nor a Standby recorder was accepted")
	}
}
