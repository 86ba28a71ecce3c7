package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// testReport computes a report (commands.ComputeReport, as the report verb
// and dobrobot report do) over a store: the store's filter on time and
// action must hand the builder exactly the entries it needs. The entry
// just before the report's first moment (ReadFrom) is left out, the one at
// it kept, the one at the period's end left out. Expected figures worked
// out by hand.
func testReport(t *testing.T, s commands.Store, _ func() commands.Store) {
	end := t0.Add(40 * 24 * time.Hour)
	p := commands.Period{Since: end.Add(-24 * time.Hour), Until: end}
	readFrom := p.ReadFrom() // end - 2 days - 30 days
	h := func(n float64) time.Time { return end.Add(time.Duration(n * float64(time.Hour))) }
	e := func(when time.Time, ticket, env string, a commands.Action, from, to commands.State, detail string) commands.AuditEntry {
		return commands.AuditEntry{Time: when, Actor: "U01ANN", Action: a, Ticket: ticket, Env: env, From: from, To: to, Detail: detail}
	}
	const (
		none, req, acc, dep = commands.StateNone, commands.StateRequested, commands.StateAccepted, commands.StateDeploying
		done, failed, cnl   = commands.StateDone, commands.StateFailed, commands.StateCancelled
	)
	appendAudit(t, s,
		// requested a minute before what is read: its lead time is unknown.
		e(readFrom.Add(-time.Minute), "R-1", "", commands.ActionRequest, none, req, "components: api"),
		// requested at the first moment read: 32 days - 9 hours of lead time.
		e(readFrom, "R-2", "", commands.ActionRequest, none, req, "components: api"),
		// R-3 (previous day): its start fails, then it is rolled back.
		e(h(-30), "R-3", "", commands.ActionRequest, none, req, "components: web"),
		e(h(-29.5), "R-3", "", commands.ActionAccept, req, acc, ""),
		e(h(-29), "R-3", "", commands.ActionStart, acc, dep, "locks: web"),
		e(h(-28), "R-3", "", commands.ActionFail, dep, failed, "start hook failed"),
		e(h(-27), "R-3", "", commands.ActionCancel, failed, cnl, "cancel hook attempt a1"),
		e(h(-26), "R-3", "", commands.ActionHook, cnl, cnl, "cancel hook ok"),
		e(h(-13), "R-1", "", commands.ActionAccept, req, acc, ""),
		e(h(-12), "R-1", "", commands.ActionStart, acc, dep, "locks: api"),
		e(h(-11.5), "R-2", "", commands.ActionAccept, req, acc, ""),
		e(h(-11), "R-2", "", commands.ActionStart, acc, dep, "locks: api"),
		e(h(-10), "R-1", "", commands.ActionFinish, dep, done, ""),
		e(h(-9), "R-2", "", commands.ActionFinish, dep, done, ""),
		e(h(-8), "", "", commands.ActionLock, none, none, "api: audit"),
		// deploys web again, after the previous day ended: R-3's
		// failure is not restored within its period.
		e(h(-5), "R-4", "", commands.ActionRequest, none, req, "components: web"),
		e(h(-4.5), "R-4", "", commands.ActionRefused, none, none, "dep start: not accepted"),
		e(h(-4.2), "R-4", "", commands.ActionAccept, req, acc, ""),
		e(h(-4), "R-4", "", commands.ActionStart, acc, dep, "locks: web"),
		e(h(-3), "R-5", "qa", commands.ActionRequest, none, req, "components: api"),
		e(h(-2), "R-4", "", commands.ActionFinish, dep, done, ""),
		e(h(-2), "R-5", "qa", commands.ActionReject, req, commands.StateRejected, "not now"),
		// done at the period's end, which is not in it.
		e(h(-1), "R-6", "", commands.ActionRequest, none, req, "components: api"),
		e(h(-0.7), "R-6", "", commands.ActionAccept, req, acc, ""),
		e(h(-0.5), "R-6", "", commands.ActionStart, acc, dep, "locks: api"),
		e(end, "R-6", "", commands.ActionFinish, dep, done, ""),
	)
	got, err := commands.ComputeReport(context.Background(), s, p, "")
	if err != nil {
		t.Fatal(err)
	}
	prev := p.Previous()
	day := 24 * time.Hour
	empty := func(q commands.Period) commands.Figures {
		return commands.Figures{Period: q, Bucket: day, PerBucket: []int{0}}
	}
	want := commands.Report{Period: p, Envs: []commands.EnvReport{{
		Env: "production",
		// Done: R-1 (lead unknown), R-2 (32d - 9h = 759h), R-4 (3h):
		// p50 rank 1 = 3h, p90 rank 2 = 759h.
		Current: commands.Figures{Period: p, Deploys: 3, Bucket: day, PerBucket: []int{3},
			Lead: commands.Durations{N: 2, P50: 3 * time.Hour, P90: 759 * time.Hour}, LeadUnknown: 1, Ended: 3},
		Previous: commands.Figures{Period: prev, Bucket: day, PerBucket: []int{0}, Ended: 1, Failed: 1, StartFailed: 1,
			Cancelled: 1, RolledBack: 1, Unrestored: 1},
	}, {
		Env: "qa", Current: empty(p), Previous: empty(prev),
	}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}
