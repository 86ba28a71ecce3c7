package commands_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// reportNow is the moment the hand-built history is reported at: a Monday,
// midnight UTC.
var reportNow = time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC)

// dayAt returns the moment day days (negative: before reportNow) at hour h.
func dayAt(day int, h float64) time.Time {
	return reportNow.Add(time.Duration(day) * 24 * time.Hour).Add(time.Duration(h * float64(time.Hour)))
}

// script builds one release's audit entries, moving its state through the
// transition table as the core does.
type script struct {
	t       *testing.T
	ticket  string
	env     string
	state   commands.State
	entries []commands.AuditEntry
}

func newRelease(t *testing.T, ticket, env, comps string, requested time.Time) *script {
	s := &script{t: t, ticket: ticket, env: env}
	return s.do(requested, commands.ActionRequest, "components: "+comps)
}

func (s *script) do(when time.Time, a commands.Action, detail string) *script {
	to, ok := commands.Next(s.state, a)
	if !ok {
		s.t.Fatalf("%s: %s from %s is not a transition", s.ticket, a, s.state)
	}
	s.entries = append(s.entries, commands.AuditEntry{Time: when, Actor: "U1", Action: a, Ticket: s.ticket, Env: s.env, From: s.state, To: to, Detail: detail})
	s.state = to
	return s
}

// raw adds an entry that changes no state (a refusal, a cancel hook's result).
func (s *script) raw(when time.Time, a commands.Action, detail string) *script {
	st := s.state
	if a == commands.ActionRefused {
		st = commands.StateNone
	}
	s.entries = append(s.entries, commands.AuditEntry{Time: when, Actor: "U1", Action: a, Ticket: s.ticket, Env: s.env, From: st, To: st, Detail: detail})
	return s
}

func (s *script) accept(t time.Time) *script { return s.do(t, commands.ActionAccept, "") }
func (s *script) start(t time.Time) *script {
	return s.do(t, commands.ActionStart, "locks: x; start hook attempt a1")
}
func (s *script) fail(t time.Time) *script {
	return s.do(t, commands.ActionFail, "start hook failed: exit 1 (attempt a1)")
}
func (s *script) finish(t time.Time) *script { return s.do(t, commands.ActionFinish, "") }
func (s *script) hookFailed(t time.Time) *script {
	return s.do(t, commands.ActionHookFailed, "finish hook failed: exit 2 (attempt a2)")
}
func (s *script) cancel(t time.Time, rollback bool) *script {
	if rollback {
		return s.do(t, commands.ActionCancel, "cancel hook attempt a3")
	}
	return s.do(t, commands.ActionCancel, "")
}

// simple is a release requested on day at 09:00 and done lead hours later,
// started half-way.
func simple(t *testing.T, ticket, env, comps string, day int, lead float64) *script {
	return newRelease(t, ticket, env, comps, dayAt(day, 9)).accept(dayAt(day, 9+lead/4)).start(dayAt(day, 9+lead/2)).finish(dayAt(day, 9+lead))
}

// history50 is the hand-built history of 50 releases whose figures
// TestReportHistory states, worked out by hand in the comments there.
// Releases P1–P35 deploy to production (most with no env in their entries,
// as a configuration without environments writes them), Q1–Q15 to qa.
func history50(t *testing.T) []commands.AuditEntry {
	const prod = "" // the default environment, as old entries name it
	rels := []*script{
		// The week before reportNow.
		simple(t, "P-1", prod, "api", -6, 2),
		simple(t, "P-2", prod, "web", -6, 4),
		newRelease(t, "P-3", prod, "api", dayAt(-5, 9)).accept(dayAt(-5, 9.5)).start(dayAt(-5, 10)).fail(dayAt(-5, 11)).start(dayAt(-5, 12)).finish(dayAt(-5, 14)),
		newRelease(t, "P-4", prod, "api,web", dayAt(-4, 8)).accept(dayAt(-4, 8.5)).start(dayAt(-4, 9)).cancel(dayAt(-4, 10), true).
			raw(dayAt(-4, 11), commands.ActionHookFailed, "cancel hook failed: exit 1 (attempt a3)"),
		newRelease(t, "P-5", prod, "api", dayAt(-4, 11)).raw(dayAt(-4, 11.1), commands.ActionRefused, "dep start: P-5 is not accepted yet").
			accept(dayAt(-4, 11.5)).start(dayAt(-4, 12)).finish(dayAt(-4, 13)),
		simple(t, "P-6", prod, "web", -3, 6),
		newRelease(t, "P-7", prod, "api", dayAt(-2, 9)).accept(dayAt(-2, 9.5)).start(dayAt(-2, 10)).hookFailed(dayAt(-2, 11)).finish(dayAt(-2, 12)),
		simple(t, "P-8", prod, "web", -2, 5),
		newRelease(t, "P-9", prod, "api", dayAt(-1, 9)).accept(dayAt(-1, 9.5)).start(dayAt(-1, 10)).fail(dayAt(-1, 11)),
		newRelease(t, "P-10", prod, "web", dayAt(-1, 9)).cancel(dayAt(-1, 10), false),
		newRelease(t, "P-11", prod, "api", dayAt(-1, 8)).do(dayAt(-1, 9), commands.ActionReject, "not now"),
		newRelease(t, "P-12", prod, "web", dayAt(-8, 9)).accept(dayAt(-8, 10)).start(dayAt(-1, 10)).finish(dayAt(-1, 20)),
		// The week before that.
		simple(t, "P-13", prod, "api", -13, 3),
		newRelease(t, "P-14", prod, "web", dayAt(-12, 9)).accept(dayAt(-12, 9.5)).start(dayAt(-12, 10)).fail(dayAt(-12, 11)).cancel(dayAt(-12, 12), false),
		simple(t, "P-15", prod, "web", -11, 2),
		newRelease(t, "P-16", prod, "api", dayAt(-10, 9)).accept(dayAt(-10, 11)).start(dayAt(-10, 13)).
			do(dayAt(-10, 14), commands.ActionInterrupt, "start hook interrupted (attempt a4)").finish(dayAt(-10, 17)),
		newRelease(t, "P-17", prod, "api,web", dayAt(-9, 9)).accept(dayAt(-9, 9.5)).start(dayAt(-9, 10)).fail(dayAt(-9, 11)).cancel(dayAt(-8, 10), true),
		simple(t, "P-18", prod, "api", -8, 3),
		// Earlier in the 30 days; some name production explicitly.
		simple(t, "P-19", prod, "api", -29, 1),
		simple(t, "P-20", "production", "api", -27, 2),
		simple(t, "P-21", "production", "api", -25, 3),
		simple(t, "P-22", "production", "api", -23, 4),
		simple(t, "P-23", "production", "api", -21, 10),
		simple(t, "P-24", "production", "api", -19, 2),
		simple(t, "P-25", "production", "api", -17, 1),
		newRelease(t, "P-26", "production", "api", dayAt(-15, 9)).accept(dayAt(-15, 9.5)).start(dayAt(-15, 10)).fail(dayAt(-15, 11)).finish(dayAt(-15, 13)),
		newRelease(t, "P-27", "production", "web", dayAt(-160, 9)).accept(dayAt(-20, 9)).start(dayAt(-20, 10)).finish(dayAt(-20, 12)),
		// The 30 days before those.
		simple(t, "P-28", prod, "api", -58, 2),
		simple(t, "P-29", prod, "web", -50, 6),
		newRelease(t, "P-30", prod, "api", dayAt(-45, 9)).accept(dayAt(-45, 9.5)).start(dayAt(-45, 10)).hookFailed(dayAt(-45, 11)).cancel(dayAt(-45, 12), true),
		simple(t, "P-31", prod, "api", -44, 2),
		simple(t, "P-32", prod, "web", -40, 4),
		simple(t, "P-33", prod, "api", -35, 3),
		simple(t, "P-34", prod, "api", -70, 2),
		newRelease(t, "P-35", prod, "web", dayAt(-65, 9)).accept(dayAt(-65, 9.5)).start(dayAt(-65, 10)).fail(dayAt(-65, 11)).start(dayAt(-55, 10)).finish(dayAt(-55, 12)),
		// qa.
		simple(t, "Q-1", "qa", "api", -7, 1),
		simple(t, "Q-2", "qa", "api", -7, 2),
		simple(t, "Q-3", "qa", "api", -6, 1),
		simple(t, "Q-4", "qa", "api", -5, 3),
		simple(t, "Q-5", "qa", "api", -3, 1),
		simple(t, "Q-6", "qa", "api", -2, 2),
		simple(t, "Q-7", "qa", "api", -1, 1),
		simple(t, "Q-8", "qa", "api", -1, 4),
		newRelease(t, "Q-9", "qa", "api", dayAt(-4, 9)).accept(dayAt(-4, 9.5)).start(dayAt(-4, 10)).fail(dayAt(-4, 11)).cancel(dayAt(-4, 12), false),
		simple(t, "Q-10", "qa", "api", -10, 5),
		simple(t, "Q-11", "qa", "api", -12, 2),
		simple(t, "Q-12", "qa", "api", -25, 3),
		simple(t, "Q-13", "qa", "api", -40, 1),
		newRelease(t, "Q-14", "qa", "api", dayAt(-20, 9)).cancel(dayAt(-20, 10), false),
		newRelease(t, "Q-15", "qa", "api", dayAt(-2, 9)).accept(dayAt(-2, 10)),
	}
	if len(rels) != 50 {
		t.Fatalf("the history has %d releases, want 50", len(rels))
	}
	var all []commands.AuditEntry
	for _, r := range rels {
		all = append(all, r.entries...)
	}
	// Freezes and their end name no ticket: never a release's.
	all = append(all,
		commands.AuditEntry{Time: dayAt(-3, 1), Actor: "U2", Action: commands.ActionLock, Detail: "api: audit"},
		commands.AuditEntry{Time: dayAt(-3, 2), Actor: "U2", Action: commands.ActionUnlock, Detail: "api"})
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	for i := range all {
		all[i].Seq = uint64(i + 1)
	}
	return all
}

// h is n hours.
func h(n float64) time.Duration { return time.Duration(n * float64(time.Hour)) }

// TestReportHistory checks every figure of the hand-built history against
// answers worked out by hand (in the comments), for the reports of the last
// 7 and 30 days, each with its previous period, for every environment. The
// entries fed are those the store would read: from ReadFrom to the end.
func TestReportHistory(t *testing.T) {
	entries := history50(t)
	week, day := 7*24*time.Hour, 24*time.Hour
	period := func(from, to int) commands.Period { return commands.Period{Since: dayAt(from, 0), Until: dayAt(to, 0)} }
	tests := []struct {
		name string
		days int
		env  string
		want []commands.EnvReport
	}{{
		name: "last 7d", days: 7,
		want: []commands.EnvReport{{
			Env: "production",
			// Done: P1 P2 (day -6), P3 (-5), P5 (-4), P6 (-3), P7 P8 (-2),
			// P12 (-1). Leads 2 4 5 2 6 3 5 179 → 2 2 3 4 5 5 6 179: p50 =
			// rank 4 = 4h, p90 = rank 8 = 179h. Ended: those 8 and P4 (a
			// rollback); failed: P3 (start hook), P4 (rollback), P7
			// (finish hook). Failures: P3 11:00→14:00 3h, P4 day -4 10:00 →
			// web by P6 day -3 15:00 29h, P7 1h, P9 not restored:
			// 1 3 29 → p50 3h, p90 29h.
			Current: commands.Figures{Period: period(-7, 0), Deploys: 8, Bucket: day, PerBucket: []int{0, 2, 1, 1, 1, 2, 1},
				Lead: commands.Durations{N: 8, P50: h(4), P90: h(179)}, Ended: 9, Failed: 3, StartFailed: 1, HookFailed: 1, Cancelled: 1, RolledBack: 1,
				Restore: commands.Durations{N: 3, P50: h(3), P90: h(29)}, Unrestored: 1},
			// Done: P13 (-13), P15 (-11), P16 (-10), P18 (-8); leads 3 2 8
			// 3 → p50 rank 2 = 3h, p90 rank 4 = 8h. Ended: those and P14,
			// P17 (cancelled after a failed start; P17 rolled back).
			// Failures: P14 → P15 24h; P17 waits for web until P2 on day -6,
			// after the period: not restored.
			Previous: commands.Figures{Period: period(-14, -7), Deploys: 4, Bucket: day, PerBucket: []int{0, 1, 0, 1, 1, 0, 1},
				Lead: commands.Durations{N: 4, P50: h(3), P90: h(8)}, Ended: 6, Failed: 2, StartFailed: 2, Cancelled: 2, RolledBack: 1,
				Restore: commands.Durations{N: 1, P50: h(24), P90: h(24)}, Unrestored: 1},
		}, {
			Env: "qa",
			// Done: Q1 Q2 (-7) Q3 (-6) Q4 (-5) Q5 (-3) Q6 (-2) Q7 Q8 (-1);
			// leads 1 2 1 3 1 2 1 4 → 1 1 1 1 2 2 3 4: p50 rank 4 = 1h, p90
			// rank 8 = 4h. Q9 failed its start and was cancelled (day -4
			// 11:00), restored by Q5 (day -3 10:00): 23h.
			Current: commands.Figures{Period: period(-7, 0), Deploys: 8, Bucket: day, PerBucket: []int{2, 1, 1, 0, 1, 1, 2},
				Lead: commands.Durations{N: 8, P50: h(1), P90: h(4)}, Ended: 9, Failed: 1, StartFailed: 1, Cancelled: 1,
				Restore: commands.Durations{N: 1, P50: h(23), P90: h(23)}},
			// Q11 (-12, 2h), Q10 (-10, 5h): p50 rank 1 = 2h, p90 rank 2 = 5h.
			Previous: commands.Figures{Period: period(-14, -7), Deploys: 2, Bucket: day, PerBucket: []int{0, 0, 1, 0, 1, 0, 0},
				Lead: commands.Durations{N: 2, P50: h(2), P90: h(5)}, Ended: 2},
		}},
	}, {
		name: "last 30d", days: 30,
		want: []commands.EnvReport{{
			Env: "production",
			// Done: the 12 of the last two weeks, P19–P26, and P27 whose
			// request (day -160) is before ReadFrom (-90): 21, 20 leads
			// known: 1×2, 2×5, 3×4, 4×3, 5×2, 6, 8, 10, 179 → p50 rank 10 =
			// 3h, p90 rank 18 = 8h. Weeks from day -30: P19–21 | P22–25,
			// P27 | P13 P15 P16 P26 | P18 P1 P2 P3 P5 P6 | P7 P8 P12.
			// Ended: 21 + P4 P14 P17; failed P3 P4 P7 P14 P17 P26.
			// Failures: 3h, 29h, 1h, 24h, P17 day -9 11:00 → P2 day -6
			// 13:00 74h, P26 2h; P9 not restored: 1 2 3 24 29 74 → p50
			// rank 3 = 3h, p90 rank 6 = 74h.
			Current: commands.Figures{Period: period(-30, 0), Deploys: 21, Bucket: week, PerBucket: []int{3, 5, 4, 6, 3},
				Lead: commands.Durations{N: 20, P50: h(3), P90: h(8)}, LeadUnknown: 1,
				Ended: 24, Failed: 6, StartFailed: 4, HookFailed: 1, Cancelled: 3, RolledBack: 2,
				Restore: commands.Durations{N: 6, P50: h(3), P90: h(74)}, Unrestored: 1},
			// Done: P28 (-58) P35 (-55) | P29 (-50) | P31 (-44) P32 (-40) |
			// P33 (-35); leads 2 243 6 2 4 3 → 2 2 3 4 6 243: p50 rank 3 =
			// 3h, p90 rank 6 = 243h (P35, requested day -65). Ended: and
			// P30; failed P30 (finish hook, rollback) and P35 (its start
			// failed on day -65). P30's failure → P31 24h; P35's is before
			// the period.
			Previous: commands.Figures{Period: period(-60, -30), Deploys: 6, Bucket: week, PerBucket: []int{2, 1, 2, 1, 0},
				Lead: commands.Durations{N: 6, P50: h(3), P90: h(243)}, Ended: 7, Failed: 2, StartFailed: 1, HookFailed: 1, Cancelled: 1, RolledBack: 1,
				Restore: commands.Durations{N: 1, P50: h(24), P90: h(24)}},
		}, {
			Env: "qa",
			// Q1–Q8, Q10, Q11, Q12: leads 1 1 1 1 2 2 2 3 3 4 5 → p50 rank
			// 6 = 2h, p90 rank 10 = 4h. Weeks: Q12 | - | Q11 Q10 | Q1–Q5 |
			// Q6–Q8.
			Current: commands.Figures{Period: period(-30, 0), Deploys: 11, Bucket: week, PerBucket: []int{1, 0, 2, 5, 3},
				Lead: commands.Durations{N: 11, P50: h(2), P90: h(4)}, Ended: 12, Failed: 1, StartFailed: 1, Cancelled: 1,
				Restore: commands.Durations{N: 1, P50: h(23), P90: h(23)}},
			Previous: commands.Figures{Period: period(-60, -30), Deploys: 1, Bucket: week, PerBucket: []int{0, 0, 1, 0, 0},
				Lead: commands.Durations{N: 1, P50: h(1), P90: h(1)}, Ended: 1},
		}},
	}, {
		name: "last 7d in qa", days: 7, env: "qa",
	}, {
		name: "last 7d in staging, which has no entry", days: 7, env: "staging",
	}}
	// The one-environment reports are the all-environment report's rows.
	tests[2].want = tests[0].want[1:]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := commands.Period{Since: reportNow.Add(-time.Duration(tt.days) * 24 * time.Hour), Until: reportNow}
			b := commands.NewReportBuilder(p, tt.env)
			for _, e := range entries {
				if !e.Time.Before(p.ReadFrom()) && e.Time.Before(p.Until) {
					b.Add(e)
				}
			}
			got := b.Report()
			want := commands.Report{Period: p, Envs: tt.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReportRate checks the derived figures: the failure rate and deploys
// per week.
func TestReportRate(t *testing.T) {
	p := commands.Period{Since: reportNow.Add(-30 * 24 * time.Hour), Until: reportNow}
	tests := []struct {
		f        commands.Figures
		rate     string
		perWeek  string
		hasRated bool
	}{
		{commands.Figures{Period: p, Deploys: 30, Ended: 24, Failed: 6}, "0.250", "7.000", true},
		{commands.Figures{Period: p}, "0.000", "0.000", false},
	}
	for _, tt := range tests {
		rate, ok := tt.f.FailureRate()
		got := fmt.Sprintf("%.3f %.3f %v", rate, tt.f.PerWeek(), ok)
		if want := fmt.Sprintf("%s %s %v", tt.rate, tt.perWeek, tt.hasRated); got != want {
			t.Errorf("%+v: got %s, want %s", tt.f, got, want)
		}
	}
}

// TestReportRollback: a release that a rollback replaces failed, counted in
// the period it was deployed in (a change failure of that deployment), and
// its component waits from the rollback until it is done again: R-2 (v2)
// is done on day -3 and rolled back on day -2 at 10:00; R-3 (v1 again)
// is done on day -2 at 13:00, a restore of 3 h. R-1 is done earlier and
// fine. Current period (last 7 days): 3 deploys, 3 ended, 1 failed, rolled
// back 1, one restore of 3 h.
func TestReportRollback(t *testing.T) {
	var entries []commands.AuditEntry
	entries = append(entries, simple(t, "R-1", "production", "backend", -5, 2).entries...)
	r2 := simple(t, "R-2", "production", "backend", -3, 2)
	entries = append(entries, r2.entries...)
	entries = append(entries, commands.AuditEntry{Time: dayAt(-2, 10), Actor: "U1", Action: commands.ActionRolledBack,
		Ticket: "R-2", Env: "production", Version: "2.0.0", From: commands.StateDone, To: commands.StateDone,
		Detail: "backend: rolled back to 1.0.0 by R-3 (release 3)"})
	entries = append(entries, newRelease(t, "R-3", "production", "backend", dayAt(-2, 10)).accept(dayAt(-2, 11)).
		start(dayAt(-2, 12)).finish(dayAt(-2, 13)).entries...)

	p := commands.Period{Since: reportNow.Add(-7 * 24 * time.Hour), Until: reportNow}
	b := commands.NewReportBuilder(p, "")
	for _, e := range entries {
		b.Add(e)
	}
	rep := b.Report()
	if len(rep.Envs) != 1 {
		t.Fatalf("environments %+v, want production alone", rep.Envs)
	}
	f := rep.Envs[0].Current
	got := fmt.Sprintf("deploys %d ended %d failed %d rolled back %d restores %v unrestored %d",
		f.Deploys, f.Ended, f.Failed, f.RolledBack, f.Restore.N, f.Unrestored)
	if want := "deploys 3 ended 3 failed 1 rolled back 1 restores 1 unrestored 0"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if f.Restore.N == 1 && f.Restore.P50 != 3*time.Hour {
		t.Errorf("time to restore %v, want 3h", f.Restore.P50)
	}
}
