package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

func testAuditChain(t *testing.T, s commands.Store, reopen func() commands.Store) {
	raw := entry("U01ANN", "PAY-1", commands.ActionRequest, commands.StateNone, commands.StateRequested, 0)
	raw.Detail = "line one\nline two"
	raw.Seq, raw.Hash, raw.PrevHash = 42, "forged", "forged" // Seal overrides these
	raw.Time = at(0).In(time.FixedZone("CET", 3600))
	// An entry about a release in an environment at a version keeps both,
	// and hashes them (commands.AuditEntry.ComputeHash).
	inQA := entry("U01ANN", "PAY-1", commands.ActionStart, commands.StateAccepted, commands.StateDeploying, 2)
	inQA.Env, inQA.Version = "qa", "v2.4.0+build.7"
	appended := appendAudit(t, s,
		raw,
		entry("U02BOB", "PAY-1", commands.ActionAccept, commands.StateRequested, commands.StateAccepted, 1),
		inQA,
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
		{"actions", commands.AuditFilter{Actions: []commands.Action{commands.ActionRequest, commands.ActionLock}}, []uint64{1, 3, 5}},
		{"actions and window", commands.AuditFilter{Since: at(60), Until: at(240), Actions: []commands.Action{commands.ActionRequest, commands.ActionStart}}, []uint64{3, 4}},
		{"actions and ticket", commands.AuditFilter{Ticket: "PAY-1", Actions: []commands.Action{commands.ActionAccept}}, []uint64{2}},
		{"an action never written", commands.AuditFilter{Actions: []commands.Action{commands.ActionFinish}}, []uint64{}},
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
