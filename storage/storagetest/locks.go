package storagetest

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

func testLocks(t *testing.T, s commands.Store, _ func() commands.Store) {
	lock := func(component string, release uint64, reason string) commands.Lock {
		l := commands.Lock{Component: component, Release: release, By: "U01ANN", Since: at(int(release)), Reason: reason}
		if release != 0 {
			l.Ticket = fmt.Sprintf("PAY-%d", release)
		}
		if reason == "freeze" {
			// A freeze set from chat: its end and name are kept too.
			l.Until, l.Name = at(20), "u01ann-dec24-0900"
		}
		return l
	}
	in := []commands.Lock{
		lock("b", 2, ""), lock("a", 3, ""), lock("a-b", 1, ""), lock("a", 0, "freeze"),
		lock("a", 1, ""), lock("b", 10, ""), lock("b", 2, "replaced"),
	}
	update(t, s, func(tx commands.Tx) error {
		for _, l := range in {
			if err := tx.PutLock(l); err != nil {
				return err
			}
		}
		return nil
	})
	locks := func() []commands.Lock {
		t.Helper()
		return read(t, s, func(tx commands.Tx) ([]commands.Lock, error) { return tx.Locks() })
	}
	want := []commands.Lock{
		lock("a", 0, "freeze"), lock("a", 1, ""), lock("a", 3, ""), lock("a-b", 1, ""),
		lock("b", 2, "replaced"), lock("b", 10, ""),
	}
	if diff := cmp.Diff(want, locks(), opts); diff != "" {
		t.Errorf("Locks(), by component then release (-want +got):\n%s", diff)
	}

	update(t, s, func(tx commands.Tx) error {
		for _, k := range []struct {
			c string
			r uint64
		}{{"a", 1}, {"b", 10}, {"nothing", 9}, {"a", 99}} {
			if err := tx.DeleteLock(k.c, k.r, ""); err != nil {
				return fmt.Errorf("DeleteLock(%s, %d): %w", k.c, k.r, err)
			}
		}
		return nil
	})
	want = []commands.Lock{lock("a", 0, "freeze"), lock("a", 3, ""), lock("a-b", 1, ""), lock("b", 2, "replaced")}
	if diff := cmp.Diff(want, locks(), opts); diff != "" {
		t.Errorf("Locks() after deletes (-want +got):\n%s", diff)
	}
}
