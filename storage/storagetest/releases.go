package storagetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

func testEmptyStore(t *testing.T, s commands.Store, _ func() commands.Store) {
	err := s.View(context.Background(), func(tx commands.Tx) error {
		_, err := tx.Release(1)
		wantCode(t, "Release(1)", err, commands.ENOTFOUND)
		if open, err := tx.OpenReleases("PAY-1"); err != nil || len(open) != 0 {
			t.Errorf("OpenReleases(PAY-1) = %v, %v; want nothing, no error", ids(open), err)
		}
		_, err = tx.LastRelease("PAY-1")
		wantCode(t, "LastRelease(PAY-1)", err, commands.ENOTFOUND)
		for name, f := range map[string]func() ([]commands.Release, error){
			"Open":     tx.Open,
			"Releases": func() ([]commands.Release, error) { return tx.Releases("PAY-1", 10) },
			"Recent":   func() ([]commands.Release, error) { return tx.Recent(10) },
		} {
			rs, err := f()
			if err != nil || len(rs) != 0 {
				t.Errorf("%s() = %v, %v; want nothing, no error", name, ids(rs), err)
			}
		}
		if locks, err := tx.Locks(); err != nil || len(locks) != 0 {
			t.Errorf("Locks() = %v, %v; want nothing, no error", locks, err)
		}
		if es, err := tx.PendingEvents(); err != nil || len(es) != 0 {
			t.Errorf("PendingEvents() = %v, %v; want nothing, no error", es, err)
		}
		if _, ok, err := tx.Event("Ev1"); ok || err != nil {
			t.Errorf("Event(Ev1) = _, %t, %v; want false, no error", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if got, want := auditHead(t, s), (head{0, commands.GenesisHash}); got != want {
		t.Errorf("AuditHead() = %v, want %v", got, want)
	}
	if es, err := s.Pending(context.Background(), 10); err != nil || len(es) != 0 {
		t.Errorf("Pending(10) = %v, %v; want nothing, no error", es, err)
	}
	if got := audit(t, s, commands.AuditFilter{}); len(got) != 0 {
		t.Errorf("Audit returned %d entries from an empty store", len(got))
	}
	var perr error
	update(t, s, func(tx commands.Tx) error {
		_, perr = tx.PutRelease(commands.Release{ID: 1, Ticket: "PAY-1", State: commands.StateRequested, Version: 1})
		return nil
	})
	wantCode(t, "PutRelease of a release that does not exist", perr, commands.ENOTFOUND)
	if got := read(t, s, func(tx commands.Tx) ([]commands.Release, error) { return tx.Recent(10) }); len(got) != 0 {
		t.Errorf("a PutRelease that failed with ENOTFOUND stored %v", ids(got))
	}
}

func testReleaseIDs(t *testing.T, s commands.Store, _ func() commands.Store) {
	in := []commands.Release{
		release("PAY-1", commands.StateRequested, 0), release("PAY-2", commands.StateRequested, 1),
		release("PAY-3", commands.StateAccepted, 2), release("PAY-4", commands.StateRequested, 3),
		release("PAY-5", commands.StateDone, 4),
	}
	all := append(put(t, s, in[:3]...), put(t, s, in[3:]...)...)
	var last uint64
	for i, r := range all {
		if r.ID <= last {
			t.Errorf("release %d (%s) got ID %d after ID %d; IDs must increase", i, r.Ticket, r.ID, last)
		}
		last = r.ID
		want := in[i]
		want.ID, want.Version = r.ID, 1
		if diff := cmp.Diff(want, r, opts); diff != "" {
			t.Errorf("PutRelease returned (-want +got):\n%s", diff)
		}
		got := read(t, s, func(tx commands.Tx) (commands.Release, error) { return tx.Release(r.ID) })
		if diff := cmp.Diff(want, got, opts); diff != "" {
			t.Errorf("Release(%d) (-want +got):\n%s", r.ID, diff)
		}
	}

	// What a Tx returns is the caller's: changing it changes nothing stored.
	got := read(t, s, func(tx commands.Tx) (commands.Release, error) { return tx.Release(all[0].ID) })
	got.Components[0] = "changed"
	again := read(t, s, func(tx commands.Tx) (commands.Release, error) { return tx.Release(all[0].ID) })
	if again.Components[0] != "backend" {
		t.Errorf("changing a returned release changed the stored one: components %v", again.Components)
	}
}

func testVersionCAS(t *testing.T, s commands.Store, _ func() commands.Store) {
	v1 := put(t, s, release("PAY-1", commands.StateRequested, 0))[0]
	accepted := v1
	accepted.State, accepted.Approver, accepted.Updated = commands.StateAccepted, "U02BOB", at(1)
	v2 := write(t, s, func(tx commands.Tx) (commands.Release, error) { return tx.PutRelease(accepted) })
	want := accepted
	want.Version = 2
	if diff := cmp.Diff(want, v2, opts); diff != "" {
		t.Fatalf("PutRelease of version 1 returned (-want +got):\n%s", diff)
	}

	// Stale and future versions are refused, and the refused write leaves
	// no trace even when its transaction commits.
	stale := v1
	stale.State, stale.Reason = commands.StateCancelled, "stale write"
	future := v2
	future.Version, future.State = 7, commands.StateRejected
	for _, tc := range []struct {
		name string
		r    commands.Release
	}{{"stale version 1", stale}, {"future version 7", future}} {
		var err error
		update(t, s, func(tx commands.Tx) error {
			_, err = tx.PutRelease(tc.r)
			return nil
		})
		wantCode(t, "PutRelease with a "+tc.name, err, commands.ECONFLICT)
	}
	got := read(t, s, func(tx commands.Tx) (commands.Release, error) { return tx.Release(v1.ID) })
	if diff := cmp.Diff(v2, got, opts); diff != "" {
		t.Errorf("after refused writes, Release (-want +got):\n%s", diff)
	}
	if open := read(t, s, func(tx commands.Tx) ([]commands.Release, error) { return tx.Open() }); !cmp.Equal(ids(open), []uint64{v1.ID}) {
		t.Errorf("after refused writes that closed the release, Open() = %v, want [%d]", ids(open), v1.ID)
	}

	// Two commands that read the same version: the first write wins, the
	// second's Update fails with its ECONFLICT as is.
	a, b := v2, v2
	a.Admin, b.Note = "U03ADM", "second writer"
	update(t, s, func(tx commands.Tx) error { _, err := tx.PutRelease(a); return err })
	err := s.Update(context.Background(), func(tx commands.Tx) error { _, err := tx.PutRelease(b); return err })
	wantCode(t, "the second of two writers of version 2", err, commands.ECONFLICT)
	got = read(t, s, func(tx commands.Tx) (commands.Release, error) { return tx.Release(v1.ID) })
	if got.Version != 3 || got.Admin != "U03ADM" || got.Note != "" {
		t.Errorf("after two writers, release is version %d, admin %q, note %q; want 3, U03ADM, no note", got.Version, got.Admin, got.Note)
	}
}

func testOpenIndex(t *testing.T, s commands.Store, reopen func() commands.Store) {
	rs := put(t, s,
		release("PAY-1", commands.StateRequested, 0),
		release("PAY-2", commands.StateAccepted, 1),
		release("PAY-3", commands.StateDone, 2),
		release("PAY-4", commands.StateRequested, 3),
		release("PAY-5", commands.StateDeploying, 4),
	)
	openIDs := func() []uint64 {
		t.Helper()
		return ids(read(t, s, func(tx commands.Tx) ([]commands.Release, error) { return tx.Open() }))
	}
	if got, want := openIDs(), []uint64{rs[0].ID, rs[1].ID, rs[3].ID, rs[4].ID}; !cmp.Equal(got, want) {
		t.Errorf("Open() = %v, want %v", got, want)
	}

	to := map[int]commands.State{0: commands.StateRejected, 1: commands.StateCancelled, 3: commands.StateDone, 4: commands.StateFailed}
	update(t, s, func(tx commands.Tx) error {
		for i, st := range to {
			r := rs[i]
			r.State = st
			var err error
			if rs[i], err = tx.PutRelease(r); err != nil {
				return err
			}
		}
		return nil
	})
	if got, want := openIDs(), []uint64{rs[4].ID}; !cmp.Equal(got, want) {
		t.Errorf("after rejecting, cancelling and finishing, Open() = %v, want %v (failed stays open)", got, want)
	}
	open := read(t, s, func(tx commands.Tx) ([]commands.Release, error) { return tx.Open() })
	if diff := cmp.Diff([]commands.Release{rs[4]}, open, opts); diff != "" {
		t.Errorf("Open() returns the current releases (-want +got):\n%s", diff)
	}

	more := put(t, s, release("PAY-6", commands.StateRequested, 5), release("PAY-7", commands.StateRequested, 6))
	s = reopen()
	if got, want := openIDs(), []uint64{rs[4].ID, more[0].ID, more[1].ID}; !cmp.Equal(got, want) {
		t.Errorf("after new requests and a reopen, Open() = %v, want %v", got, want)
	}
}

func testLookups(t *testing.T, s commands.Store, _ func() commands.Store) {
	// PAY-1 is a prefix of PAY-10: lookups must not mix them up.
	rs := put(t, s,
		release("PAY-1", commands.StateCancelled, 0),
		release("PAY-10", commands.StateRequested, 1),
		release("PAY-1", commands.StateRequested, 2),
		release("WEB-1", commands.StateDone, 3),
	)
	old1, pay10, new1, web1 := rs[0], rs[1], rs[2], rs[3]

	type lookup struct {
		name string
		f    func(commands.Tx) (commands.Release, error)
		want commands.Release // zero: ENOTFOUND
	}
	check := func(lookups []lookup) {
		t.Helper()
		for _, l := range lookups {
			var got commands.Release
			err := s.View(context.Background(), func(tx commands.Tx) error {
				var err error
				got, err = l.f(tx)
				return err
			})
			if l.want.ID == 0 {
				wantCode(t, l.name, err, commands.ENOTFOUND)
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", l.name, err)
				continue
			}
			if diff := cmp.Diff(l.want, got, opts); diff != "" {
				t.Errorf("%s (-want +got):\n%s", l.name, diff)
			}
		}
	}
	openOf := func(k string) func(commands.Tx) (commands.Release, error) {
		return func(tx commands.Tx) (commands.Release, error) { return newestOpen(tx, k) }
	}
	lastOf := func(k string) func(commands.Tx) (commands.Release, error) {
		return func(tx commands.Tx) (commands.Release, error) { return tx.LastRelease(k) }
	}
	check([]lookup{
		{"newest of OpenReleases(PAY-1)", openOf("PAY-1"), new1},
		{"newest of OpenReleases(PAY-10)", openOf("PAY-10"), pay10},
		{"newest of OpenReleases(WEB-1), done", openOf("WEB-1"), commands.Release{}},
		{"newest of OpenReleases(PAY-2), unknown", openOf("PAY-2"), commands.Release{}},
		{"LastRelease(PAY-1)", lastOf("PAY-1"), new1},
		{"LastRelease(PAY-10)", lastOf("PAY-10"), pay10},
		{"LastRelease(WEB-1)", lastOf("WEB-1"), web1},
		{"LastRelease(PAY), a prefix", lastOf("PAY"), commands.Release{}},
		{"LastRelease(PAY-), a prefix", lastOf("PAY-"), commands.Release{}},
		{"LastRelease(PAY-100), an extension", lastOf("PAY-100"), commands.Release{}},
	})

	for _, tc := range []struct {
		ticket string
		max    int
		want   []uint64
	}{
		{"PAY-1", 10, []uint64{new1.ID, old1.ID}},
		{"PAY-1", 1, []uint64{new1.ID}},
		{"PAY-10", 10, []uint64{pay10.ID}},
		{"PAY-2", 10, []uint64{}},
	} {
		got := read(t, s, func(tx commands.Tx) ([]commands.Release, error) { return tx.Releases(tc.ticket, tc.max) })
		if !cmp.Equal(ids(got), tc.want) {
			t.Errorf("Releases(%s, %d) = %v, want %v", tc.ticket, tc.max, ids(got), tc.want)
		}
	}
	full := read(t, s, func(tx commands.Tx) ([]commands.Release, error) { return tx.Releases("PAY-1", 10) })
	if diff := cmp.Diff([]commands.Release{new1, old1}, full, opts); diff != "" {
		t.Errorf("Releases(PAY-1, 10) (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		max  int
		want []uint64
	}{
		{3, []uint64{web1.ID, new1.ID, pay10.ID}},
		{10, []uint64{web1.ID, new1.ID, pay10.ID, old1.ID}},
	} {
		got := read(t, s, func(tx commands.Tx) ([]commands.Release, error) { return tx.Recent(tc.max) })
		if !cmp.Equal(ids(got), tc.want) {
			t.Errorf("Recent(%d) = %v, want %v", tc.max, ids(got), tc.want)
		}
	}

	// Once the open release of PAY-1 is done, it is still the last one.
	done := new1
	done.State = commands.StateDone
	done = write(t, s, func(tx commands.Tx) (commands.Release, error) { return tx.PutRelease(done) })
	check([]lookup{
		{"newest of OpenReleases(PAY-1) after it is done", openOf("PAY-1"), commands.Release{}},
		{"LastRelease(PAY-1) after it is done", lastOf("PAY-1"), done},
	})
}

// newestOpen returns the newest of ticket's open releases, or ENOTFOUND: what
// OpenRelease returned before OpenReleases replaced it.
func newestOpen(tx commands.Tx, ticket string) (commands.Release, error) {
	open, err := tx.OpenReleases(ticket)
	if err != nil {
		return commands.Release{}, err
	}
	if len(open) == 0 {
		return commands.Release{}, commands.Errorf(commands.ENOTFOUND, "%s has no open release.", ticket)
	}
	return open[len(open)-1], nil
}
