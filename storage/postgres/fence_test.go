package postgres

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/bolttest"
)

// TestFenceRequests checks that the Slack transport of a deposed leader sends
// nothing: not a request, nor a write on a connection opened while it led.
func TestFenceRequests(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	var leading atomic.Bool
	leading.Store(true)
	base := FenceConns(leading.Load)
	defer base.CloseIdleConnections()
	c := &http.Client{Transport: FenceRequests(base, leading.Load)}

	post := func() error {
		resp, err := c.Post(srv.URL+"/api/chat.postMessage", "application/json", strings.NewReader(`{"text":"hi"}`))
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := post(); err != nil || calls.Load() != 1 {
		t.Fatalf("a leader's call: %v, %d calls", err, calls.Load())
	}
	leading.Store(false)
	if err := post(); !errors.Is(err, ErrNotLeader) || calls.Load() != 1 {
		t.Errorf("a deposed leader's call: %v, %d calls; want ErrNotLeader and no call", err, calls.Load())
	}
	// Past RoundTrip's check (as when frozen right after it), the pooled
	// connection still refuses to write.
	direct := &http.Client{Transport: base}
	resp, err := direct.Post(srv.URL+"/api/chat.postMessage", "application/json", strings.NewReader(`{"text":"hi"}`))
	if err == nil {
		resp.Body.Close()
	}
	// The refused write closes the connection, so the transport may report
	// that instead of ErrNotLeader.
	if err == nil || calls.Load() != 1 {
		t.Errorf("a write on a leader's connection after the lease ran out: %v, %d calls; want an error and no call", err, calls.Load())
	}
}

// TestFencedOutbox checks that a deposed leader's bot sees an empty outbox.
func TestFencedOutbox(t *testing.T) {
	db := bolttest.Open(t)
	ctx := context.Background()
	if err := db.Update(ctx, func(tx commands.Tx) error {
		_, err := tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U01", Text: commands.Text{commands.Plain("hi")}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var leading atomic.Bool
	s := FencedOutbox{Store: db, Leading: leading.Load}
	for _, lead := range []bool{true, false} {
		leading.Store(lead)
		es, err := s.Pending(ctx, 10)
		if want := map[bool]int{true: 1, false: 0}[lead]; err != nil || len(es) != want {
			t.Errorf("Pending while leading=%t: %d effects, %v; want %d", lead, len(es), err, want)
		}
	}
}
