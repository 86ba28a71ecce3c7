package storagetest

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// The store side of environments (issue 14): a ticket's open releases in
// every environment, freezes keyed by environment, and what is where.

// deployed is the entry of release id of PAY-<id> in (env, component),
// marked done at minute.
func deployed(env, component string, id uint64, minute int) commands.Deployed {
	return commands.Deployed{
		Env: env, Component: component, Release: id, Ticket: fmt.Sprintf("PAY-%d", id),
		Build: fmt.Sprintf("2.%d.0", id), By: "U03ADM", Done: at(minute),
	}
}

func testOpenReleases(t *testing.T, s commands.Store, _ func() commands.Store) {
	inEnv := func(ticket, env string, state commands.State, minute int) commands.Release {
		r := release(ticket, state, minute)
		r.Env, r.Build = env, "1.0."+fmt.Sprint(minute)
		if state != commands.StateRequested {
			r.Approvals = []string{"U02BOB", "U04EVE"}
			r.Approver = "U04EVE"
		}
		return r
	}
	rs := put(t, s,
		inEnv("PAY-1", "", commands.StateDone, 0),               // before environments: the default one, done
		inEnv("PAY-1", "qa", commands.StateDeploying, 1),        // open
		inEnv("PAY-10", "qa", commands.StateRequested, 2),       // another ticket that PAY-1 prefixes
		inEnv("PAY-1", "staging", commands.StateCancelled, 3),   // closed
		inEnv("PAY-1", "production", commands.StateAccepted, 4), // open
		inEnv("PAY-1", "", commands.StateFailed, 5),             // open: failed stays in the queue
	)
	openOf := func(ticket string) []commands.Release {
		t.Helper()
		return read(t, s, func(tx commands.Tx) ([]commands.Release, error) { return tx.OpenReleases(ticket) })
	}
	for _, tc := range []struct {
		ticket string
		want   []commands.Release
	}{
		{"PAY-1", []commands.Release{rs[1], rs[4], rs[5]}},
		{"PAY-10", []commands.Release{rs[2]}},
		{"PAY", nil},
		{"PAY-2", nil},
	} {
		if diff := cmp.Diff(tc.want, openOf(tc.ticket), opts); diff != "" {
			t.Errorf("OpenReleases(%s), ascending ID, every environment (-want +got):\n%s", tc.ticket, diff)
		}
	}

	// Closing one leaves the others; reopening none brings it back.
	done := rs[1]
	done.State = commands.StateDone
	done = write(t, s, func(tx commands.Tx) (commands.Release, error) { return tx.PutRelease(done) })
	if diff := cmp.Diff([]uint64{rs[4].ID, rs[5].ID}, ids(openOf("PAY-1"))); diff != "" {
		t.Errorf("OpenReleases(PAY-1) after the qa one is done (-want +got):\n%s", diff)
	}
	if got := read(t, s, func(tx commands.Tx) (commands.Release, error) { return tx.Release(done.ID) }); !cmp.Equal(done, got, opts) {
		t.Errorf("Release(%d) = %+v, want %+v", done.ID, got, done)
	}
}

func testFreezesByEnv(t *testing.T, s commands.Store, _ func() commands.Store) {
	freeze := func(component, env, reason string) commands.Lock {
		return commands.Lock{Component: component, Env: env, By: "U03ADM", Since: at(1), Reason: reason}
	}
	held := commands.Lock{Component: "ios", Release: 5, Ticket: "PAY-5", Env: "qa", By: "U01ANN", Since: at(2)}
	locks := func() []commands.Lock {
		t.Helper()
		return read(t, s, func(tx commands.Tx) ([]commands.Lock, error) { return tx.Locks() })
	}
	update(t, s, func(tx commands.Tx) error {
		for _, l := range []commands.Lock{
			held, freeze("ios", "qa", "first"), freeze("ios", "", "everywhere"), freeze("ios", "production", "store review"),
			freeze("ios", "qa", "replaced"), freeze("backend", "qa", ""),
		} {
			if err := tx.PutLock(l); err != nil {
				return err
			}
		}
		return nil
	})
	want := []commands.Lock{
		freeze("backend", "qa", ""),
		freeze("ios", "", "everywhere"), freeze("ios", "production", "store review"), freeze("ios", "qa", "replaced"),
		held,
	}
	if diff := cmp.Diff(want, locks(), opts); diff != "" {
		t.Errorf("Locks(): one freeze per (component, env), by component, release, then env (-want +got):\n%s", diff)
	}

	// A freeze is deleted by its environment only; a release's lock by
	// component and release, whatever env says.
	for _, step := range []struct {
		component string
		release   uint64
		env       string
		want      []commands.Lock
	}{
		{"ios", 0, "staging", want},
		{"ios", 0, "qa", []commands.Lock{want[0], want[1], want[2], held}},
		{"ios", 0, "", []commands.Lock{want[0], want[2], held}},
		{"ios", 5, "production", []commands.Lock{want[0], want[2]}},
		{"backend", 0, "", []commands.Lock{want[0], want[2]}},
	} {
		update(t, s, func(tx commands.Tx) error { return tx.DeleteLock(step.component, step.release, step.env) })
		if diff := cmp.Diff(step.want, locks(), opts); diff != "" {
			t.Errorf("Locks() after DeleteLock(%s, %d, %q) (-want +got):\n%s", step.component, step.release, step.env, diff)
		}
	}
}

func testDeployed(t *testing.T, s commands.Store, reopen func() commands.Store) {
	all := func() []commands.Deployed {
		t.Helper()
		return read(t, s, func(tx commands.Tx) ([]commands.Deployed, error) { return tx.Deployed() })
	}
	if got := all(); len(got) != 0 {
		t.Errorf("Deployed() on an empty store = %+v, want none", got)
	}
	put := func(ds ...commands.Deployed) {
		t.Helper()
		update(t, s, func(tx commands.Tx) error {
			for _, d := range ds {
				if err := tx.PutDeployed(d); err != nil {
					return err
				}
			}
			return nil
		})
	}
	put(deployed("qa", "web", 1, 1), deployed("production", "backend", 2, 2), deployed("qa", "backend", 3, 3),
		deployed("production", "api", 4, 4), deployed("qa-eu", "api", 5, 5), deployed("q", "web", 6, 6))
	want := []commands.Deployed{
		deployed("production", "api", 4, 4), deployed("production", "backend", 2, 2),
		deployed("q", "web", 6, 6),
		deployed("qa", "backend", 3, 3), deployed("qa", "web", 1, 1),
		deployed("qa-eu", "api", 5, 5),
	}
	if diff := cmp.Diff(want, all(), opts); diff != "" {
		t.Errorf("Deployed(), by env then component (-want +got):\n%s", diff)
	}

	// A later release replaces the entry of its (env, component) only.
	newer := deployed("qa", "backend", 7, 7)
	newer.Build = ""
	put(newer)
	want[3] = newer
	if diff := cmp.Diff(want, all(), opts); diff != "" {
		t.Errorf("Deployed() after replacing qa/backend (-want +got):\n%s", diff)
	}
	s = reopen()
	if diff := cmp.Diff(want, all(), opts); diff != "" {
		t.Errorf("Deployed() after a reopen (-want +got):\n%s", diff)
	}

	// An entry needs an environment and a component, and a refused one
	// writes nothing.
	for name, d := range map[string]commands.Deployed{
		"no env":       {Component: "backend", Release: 8, Ticket: "PAY-8"},
		"no component": {Env: "qa", Release: 8, Ticket: "PAY-8"},
	} {
		err := s.Update(t.Context(), func(tx commands.Tx) error { return tx.PutDeployed(d) })
		wantCode(t, "PutDeployed, "+name, err, commands.EINVALID)
	}
	if diff := cmp.Diff(want, all(), opts); diff != "" {
		t.Errorf("Deployed() after refused entries (-want +got):\n%s", diff)
	}
}
