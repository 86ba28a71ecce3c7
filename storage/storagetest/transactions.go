package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// snapshot is everything a store holds, as its methods return it.
type snapshot struct {
	Recent  []commands.Release
	Open    []commands.Release
	Locks   []commands.Lock
	Head    head
	Audit   []commands.AuditEntry
	Events  map[string]commands.InboxEvent
	Pending []commands.InboxEvent
	Outbox  []commands.Effect
	// Deployed is what is where (issue 14).
	Deployed []commands.Deployed
}

func snap(t *testing.T, s commands.Store, eventIDs ...string) snapshot {
	t.Helper()
	var sn snapshot
	err := s.View(context.Background(), func(tx commands.Tx) error {
		var err error
		if sn.Recent, err = tx.Recent(1000); err != nil {
			return err
		}
		if sn.Open, err = tx.Open(); err != nil {
			return err
		}
		if sn.Locks, err = tx.Locks(); err != nil {
			return err
		}
		if sn.Head.Seq, sn.Head.Hash, err = tx.AuditHead(); err != nil {
			return err
		}
		if sn.Pending, err = tx.PendingEvents(); err != nil {
			return err
		}
		if sn.Deployed, err = tx.Deployed(); err != nil {
			return err
		}
		sn.Events = map[string]commands.InboxEvent{}
		for _, id := range eventIDs {
			e, ok, err := tx.Event(id)
			if err != nil {
				return err
			}
			if ok {
				sn.Events[id] = e
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	sn.Audit = verified(t, s)
	if sn.Outbox, err = s.Pending(context.Background(), 1000); err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return sn
}

// fill writes one of everything and returns the IDs of the events it wrote.
func fill(t *testing.T, s commands.Store) []string {
	t.Helper()
	update(t, s, func(tx commands.Tx) error {
		r, err := tx.PutRelease(release("PAY-1", commands.StateRequested, 0))
		if err != nil {
			return err
		}
		if _, err := tx.PutRelease(release("PAY-2", commands.StateDone, 1)); err != nil {
			return err
		}
		if err := tx.PutLock(commands.Lock{Component: "backend", Release: r.ID, Ticket: r.Ticket, By: "U01ANN", Since: at(2)}); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(entry("U01ANN", "PAY-1", commands.ActionRequest, commands.StateNone, commands.StateRequested, 0)); err != nil {
			return err
		}
		if err := tx.PutDeployed(deployed("production", "backend", 2, 1)); err != nil {
			return err
		}
		for i, id := range []string{"Ev1", "Ev2"} {
			e := commands.InboxEvent{
				ID: id, Received: at(i), Processed: i == 1,
				Message: commands.Message{EventID: id, User: "U01ANN", Channel: "C01", Text: "dobro PAY-1", Via: commands.ViaMention, Time: at(i)},
			}
			if err := tx.PutEvent(e); err != nil {
				return err
			}
		}
		_, err = tx.Emit(commands.Effect{Kind: commands.EffectCard, Event: "Ev1", Channel: "C01", Release: &r, Text: commands.Text{commands.Plain("PAY-1 requested")},
			Buttons: []commands.Button{{Label: "Accept", Command: "accept PAY-1", Style: "primary"}}})
		return err
	})
	return []string{"Ev1", "Ev2"}
}

func testAtomicity(t *testing.T, s commands.Store, _ func() commands.Store) {
	events := fill(t, s)
	before := snap(t, s, append(events, "Ev3")...)
	if len(before.Recent) != 2 || len(before.Locks) != 1 || len(before.Audit) != 1 || len(before.Events) != 2 || len(before.Outbox) != 1 {
		t.Fatalf("fill wrote %d releases, %d locks, %d audit entries, %d events, %d effects; want 2, 1, 1, 2, 1",
			len(before.Recent), len(before.Locks), len(before.Audit), len(before.Events), len(before.Outbox))
	}

	failWith := func(name string, want error) {
		t.Helper()
		calls := 0
		err := s.Update(context.Background(), func(tx commands.Tx) error {
			calls++
			r := before.Recent[1] // PAY-1, open
			r.State = commands.StateAccepted
			if _, err := tx.PutRelease(r); err != nil {
				return err
			}
			if _, err := tx.PutRelease(release("PAY-3", commands.StateRequested, 5)); err != nil {
				return err
			}
			if err := tx.DeleteLock("backend", r.ID, ""); err != nil {
				return err
			}
			if err := tx.PutLock(commands.Lock{Component: "payments", By: "U03ADM", Since: at(5)}); err != nil {
				return err
			}
			if err := tx.PutLock(commands.Lock{Component: "payments", Env: "qa", By: "U03ADM", Since: at(5)}); err != nil {
				return err
			}
			if err := tx.PutDeployed(deployed("production", "backend", 3, 5)); err != nil {
				return err
			}
			if err := tx.PutDeployed(deployed("qa", "backend", 3, 5)); err != nil {
				return err
			}
			if _, err := tx.AppendAudit(entry("U02BOB", "PAY-1", commands.ActionAccept, commands.StateRequested, commands.StateAccepted, 5)); err != nil {
				return err
			}
			ev1 := before.Events["Ev1"]
			ev1.Processed = true
			if err := tx.PutEvent(ev1); err != nil {
				return err
			}
			if err := tx.PutEvent(commands.InboxEvent{ID: "Ev3", Received: at(5)}); err != nil {
				return err
			}
			if n, err := tx.PruneEvents(at(100)); err != nil || n != 2 {
				return fmt.Errorf("PruneEvents inside the failing Update = %d, %v; want 2, nil", n, err)
			}
			if _, err := tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U01ANN", Text: commands.Text{commands.Plain("accepted")}}); err != nil {
				return err
			}
			if got, _ := tx.Open(); len(got) != 2 {
				return fmt.Errorf("inside the failing Update, Open() has %d releases, want 2", len(got))
			}
			return want
		})
		if err != want {
			t.Errorf("%s: Update returned %#v, want fn's error as is: %#v", name, err, want)
		}
		if calls != 1 {
			t.Errorf("%s: fn ran %d times, want once", name, calls)
		}
		if diff := cmp.Diff(before, snap(t, s, append(events, "Ev3")...), opts); diff != "" {
			t.Errorf("%s: a failed Update left changes behind (-before +after):\n%s", name, diff)
		}
	}
	failWith("a plain error", errBoom)
	failWith("a *commands.Error", commands.Errorf(commands.ECONFLICT, "PAY-1 is locked."))

	// The store still works, and the IDs it hands out still increase.
	r := put(t, s, release("PAY-4", commands.StateRequested, 6))[0]
	if r.ID <= before.Recent[0].ID {
		t.Errorf("after failed Updates, a new release got ID %d, not above %d", r.ID, before.Recent[0].ID)
	}
}

func testContext(t *testing.T, s commands.Store, _ func() commands.Store) {
	fill(t, s)
	before := snap(t, s, "Ev1", "Ev2")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	ran := false
	err := s.Update(cancelled, func(tx commands.Tx) error {
		ran = true
		_, err := tx.PutRelease(release("PAY-9", commands.StateRequested, 9))
		return err
	})
	if !errors.Is(err, context.Canceled) || ran {
		t.Errorf("Update on a cancelled context: fn ran %t, error %v; want not run, context.Canceled", ran, err)
	}
	err = s.View(cancelled, func(commands.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Errorf("View on a cancelled context: fn ran %t, error %v; want not run, context.Canceled", ran, err)
	}
	err = s.Audit(cancelled, commands.AuditFilter{}, func(commands.AuditEntry) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Errorf("Audit on a cancelled context: fn ran %t, error %v; want not run, context.Canceled", ran, err)
	}
	if _, err := s.Pending(cancelled, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("Pending on a cancelled context: error %v, want context.Canceled", err)
	}
	if err := s.Delivered(cancelled, before.Outbox[0].ID); !errors.Is(err, context.Canceled) {
		t.Errorf("Delivered on a cancelled context: error %v, want context.Canceled", err)
	}

	// A context that ends while fn runs: the change is not committed.
	ctx, cancel := context.WithCancel(context.Background())
	err = s.Update(ctx, func(tx commands.Tx) error {
		if _, err := tx.PutRelease(release("PAY-9", commands.StateRequested, 9)); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(entry("U01ANN", "PAY-9", commands.ActionRequest, commands.StateNone, commands.StateRequested, 9)); err != nil {
			return err
		}
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update whose context was cancelled while fn ran: error %v, want context.Canceled", err)
	}
	if diff := cmp.Diff(before, snap(t, s, "Ev1", "Ev2"), opts); diff != "" {
		t.Errorf("cancelled Updates left changes behind (-before +after):\n%s", diff)
	}
}

func testViewReadOnly(t *testing.T, s commands.Store, _ func() commands.Store) {
	writes := map[string]func(commands.Tx) error{
		"PutRelease": func(tx commands.Tx) error {
			_, err := tx.PutRelease(release("PAY-1", commands.StateRequested, 0))
			return err
		},
		"PutLock": func(tx commands.Tx) error { return tx.PutLock(commands.Lock{Component: "backend", By: "U03ADM"}) },
		"AppendAudit": func(tx commands.Tx) error {
			_, err := tx.AppendAudit(entry("U01ANN", "PAY-1", commands.ActionRequest, commands.StateNone, commands.StateRequested, 0))
			return err
		},
		"PutEvent":    func(tx commands.Tx) error { return tx.PutEvent(commands.InboxEvent{ID: "Ev1", Received: at(0)}) },
		"PutDeployed": func(tx commands.Tx) error { return tx.PutDeployed(deployed("qa", "backend", 1, 0)) },
		"Emit": func(tx commands.Tx) error {
			_, err := tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U01ANN", Text: commands.Text{commands.Plain("hi")}})
			return err
		},
	}
	for name, w := range writes {
		if err := s.View(context.Background(), w); err == nil {
			t.Errorf("%s inside View succeeded; want an error", name)
		}
	}
	if got := snap(t, s, "Ev1"); len(got.Recent)+len(got.Locks)+len(got.Audit)+len(got.Events)+len(got.Outbox)+len(got.Deployed) != 0 {
		t.Errorf("writes inside View left %+v", got)
	}
}
