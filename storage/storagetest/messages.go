package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dobrobot/dobrobot/commands"
)

func testInbox(t *testing.T, s commands.Store, reopen func() commands.Store) {
	ev := func(id string, minute int, processed bool) commands.InboxEvent {
		return commands.InboxEvent{
			ID: id, Received: at(minute), Processed: processed,
			Message: commands.Message{EventID: id, Team: "T01", User: "U01ANN", Channel: "C01", Thread: "1700000000.000100",
				Text: "accept PAY-1", Via: commands.ViaButton, Time: at(minute)},
		}
	}
	putEvents := func(es ...commands.InboxEvent) {
		t.Helper()
		update(t, s, func(tx commands.Tx) error {
			for _, e := range es {
				if err := tx.PutEvent(e); err != nil {
					return err
				}
			}
			return nil
		})
	}
	pending := func() []string {
		t.Helper()
		return eventIDs(read(t, s, func(tx commands.Tx) ([]commands.InboxEvent, error) { return tx.PendingEvents() }))
	}
	event := func(id string) (commands.InboxEvent, bool) {
		t.Helper()
		var e commands.InboxEvent
		var ok bool
		if err := s.View(context.Background(), func(tx commands.Tx) error {
			var err error
			e, ok, err = tx.Event(id)
			return err
		}); err != nil {
			t.Fatalf("Event(%s): %v", id, err)
		}
		return e, ok
	}
	prune := func(before time.Time) int {
		t.Helper()
		return write(t, s, func(tx commands.Tx) (int, error) { return tx.PruneEvents(before) })
	}

	if _, ok := event("Ev1"); ok {
		t.Fatalf("Event(Ev1) found in an empty store")
	}
	putEvents(ev("Ev3", 3, false), ev("Ev1", 1, false), ev("Ev0", 0, true), ev("Ev2", 2, false))
	if got, ok := event("Ev1"); !ok || !cmp.Equal(got, ev("Ev1", 1, false), opts) {
		t.Errorf("Event(Ev1) = %+v, %t; want %+v, true", got, ok, ev("Ev1", 1, false))
	}
	if got, want := pending(), []string{"Ev1", "Ev2", "Ev3"}; !cmp.Equal(got, want) {
		t.Errorf("PendingEvents() = %v, want %v (oldest first, processed ones left out)", got, want)
	}

	putEvents(ev("Ev2", 2, true))
	if got, want := pending(), []string{"Ev1", "Ev3"}; !cmp.Equal(got, want) {
		t.Errorf("after Ev2 was processed, PendingEvents() = %v, want %v", got, want)
	}
	if got, _ := event("Ev2"); !got.Processed {
		t.Errorf("Event(Ev2) after PutEvent with Processed: %+v", got)
	}
	// An event handled without effect (its sender was told nothing changed)
	// keeps that mark: it must never be replayed.
	failed := ev("Ev2", 2, true)
	failed.Failed = true
	putEvents(failed)
	if got, _ := event("Ev2"); !cmp.Equal(got, failed, opts) {
		t.Errorf("Event(Ev2) after PutEvent with Failed = %+v, want %+v", got, failed)
	}
	if got, want := pending(), []string{"Ev1", "Ev3"}; !cmp.Equal(got, want) {
		t.Errorf("after Ev2 was marked failed, PendingEvents() = %v, want %v", got, want)
	}

	// Only processed events received strictly before the time go.
	if n := prune(at(2)); n != 1 {
		t.Errorf("PruneEvents(minute 2) = %d, want 1 (Ev0)", n)
	}
	for id, want := range map[string]bool{"Ev0": false, "Ev1": true, "Ev2": true, "Ev3": true} {
		if _, ok := event(id); ok != want {
			t.Errorf("after PruneEvents(minute 2), Event(%s) found = %t, want %t", id, ok, want)
		}
	}
	if n := prune(at(100)); n != 1 {
		t.Errorf("PruneEvents(minute 100) = %d, want 1 (Ev2; pending ones stay)", n)
	}
	if n := prune(at(100)); n != 0 {
		t.Errorf("PruneEvents again = %d, want 0", n)
	}
	if got, want := pending(), []string{"Ev1", "Ev3"}; !cmp.Equal(got, want) {
		t.Errorf("after pruning, PendingEvents() = %v, want %v", got, want)
	}

	// Replacing a record moves it in the order.
	putEvents(ev("Ev1", 5, false))
	s = reopen()
	if got, want := pending(), []string{"Ev3", "Ev1"}; !cmp.Equal(got, want) {
		t.Errorf("after Ev1 was received again later, and a reopen, PendingEvents() = %v, want %v", got, want)
	}
	all := read(t, s, func(tx commands.Tx) ([]commands.InboxEvent, error) { return tx.PendingEvents() })
	if diff := cmp.Diff([]commands.InboxEvent{ev("Ev3", 3, false), ev("Ev1", 5, false)}, all, opts); diff != "" {
		t.Errorf("PendingEvents() (-want +got):\n%s", diff)
	}
}

func testOutbox(t *testing.T, s commands.Store, reopen func() commands.Store) {
	r := put(t, s, release("PAY-1", commands.StateRequested, 0))[0]
	in := []commands.Effect{
		{Kind: commands.EffectReply, Event: "Ev1", User: "U01ANN", Channel: "C01", Via: commands.ViaMention, Text: commands.Text{commands.Plain("queued")}},
		{Kind: commands.EffectCard, Event: "Ev1", Channel: "C01", Release: &r},
		{Kind: commands.EffectDM, Event: "Ev1", User: "U02BOB", Text: commands.Text{commands.Plain("please accept")}, Buttons: []commands.Button{{Label: "Accept", Command: "accept PAY-1"}}},
		{Kind: commands.EffectThread, Event: "Ev2", Channel: "C01", Release: &r, Text: commands.Text{commands.Plain("hook started")}},
		{Kind: commands.EffectDM, Event: "Ev2", User: "U03ADM", Text: commands.Text{commands.Plain("you're next")}},
	}
	emit := func(es ...commands.Effect) []commands.Effect {
		t.Helper()
		return writeEach(t, s, es, commands.Tx.Emit)
	}
	pending := func(max int) []commands.Effect {
		t.Helper()
		es, err := s.Pending(context.Background(), max)
		if err != nil {
			t.Fatalf("Pending(%d): %v", max, err)
		}
		return es
	}

	out := append(emit(in[:3]...), emit(in[3:]...)...)
	var last uint64
	for i, e := range out {
		if e.ID <= last {
			t.Errorf("effect %d got ID %d after %d; IDs must increase", i, e.ID, last)
		}
		last = e.ID
		want := in[i]
		want.ID = e.ID
		if diff := cmp.Diff(want, e, opts); diff != "" {
			t.Errorf("Emit returned (-want +got):\n%s", diff)
		}
	}
	if diff := cmp.Diff(out, pending(10), opts); diff != "" {
		t.Errorf("Pending(10) (-want +got):\n%s", diff)
	}
	if got, want := effectIDs(pending(2)), effectIDs(out[:2]); !cmp.Equal(got, want) {
		t.Errorf("Pending(2) = %v, want the oldest two %v", got, want)
	}

	if err := s.Delivered(context.Background(), out[0].ID, out[2].ID); err != nil {
		t.Fatalf("Delivered: %v", err)
	}
	want := []uint64{out[1].ID, out[3].ID, out[4].ID}
	if got := effectIDs(pending(10)); !cmp.Equal(got, want) {
		t.Errorf("after delivering the 1st and 3rd, Pending(10) = %v, want %v", got, want)
	}
	// Delivering again, or unknown IDs, is harmless.
	if err := s.Delivered(context.Background(), out[0].ID, out[4].ID+1000); err != nil {
		t.Errorf("Delivered of already delivered and unknown IDs: %v", err)
	}
	if err := s.Delivered(context.Background()); err != nil {
		t.Errorf("Delivered of no IDs: %v", err)
	}
	s = reopen()
	if got := effectIDs(pending(10)); !cmp.Equal(got, want) {
		t.Errorf("after a reopen, Pending(10) = %v, want %v", got, want)
	}

	// IDs are not reused, even once the outbox is empty.
	if err := s.Delivered(context.Background(), want...); err != nil {
		t.Fatalf("Delivered: %v", err)
	}
	if got := pending(10); len(got) != 0 {
		t.Errorf("after delivering everything, Pending(10) = %v", effectIDs(got))
	}
	if e := emit(in[0])[0]; e.ID <= last {
		t.Errorf("an effect emitted after the outbox emptied got ID %d, not above %d", e.ID, last)
	}
}

// testPendingAfter checks the outbox cursor: PendingAfter lists what Pending
// lists past an effect ID, oldest first, at most max, and nothing past the
// last.
func testPendingAfter(t *testing.T, s commands.Store, _ func() commands.Store) {
	out := write(t, s, func(tx commands.Tx) ([]commands.Effect, error) {
		var out []commands.Effect
		for i := range 4 {
			e, err := tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U01ANN", Text: commands.Text{commands.Plain(fmt.Sprint("note ", i))}})
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	})
	after := func(id uint64, max int) []uint64 {
		t.Helper()
		es, err := s.PendingAfter(context.Background(), id, max)
		if err != nil {
			t.Fatalf("PendingAfter(%d, %d): %v", id, max, err)
		}
		return effectIDs(es)
	}
	all := effectIDs(out)
	for _, tc := range []struct {
		after uint64
		max   int
		want  []uint64
	}{
		{0, 0, all},
		{all[0], 0, all[1:]},
		{all[0], 2, all[1:3]},
		{all[3], 0, nil},
	} {
		if diff := cmp.Diff(tc.want, after(tc.after, tc.max), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("PendingAfter(%d, %d) (-want +got):\n%s", tc.after, tc.max, diff)
		}
	}
	if err := s.Delivered(context.Background(), all[1]); err != nil {
		t.Fatalf("Delivered: %v", err)
	}
	if diff := cmp.Diff([]uint64{all[2], all[3]}, after(all[0], 0)); diff != "" {
		t.Errorf("PendingAfter after a delivery (-want +got):\n%s", diff)
	}
}

// testUpdateFirst checks that UpdateFirst is an Update: what fn writes is
// committed together, a failing fn writes nothing, and an ended ctx runs
// nothing.
func testUpdateFirst(t *testing.T, s commands.Store, _ func() commands.Store) {
	ctx := context.Background()
	if err := s.UpdateFirst(ctx, func(tx commands.Tx) error {
		return tx.PutEvent(commands.InboxEvent{ID: "Ev1", Received: at(1)})
	}); err != nil {
		t.Fatalf("UpdateFirst: %v", err)
	}
	boom := errors.New("boom")
	if err := s.UpdateFirst(ctx, func(tx commands.Tx) error {
		if err := tx.PutEvent(commands.InboxEvent{ID: "Ev2", Received: at(2)}); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("UpdateFirst with a failing fn returned %v, want fn's error", err)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	if err := s.UpdateFirst(ended, func(tx commands.Tx) error {
		ran = true
		return tx.PutEvent(commands.InboxEvent{ID: "Ev3", Received: at(3)})
	}); !errors.Is(err, context.Canceled) {
		t.Errorf("UpdateFirst with an ended ctx returned %v, want context.Canceled", err)
	}
	if ran {
		t.Error("UpdateFirst ran fn with an ended ctx")
	}
	got := read(t, s, func(tx commands.Tx) ([]commands.InboxEvent, error) { return tx.PendingEvents() })
	if diff := cmp.Diff([]string{"Ev1"}, eventIDs(got)); diff != "" {
		t.Errorf("inbox after the UpdateFirst calls (-want +got):\n%s", diff)
	}
}
