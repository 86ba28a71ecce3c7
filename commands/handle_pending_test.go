package commands_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// Issue 19, item 3: PostgreSQL standbys hold Slack connections, record the
// events they acknowledge as pending, and leave them to the leader, whose
// HandlePending carries them out.

// TestHandlePending records in the inbox, as a standby does, a young event
// and one too old to carry out. Before Recover, HandlePending leaves them
// (Recover reports interrupted hooks first, then handles what is pending).
// After it, two scans of the leader run at once: the young event is carried
// out once, the old one dropped and its sender told, and both end processed.
func TestHandlePending(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	young := commands.Message{EventID: "ev-standby", User: ann, Channel: "C0REL", Text: "dobro PAY-2 no_need_admin", Via: commands.ViaMention, Time: h.now}
	old := commands.Message{EventID: "ev-old", User: ann, Channel: "C0REL", Text: "dobro PAY-3", Via: commands.ViaMention, Time: h.now}
	record := func() {
		t.Helper()
		if err := h.db.Update(ctx, func(tx commands.Tx) error {
			if err := tx.PutEvent(commands.InboxEvent{ID: young.EventID, Message: young, Received: h.now.Add(-time.Second)}); err != nil {
				return err
			}
			return tx.PutEvent(commands.InboxEvent{ID: old.EventID, Message: old, Received: h.now.Add(-commands.ReplayWindow - time.Second)})
		}); err != nil {
			t.Fatal(err)
		}
	}

	// A new leader's Service, before its Recover.
	svc := h.restart()
	record()
	if err := svc.HandlePending(ctx); err != nil {
		t.Fatal(err)
	}
	if ev := h.event(young.EventID); ev.Processed {
		t.Fatalf("HandlePending before Recover handled an event")
	}
	// Recover handles what is pending; what a standby records after is
	// HandlePending's.
	if err := svc.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	svc.Wait()
	h.drain()
	young.EventID, young.Text, old.EventID = "ev-standby-2", "dobro PAY-4 no_need_admin", "ev-old-2"
	record()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := svc.HandlePending(ctx); err != nil {
				t.Errorf("HandlePending: %v", err)
			}
		})
	}
	wg.Wait()
	svc.Wait()

	if diff := cmp.Diff([]string{ann + " request PAY-2 >requested", ann + " request PAY-4 >requested"}, h.audit()); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	for _, id := range []string{young.EventID, old.EventID} {
		if ev := h.event(id); !ev.Processed || ev.Failed != (id == old.EventID) {
			t.Errorf("inbox record of %s: processed %t, failed %t", id, ev.Processed, ev.Failed)
		}
	}
	told := 0
	for _, e := range h.drain() {
		if e.Kind == commands.EffectDM && e.User == ann && e.Event == old.EventID {
			told++
		}
	}
	if told != 1 {
		t.Errorf("the sender of the dropped event was told %d times, want 1", told)
	}
	// A scan with nothing pending does nothing.
	if err := svc.HandlePending(ctx); err != nil {
		t.Errorf("HandlePending with nothing pending: %v", err)
	}
	if n := len(h.audit()); n != 2 {
		t.Errorf("%d audit entries after a scan of nothing, want 2", n)
	}
}
