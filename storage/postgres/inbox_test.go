package postgres

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestInboxRecord checks what a standby may write: an event it acknowledges,
// as pending, without the leader's term, and nothing else. A record never
// changes an existing one (a processed event stays processed), a copy of an
// event is not new whoever recorded it first, and the leader listening on
// the inbox is woken by each new record.
func TestInboxRecord(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	ctx := context.Background()
	leader := openStore(t, dsn, Options{Schema: schema})
	// The standby's store: its fence says it does not lead.
	standby := openStore(t, dsn, Options{Schema: schema, Fence: func() (int64, bool) { return 0, false }})

	done := commands.InboxEvent{ID: "Ev1DONE", Message: commands.Message{EventID: "Ev1DONE", User: "U01", Text: "dobro PAY-1"},
		Received: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Processed: true}
	if err := leader.Update(ctx, func(tx commands.Tx) error { return tx.PutEvent(done) }); err != nil {
		t.Fatal(err)
	}
	if err := standby.Update(ctx, func(tx commands.Tx) error { return tx.PutEvent(commands.InboxEvent{ID: "EvX"}) }); !errors.Is(err, ErrFenced) {
		t.Fatalf("a standby's Update: %v, want ErrFenced", err)
	}

	lctx, stop := context.WithCancel(ctx)
	defer stop()
	woken := make(chan struct{}, 16)
	var listening sync.WaitGroup
	listening.Go(func() { leader.ListenInbox(lctx, 50*time.Millisecond, func() { woken <- struct{}{} }) })
	defer listening.Wait()
	defer stop()
	wait(t, woken, 10*time.Second, "the first wake, once listening")

	now := time.Date(2026, 5, 6, 7, 8, 9, 10, time.UTC)
	in := standby.Inbox(func() time.Time { return now })
	msg := func(id string) commands.Message {
		return commands.Message{EventID: id, User: "U02", Channel: "C0REL", Text: "dobro PAY-2", Via: commands.ViaMention}
	}
	tests := []struct {
		name  string
		m     commands.Message
		fresh bool
		code  string // "" for no error
		wake  bool
	}{
		{"a new event", msg("Ev2NEW"), true, "", true},
		{"the same event again", msg("Ev2NEW"), false, "", false},
		{"an event the leader processed", msg("Ev1DONE"), false, "", false},
		{"no event ID", msg(""), false, commands.EINVALID, false},
		{"an event ID no row can hold", msg("Ev\x00"), false, commands.EINVALID, false},
	}
	for _, tt := range tests {
		fresh, err := in.Record(ctx, tt.m)
		if fresh != tt.fresh || commands.ErrorCode(err) != tt.code || (tt.code == "" && err != nil) {
			t.Errorf("%s: Record = %t, %v; want %t, code %q", tt.name, fresh, err, tt.fresh, tt.code)
		}
		if tt.wake {
			wait(t, woken, 10*time.Second, tt.name+": the leader's wake")
		}
	}

	// Concurrent copies of one event: exactly one is new.
	var (
		wg    sync.WaitGroup
		fresh atomic.Int32
	)
	for range 8 {
		wg.Go(func() {
			ok, err := in.Record(ctx, msg("Ev3MANY"))
			if err != nil {
				t.Errorf("concurrent Record: %v", err)
			}
			if ok {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Errorf("%d of 8 concurrent copies of one event were new, want 1", fresh.Load())
	}

	var got []commands.InboxEvent
	var gotDone commands.InboxEvent
	if err := leader.View(ctx, func(tx commands.Tx) error {
		var err error
		if got, err = tx.PendingEvents(); err != nil {
			return err
		}
		gotDone, _, err = tx.Event("Ev1DONE")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := []commands.InboxEvent{
		{ID: "Ev2NEW", Message: msg("Ev2NEW"), Received: now},
		{ID: "Ev3MANY", Message: msg("Ev3MANY"), Received: now},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pending events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(done, gotDone); diff != "" {
		t.Errorf("the processed event after a standby recorded it again (-want +got):\n%s", diff)
	}
	// Nothing but the inbox: the audit and the outbox are empty.
	for _, table := range []string{"audit", "outbox", "releases"} {
		if n := scalar[int64](t, dsn, "SELECT count(*) FROM "+schema+"."+table); n != 0 {
			t.Errorf("%s has %d rows after the standby's records, want 0", table, n)
		}
	}
}

// TestStandbyRequests checks that a standby's Slack client reaches Slack
// only to hold Socket Mode connections: every other method is refused
// before it leaves the process.
func TestStandbyRequests(t *testing.T) {
	var calls []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.URL.Path)
		mu.Unlock()
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	c := &http.Client{Transport: StandbyRequests(http.DefaultTransport)}
	tests := []struct {
		method string
		sent   bool
	}{
		{"auth.test", true},
		{"apps.connections.open", true},
		{"chat.postMessage", false},
		{"chat.postEphemeral", false},
		{"chat.update", false},
		{"conversations.open", false},
		{"usergroups.users.list", false},
		{"auth.test/../chat.postMessage", false},
	}
	for _, tt := range tests {
		resp, err := c.Post(srv.URL+"/api/"+tt.method, "application/x-www-form-urlencoded", strings.NewReader("text=hi"))
		if err == nil {
			resp.Body.Close()
		}
		if tt.sent && err != nil {
			t.Errorf("%s: %v, want it sent", tt.method, err)
		}
		if !tt.sent && !errors.Is(err, ErrStandby) {
			t.Errorf("%s: %v, want ErrStandby", tt.method, err)
		}
	}
	if diff := cmp.Diff([]string{"/api/auth.test", "/api/apps.connections.open"}, calls); diff != "" {
		t.Errorf("calls that reached the server (-want +got):\n%s", diff)
	}
}
