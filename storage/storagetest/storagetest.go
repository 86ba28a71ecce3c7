package storagetest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// Open opens a new bbolt store on a file in a temporary directory and closes
// it when tb ends.
func Open(tb testing.TB) *storage.DB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "dobrobot.db")
	db, err := storage.Open(path)
	if err != nil {
		tb.Fatalf("storagetest: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("storagetest: %v", err)
		}
	})
	return db
}

// Opener opens a new, empty Store for one subtest of Run. It also returns
// reopen, which closes that store (or the one reopen last returned) and opens
// the same data again, as after a restart. The Opener arranges for every store
// it opens to be closed when t ends. Run calls it once per subtest, from
// subtests that run in parallel.
type Opener func(t *testing.T) (s commands.Store, reopen func() commands.Store)

// Run runs the contract suite of commands.Store against the stores open
// makes. Every implementation must pass it unchanged.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, s commands.Store, reopen func() commands.Store)
	}{
		{"EmptyStore", testEmptyStore},
		{"ReleaseIDsIncrease", testReleaseIDs},
		{"VersionCompareAndSet", testVersionCAS},
		{"OpenIndexFollowsState", testOpenIndex},
		{"LookupsByTicket", testLookups},
		{"Locks", testLocks},
		{"AuditChain", testAuditChain},
		{"AuditFilter", testAuditFilter},
		{"FailedUpdateLeavesNothing", testAtomicity},
		{"Context", testContext},
		{"ViewIsReadOnly", testViewReadOnly},
		{"Inbox", testInbox},
		{"Outbox", testOutbox},
		{"ReopenKeepsEverything", testReopen},
		{"ConcurrentUpdates", testConcurrent},
		{"AuditProjection", testProjection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, reopen := open(t)
			tt.run(t, s, reopen)
		})
	}
}

// t0 is the suite's clock. Times are UTC with microsecond precision, which
// every store can keep exactly.
var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

// opts treats nil and empty slices and maps alike: stores may return either.
var opts = cmp.Options{cmpopts.EquateEmpty()}

var errBoom = errors.New("boom: fn failed on purpose")

func release(ticket string, state commands.State, minute int) commands.Release {
	return commands.Release{
		Ticket:     ticket,
		Summary:    "Summary of " + ticket,
		URL:        "https://example.atlassian.net/browse/" + ticket,
		State:      state,
		NeedAdmin:  true,
		Requester:  "U01ANN",
		Components: []string{"backend", "payments"},
		Locks:      []string{"backend"},
		Created:    at(minute),
		Updated:    at(minute),
	}
}

func update(t *testing.T, s commands.Store, fn func(commands.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// write runs fn in an Update and returns its value.
func write[T any](t *testing.T, s commands.Store, fn func(commands.Tx) (T, error)) T {
	t.Helper()
	var v T
	update(t, s, func(tx commands.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v
}

// read runs fn in a View and returns its value.
func read[T any](t *testing.T, s commands.Store, fn func(commands.Tx) (T, error)) T {
	t.Helper()
	var v T
	err := s.View(context.Background(), func(tx commands.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	return v
}

// put stores new releases in one transaction and returns them as stored.
func put(t *testing.T, s commands.Store, rs ...commands.Release) []commands.Release {
	t.Helper()
	return write(t, s, func(tx commands.Tx) ([]commands.Release, error) {
		var out []commands.Release
		for _, r := range rs {
			r, err := tx.PutRelease(r)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	})
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := commands.ErrorCode(err); got != code {
		t.Errorf("%s: error code %q (%v), want %q", what, got, err, code)
	}
	if err != nil && commands.ErrorMessage(err) == "" {
		t.Errorf("%s: error %#v has no message", what, err)
	}
}

func ids(rs []commands.Release) []uint64 {
	out := []uint64{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func effectIDs(es []commands.Effect) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func eventIDs(es []commands.InboxEvent) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// audit returns the entries matching f.
func audit(t *testing.T, s commands.Store, f commands.AuditFilter) []commands.AuditEntry {
	t.Helper()
	out := []commands.AuditEntry{}
	if err := s.Audit(context.Background(), f, func(e commands.AuditEntry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("Audit: %v", err)
	}
	return out
}

// verified returns the whole audit log after checking its chain.
func verified(t *testing.T, s commands.Store) []commands.AuditEntry {
	t.Helper()
	v := commands.NewVerifier()
	out := []commands.AuditEntry{}
	if err := s.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		out = append(out, e)
		return v.Add(e)
	}); err != nil {
		t.Fatalf("the audit chain does not verify: %v", err)
	}
	return out
}

func entry(actor, ticket string, action commands.Action, from, to commands.State, minute int) commands.AuditEntry {
	return commands.AuditEntry{
		Time: at(minute), Actor: actor, Action: action, Ticket: ticket, From: from, To: to,
		Detail: fmt.Sprintf("event Ev%04d", minute),
	}
}

func appendAudit(t *testing.T, s commands.Store, es ...commands.AuditEntry) []commands.AuditEntry {
	t.Helper()
	return write(t, s, func(tx commands.Tx) ([]commands.AuditEntry, error) {
		var out []commands.AuditEntry
		for _, e := range es {
			e, err := tx.AppendAudit(e)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	})
}

type head struct {
	Seq  uint64
	Hash string
}

func auditHead(t *testing.T, s commands.Store) head {
	t.Helper()
	return read(t, s, func(tx commands.Tx) (head, error) {
		seq, hash, err := tx.AuditHead()
		return head{seq, hash}, err
	})
}

func testEmptyStore(t *testing.T, s commands.Store, _ func() commands.Store) {
	err := s.View(context.Background(), func(tx commands.Tx) error {
		_, err := tx.Release(1)
		wantCode(t, "Release(1)", err, commands.ENOTFOUND)
		_, err = tx.OpenRelease("PAY-1")
		wantCode(t, "OpenRelease(PAY-1)", err, commands.ENOTFOUND)
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
		return func(tx commands.Tx) (commands.Release, error) { return tx.OpenRelease(k) }
	}
	lastOf := func(k string) func(commands.Tx) (commands.Release, error) {
		return func(tx commands.Tx) (commands.Release, error) { return tx.LastRelease(k) }
	}
	check([]lookup{
		{"OpenRelease(PAY-1)", openOf("PAY-1"), new1},
		{"OpenRelease(PAY-10)", openOf("PAY-10"), pay10},
		{"OpenRelease(WEB-1), done", openOf("WEB-1"), commands.Release{}},
		{"OpenRelease(PAY-2), unknown", openOf("PAY-2"), commands.Release{}},
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
		{"OpenRelease(PAY-1) after it is done", openOf("PAY-1"), commands.Release{}},
		{"LastRelease(PAY-1) after it is done", lastOf("PAY-1"), done},
	})
}

func testLocks(t *testing.T, s commands.Store, _ func() commands.Store) {
	lock := func(component string, release uint64, reason string) commands.Lock {
		l := commands.Lock{Component: component, Release: release, By: "U01ANN", Since: at(int(release)), Reason: reason}
		if release != 0 {
			l.Ticket = fmt.Sprintf("PAY-%d", release)
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
			if err := tx.DeleteLock(k.c, k.r); err != nil {
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

func testAuditChain(t *testing.T, s commands.Store, reopen func() commands.Store) {
	raw := entry("U01ANN", "PAY-1", commands.ActionRequest, commands.StateNone, commands.StateRequested, 0)
	raw.Detail = "line one\nline two"
	raw.Seq, raw.Hash, raw.PrevHash = 42, "forged", "forged" // Seal overrides these
	raw.Time = at(0).In(time.FixedZone("CET", 3600))
	appended := appendAudit(t, s,
		raw,
		entry("U02BOB", "PAY-1", commands.ActionAccept, commands.StateRequested, commands.StateAccepted, 1),
		entry("U01ANN", "PAY-1", commands.ActionStart, commands.StateAccepted, commands.StateDeploying, 2),
	)
	appended = append(appended, appendAudit(t, s,
		entry("U03ADM", "", commands.ActionLock, commands.StateNone, commands.StateNone, 3),
		entry("U01ANN", "PAY-1", commands.ActionFinish, commands.StateDeploying, commands.StateDone, 4),
	)...)

	prev := commands.GenesisHash
	for i, e := range appended {
		if e.Seq != uint64(i+1) || e.PrevHash != prev || e.Hash != e.ComputeHash() {
			t.Errorf("appended entry %d: seq %d, prev_hash %.8s…, hash %.8s…; want seq %d, prev_hash %.8s…, hash %.8s…",
				i, e.Seq, e.PrevHash, e.Hash, i+1, prev, e.ComputeHash())
		}
		prev = e.Hash
	}
	if got, want := appended[0].Detail, "line one line two"; got != want {
		t.Errorf("first entry's detail = %q, want %q (sealed entries hold no newlines)", got, want)
	}
	if !appended[0].Time.Equal(at(0)) {
		t.Errorf("first entry's time = %v, want %v", appended[0].Time, at(0))
	}

	if diff := cmp.Diff(appended, verified(t, s), opts); diff != "" {
		t.Errorf("Audit returns what AppendAudit returned (-want +got):\n%s", diff)
	}
	last := appended[len(appended)-1]
	if got, want := auditHead(t, s), (head{last.Seq, last.Hash}); got != want {
		t.Errorf("AuditHead() = %v, want %v", got, want)
	}

	s = reopen()
	if diff := cmp.Diff(appended, verified(t, s), opts); diff != "" {
		t.Errorf("after reopen, Audit (-want +got):\n%s", diff)
	}
	next := appendAudit(t, s, entry("U01ANN", "PAY-2", commands.ActionRequest, commands.StateNone, commands.StateRequested, 5))[0]
	if next.Seq != last.Seq+1 || next.PrevHash != last.Hash {
		t.Errorf("after reopen, the next entry has seq %d and prev_hash %.8s…; want %d and %.8s…", next.Seq, next.PrevHash, last.Seq+1, last.Hash)
	}
	if got := verified(t, s); len(got) != len(appended)+1 {
		t.Errorf("after reopen and one more append, Audit has %d entries, want %d", len(got), len(appended)+1)
	}
}

func testAuditFilter(t *testing.T, s commands.Store, _ func() commands.Store) {
	appendAudit(t, s,
		entry("U01ANN", "PAY-1", commands.ActionRequest, commands.StateNone, commands.StateRequested, 0),
		entry("U01ANN", "PAY-1", commands.ActionAccept, commands.StateRequested, commands.StateAccepted, 60),
		entry("U01ANN", "PAY-2", commands.ActionRequest, commands.StateNone, commands.StateRequested, 120),
		entry("U01ANN", "PAY-1", commands.ActionStart, commands.StateAccepted, commands.StateDeploying, 180),
		entry("U03ADM", "", commands.ActionLock, commands.StateNone, commands.StateNone, 240),
	)
	for _, tc := range []struct {
		name string
		f    commands.AuditFilter
		want []uint64
	}{
		{"everything", commands.AuditFilter{}, []uint64{1, 2, 3, 4, 5}},
		{"since, inclusive", commands.AuditFilter{Since: at(60)}, []uint64{2, 3, 4, 5}},
		{"until, exclusive", commands.AuditFilter{Until: at(120)}, []uint64{1, 2}},
		{"window", commands.AuditFilter{Since: at(60), Until: at(180)}, []uint64{2, 3}},
		{"ticket", commands.AuditFilter{Ticket: "PAY-1"}, []uint64{1, 2, 4}},
		{"ticket and since", commands.AuditFilter{Ticket: "PAY-1", Since: at(1)}, []uint64{2, 4}},
		{"no match", commands.AuditFilter{Ticket: "PAY-3"}, []uint64{}},
		{"empty window", commands.AuditFilter{Since: at(300)}, []uint64{}},
	} {
		got := []uint64{}
		for _, e := range audit(t, s, tc.f) {
			got = append(got, e.Seq)
		}
		if !cmp.Equal(got, tc.want) {
			t.Errorf("Audit(%s) = seqs %v, want %v", tc.name, got, tc.want)
		}
	}

	// fn's error stops the walk and comes back as is.
	errStop := errors.New("stop here")
	calls := 0
	err := s.Audit(context.Background(), commands.AuditFilter{}, func(commands.AuditEntry) error {
		if calls++; calls == 2 {
			return errStop
		}
		return nil
	})
	if err != errStop || calls != 2 {
		t.Errorf("Audit with fn failing at the 2nd entry: %d calls, error %v; want 2 calls and %v as is", calls, err, errStop)
	}
}

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
		for i, id := range []string{"Ev1", "Ev2"} {
			e := commands.InboxEvent{
				ID: id, Received: at(i), Processed: i == 1,
				Message: commands.Message{EventID: id, User: "U01ANN", Channel: "C01", Text: "dobro PAY-1", Via: commands.ViaMention, Time: at(i)},
			}
			if err := tx.PutEvent(e); err != nil {
				return err
			}
		}
		_, err = tx.Emit(commands.Effect{Kind: commands.EffectCard, Event: "Ev1", Channel: "C01", Release: &r, Text: "PAY-1 requested",
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
			if err := tx.DeleteLock("backend", r.ID); err != nil {
				return err
			}
			if err := tx.PutLock(commands.Lock{Component: "payments", By: "U03ADM", Since: at(5)}); err != nil {
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
			if _, err := tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U01ANN", Text: "accepted"}); err != nil {
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
		"PutEvent": func(tx commands.Tx) error { return tx.PutEvent(commands.InboxEvent{ID: "Ev1", Received: at(0)}) },
		"Emit": func(tx commands.Tx) error {
			_, err := tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U01ANN", Text: "hi"})
			return err
		},
	}
	for name, w := range writes {
		if err := s.View(context.Background(), w); err == nil {
			t.Errorf("%s inside View succeeded; want an error", name)
		}
	}
	if got := snap(t, s, "Ev1"); len(got.Recent)+len(got.Locks)+len(got.Audit)+len(got.Events)+len(got.Outbox) != 0 {
		t.Errorf("writes inside View left %+v", got)
	}
}

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
		{Kind: commands.EffectReply, Event: "Ev1", User: "U01ANN", Channel: "C01", Via: commands.ViaMention, Text: "queued"},
		{Kind: commands.EffectCard, Event: "Ev1", Channel: "C01", Release: &r},
		{Kind: commands.EffectDM, Event: "Ev1", User: "U02BOB", Text: "please accept", Buttons: []commands.Button{{Label: "Accept", Command: "accept PAY-1"}}},
		{Kind: commands.EffectThread, Event: "Ev2", Channel: "C01", Release: &r, Text: "hook started"},
		{Kind: commands.EffectDM, Event: "Ev2", User: "U03ADM", Text: "you're next"},
	}
	emit := func(es ...commands.Effect) []commands.Effect {
		t.Helper()
		return write(t, s, func(tx commands.Tx) ([]commands.Effect, error) {
			var out []commands.Effect
			for _, e := range es {
				e, err := tx.Emit(e)
				if err != nil {
					return nil, err
				}
				out = append(out, e)
			}
			return out, nil
		})
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

func testReopen(t *testing.T, s commands.Store, reopen func() commands.Store) {
	events := fill(t, s)
	rs := put(t, s, release("PAY-3", commands.StateAccepted, 3))
	before := snap(t, s, events...)
	s = reopen()
	if diff := cmp.Diff(before, snap(t, s, events...), opts); diff != "" {
		t.Errorf("reopen changed the store (-before +after):\n%s", diff)
	}
	// Counters survive too.
	r := put(t, s, release("PAY-4", commands.StateRequested, 4))[0]
	if r.ID <= rs[0].ID {
		t.Errorf("after a reopen, a new release got ID %d, not above %d", r.ID, rs[0].ID)
	}
	e := write(t, s, func(tx commands.Tx) (commands.Effect, error) {
		return tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U01ANN", Text: "hello again"})
	})
	if e.ID <= before.Outbox[len(before.Outbox)-1].ID {
		t.Errorf("after a reopen, a new effect got ID %d, not above %d", e.ID, before.Outbox[len(before.Outbox)-1].ID)
	}
}

func testConcurrent(t *testing.T, s commands.Store, _ func() commands.Store) {
	const writers, each = 20, 5
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		released = map[uint64]bool{}
		stop     = make(chan struct{})
		readers  sync.WaitGroup
	)
	// Readers run alongside; each snapshot they see must verify.
	for range 3 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := commands.NewVerifier()
				if err := s.Audit(context.Background(), commands.AuditFilter{}, v.Add); err != nil {
					t.Errorf("a reader during concurrent writes: %v", err)
					return
				}
				if err := s.View(context.Background(), func(tx commands.Tx) error { _, err := tx.Open(); return err }); err != nil {
					t.Errorf("a reader during concurrent writes: Open: %v", err)
					return
				}
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				err := s.Update(context.Background(), func(tx commands.Tx) error {
					ticket := fmt.Sprintf("PAY-%d", w*each+i+1)
					r, err := tx.PutRelease(release(ticket, commands.StateRequested, i))
					if err != nil {
						return err
					}
					mu.Lock()
					dup := released[r.ID]
					released[r.ID] = true
					mu.Unlock()
					if dup {
						return fmt.Errorf("release ID %d handed out twice", r.ID)
					}
					if _, err := tx.AppendAudit(entry(fmt.Sprintf("U%02d", w), ticket, commands.ActionRequest, commands.StateNone, commands.StateRequested, i)); err != nil {
						return err
					}
					_, err = tx.Emit(commands.Effect{Kind: commands.EffectReply, User: fmt.Sprintf("U%02d", w), Text: "queued " + ticket})
					return err
				})
				if err != nil {
					t.Errorf("writer %d, update %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	entries := verified(t, s)
	if len(entries) != writers*each {
		t.Errorf("after %d concurrent updates, the audit log has %d entries", writers*each, len(entries))
	}
	if got := auditHead(t, s); got.Seq != writers*each {
		t.Errorf("AuditHead() seq = %d, want %d", got.Seq, writers*each)
	}
	if open := read(t, s, func(tx commands.Tx) ([]commands.Release, error) { return tx.Open() }); len(open) != writers*each {
		t.Errorf("Open() has %d releases, want %d", len(open), writers*each)
	}
	if es, err := s.Pending(context.Background(), 1000); err != nil || len(es) != writers*each {
		t.Errorf("the outbox has %d effects (error %v), want %d", len(es), err, writers*each)
	}
}
