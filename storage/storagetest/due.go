package storagetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

const (
	kindA commands.DueKind = "remind-approval"
	kindB commands.DueKind = "remind-claim"
)

func due(minute int, kind commands.DueKind, release uint64) commands.Due {
	return commands.Due{
		At: at(minute), Kind: kind, Release: release,
		Guard: commands.Guard{State: commands.StateRequested, Version: release + 1},
	}
}

// dues reads every due record, in order, and NextDue.
func dues(t *testing.T, s commands.Store) (all []commands.Due, next *commands.Due) {
	t.Helper()
	err := s.View(context.Background(), func(tx commands.Tx) error {
		var err error
		if all, err = tx.DueBefore(at(1_000_000), 0); err != nil {
			return err
		}
		d, ok, err := tx.NextDue()
		if ok {
			next = &d
		}
		return err
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	return all, next
}

// testDue checks the scheduler's records: time order (ties by kind, then
// release), replacement by (release, kind), deletes, DueBefore's bound and
// limit, and NextDue.
func testDue(t *testing.T, s commands.Store, reopen func() commands.Store) {
	if all, next := dues(t, s); len(all) != 0 || next != nil {
		t.Fatalf("an empty store has dues %v, next %v", all, next)
	}
	in := []commands.Due{
		due(30, kindA, 1), due(10, kindA, 2), due(20, kindB, 1), due(10, kindA, 1), // replaces (1, A) at 30
		due(10, kindB, 3), due(-5, kindA, 4), due(10, kindA, 3),
	}
	in[6].Repeat = 2
	update(t, s, func(tx commands.Tx) error {
		for _, d := range in {
			if err := tx.PutDue(d); err != nil {
				return fmt.Errorf("PutDue(%v): %w", d, err)
			}
		}
		return nil
	})
	r3 := due(10, kindA, 3)
	r3.Repeat = 2
	want := []commands.Due{due(-5, kindA, 4), due(10, kindA, 1), due(10, kindA, 2), r3, due(10, kindB, 3), due(20, kindB, 1)}
	all, next := dues(t, s)
	if diff := cmp.Diff(want, all, opts); diff != "" {
		t.Errorf("DueBefore(far) after the puts: by time, kind, release; (1, A) replaced (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&want[0], next, opts); diff != "" {
		t.Errorf("NextDue() (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		before time.Time
		max    int
		want   []commands.Due
	}{
		{at(-6), 0, nil},
		{at(-5), 0, want[:1]},  // At == t counts
		{at(10), 0, want[:5]},  // all of minute 10
		{at(10), 2, want[:2]},  // the limit keeps the oldest
		{at(19), -1, want[:5]}, // max < 0: all
		{at(500), 0, want[:6]},
	} {
		got := read(t, s, func(tx commands.Tx) ([]commands.Due, error) { return tx.DueBefore(tt.before, tt.max) })
		if diff := cmp.Diff(tt.want, got, opts); diff != "" {
			t.Errorf("DueBefore(%v, %d) (-want +got):\n%s", tt.before.Sub(t0), tt.max, diff)
		}
	}

	// Moving a record later takes it out of its old place: it is not found
	// twice, nor at its old time.
	update(t, s, func(tx commands.Tx) error { return tx.PutDue(due(600, kindA, 4)) })
	update(t, s, func(tx commands.Tx) error {
		for _, k := range []struct {
			r uint64
			k commands.DueKind
		}{{2, kindA}, {1, kindB}, {9, kindA}, {3, "never-written"}} {
			if err := tx.DeleteDue(k.r, k.k); err != nil {
				return fmt.Errorf("DeleteDue(%d, %s): %w", k.r, k.k, err)
			}
		}
		return nil
	})
	want = []commands.Due{due(10, kindA, 1), r3, due(10, kindB, 3), due(600, kindA, 4)}
	all, next = dues(t, s)
	if diff := cmp.Diff(want, all, opts); diff != "" {
		t.Errorf("after moving (4, A) and deleting (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&want[0], next, opts); diff != "" {
		t.Errorf("NextDue() after the deletes (-want +got):\n%s", diff)
	}

	// A record deleted or written in a transaction that fails stays as it
	// was: a rolled-back command leaves no due time, and removes none.
	err := s.Update(context.Background(), func(tx commands.Tx) error {
		if err := tx.DeleteDue(1, kindA); err != nil {
			return err
		}
		if err := tx.PutDue(due(1, kindB, 7)); err != nil {
			return err
		}
		if err := tx.PutDue(due(700, kindB, 3)); err != nil {
			return err
		}
		return errBoom
	})
	if err != errBoom {
		t.Fatalf("the failing Update returned %v, want errBoom", err)
	}
	all, _ = dues(t, s)
	if diff := cmp.Diff(want, all, opts); diff != "" {
		t.Errorf("after a rolled-back Update (-want +got):\n%s", diff)
	}

	// A bad kind is refused, not stored.
	if err := s.Update(context.Background(), func(tx commands.Tx) error { return tx.PutDue(due(1, "", 8)) }); commands.ErrorCode(err) != commands.EINVALID {
		t.Errorf("PutDue with an empty kind = %v, want EINVALID", err)
	}

	// They survive a restart.
	s = reopen()
	all, _ = dues(t, s)
	if diff := cmp.Diff(want, all, opts); diff != "" {
		t.Errorf("after a reopen (-want +got):\n%s", diff)
	}
}

// testDueOfAWindow checks a due time about no release, as a freeze window
// writes: its key is a 63-bit hash of the window's name (the largest one
// here), its Guard zero, its Repeat the boundaries fired.
func testDueOfAWindow(t *testing.T, s commands.Store, _ func() commands.Store) {
	const largest = 1<<63 - 1
	d := commands.Due{At: at(5), Kind: "freeze-window", Release: largest, Repeat: 3}
	update(t, s, func(tx commands.Tx) error { return tx.PutDue(d) })
	all, next := dues(t, s)
	if diff := cmp.Diff([]commands.Due{d}, all, opts); diff != "" {
		t.Errorf("DueBefore(far) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&d, next, opts); diff != "" {
		t.Errorf("NextDue() (-want +got):\n%s", diff)
	}
	update(t, s, func(tx commands.Tx) error { return tx.DeleteDue(largest, "freeze-window") })
	if all, _ := dues(t, s); len(all) != 0 {
		t.Errorf("after DeleteDue: %v", all)
	}
}
