package commands_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// newWeeklyHarness is a schedHarness whose clock starts at at, with
// reports.weekly "0 10 * * MON" in Europe/Berlin and the hand-built history
// in the log.
func newWeeklyHarness(t *testing.T, at time.Time) *schedHarness {
	t.Helper()
	s := newFreezeHarness(t, at, func(c *commands.Config) {
		c.WeeklyReport = mustCron(t, "CRON_TZ=Europe/Berlin 0 10 * * MON")
	})
	seedHistory(t, s.harness)
	return s
}

// weeklyAudit returns the times of the weekly-report entries, checking
// that each is the scheduler's and changes no state.
func weeklyAudit(t *testing.T, db commands.Store) []time.Time {
	t.Helper()
	var out []time.Time
	err := db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		if e.Action != commands.ActionWeeklyReport {
			return nil
		}
		if e.Actor != commands.ActorDobrobot || e.Via != commands.SourceScheduler || e.From != commands.StateNone || e.To != commands.StateNone {
			t.Errorf("weekly-report entry %+v: want dobrobot via %s, no state change", e, commands.SourceScheduler)
		}
		out = append(out, e.Time.UTC())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWeeklyReport: the report is posted at Monday 10:00 Berlin time (09:00
// UTC in November), not a second before, with the very text report last 7d
// answers at that time; it is audited, the log still replays and verifies,
// and the next Monday's is planned.
func TestWeeklyReport(t *testing.T) {
	sun := time.Date(2026, 11, 8, 12, 0, 0, 0, time.UTC)
	s := newWeeklyHarness(t, sun)
	due := time.Date(2026, 11, 9, 9, 0, 0, 0, time.UTC)
	if got := posts(s.step(due.Sub(sun) - time.Second)); len(got) != 0 {
		t.Errorf("a second before: %q", got)
	}
	got := posts(s.step(time.Second))
	s.now = s.clk.Now()
	want := reply(s.say(ann, "report last 7d"))
	if !strings.Contains(want, "DORA report, 2026-11-02 09:00 to 2026-11-09 09:00 UTC (7 days)") {
		t.Fatalf("report last 7d at the due time:\n%s", want)
	}
	if diff := cmp.Diff([]string{want}, got); diff != "" {
		t.Errorf("posts at the due time (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Time{due}, weeklyAudit(t, s.db)); diff != "" {
		t.Errorf("weekly-report entries (-want +got):\n%s", diff)
	}
	if d := nextDue(t, s.db); d == nil || d.Kind != commands.DueWeeklyReport || !d.At.Equal(due.Add(7*24*time.Hour)) {
		t.Errorf("next due %+v; want the weekly report at %s", d, due.Add(7*24*time.Hour))
	}
	verifyAudit(t, s.db)
}

// TestWeeklyReportAfterRestart: the bot is down over three Mondays; started
// again, it posts one report (the last 7 days up to now), once, and a
// second restart posts nothing; the next is the following Monday.
func TestWeeklyReportAfterRestart(t *testing.T) {
	sun := time.Date(2026, 11, 8, 12, 0, 0, 0, time.UTC)
	s := newWeeklyHarness(t, sun)
	s.stop()
	s.clk.Advance(16 * 24 * time.Hour) // Tuesday 24 November, 12:00 UTC
	s.startSchedule()
	got := posts(s.drain())
	if len(got) != 1 || !strings.Contains(got[0], "DORA report, 2026-11-17 12:00 to 2026-11-24 12:00 UTC (7 days)") {
		t.Errorf("after the restart: posts %q; want one report of the last 7 days", got)
	}
	s.stop()
	s.startSchedule()
	if got := posts(s.drain()); len(got) != 0 {
		t.Errorf("a second restart posted %q", got)
	}
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	if diff := cmp.Diff([]time.Time{now}, weeklyAudit(t, s.db)); diff != "" {
		t.Errorf("weekly-report entries (-want +got):\n%s", diff)
	}
	if d := nextDue(t, s.db); d == nil || !d.At.Equal(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("next due %+v; want Monday 30 November 09:00 UTC", d)
	}
}

// TestWeeklyReportDST: across the October change in Europe/Berlin the
// report stays at 10:00 local time: 08:00 UTC before (CEST), 09:00 UTC
// after (CET); across the March change the other way.
func TestWeeklyReportDST(t *testing.T) {
	tests := []struct {
		name string
		from time.Time
		want []time.Time
	}{
		{"October 2026", time.Date(2026, 10, 18, 12, 0, 0, 0, time.UTC), []time.Time{
			time.Date(2026, 10, 19, 8, 0, 0, 0, time.UTC), time.Date(2026, 10, 26, 9, 0, 0, 0, time.UTC)}},
		{"March 2027", time.Date(2027, 3, 21, 12, 0, 0, 0, time.UTC), []time.Time{
			time.Date(2027, 3, 22, 9, 0, 0, 0, time.UTC), time.Date(2027, 3, 29, 8, 0, 0, 0, time.UTC)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newWeeklyHarness(t, tc.from)
			var n int
			for _, at := range tc.want {
				if got := posts(s.step(at.Sub(s.clk.Now()) - time.Second)); len(got) != 0 {
					t.Errorf("a second before %s: %q", at, got)
				}
				if got := posts(s.step(time.Second)); len(got) != 1 || !strings.Contains(got[0], "DORA report") {
					t.Errorf("at %s: posts %q; want the report", at, got)
				}
				n++
			}
			if diff := cmp.Diff(tc.want, weeklyAudit(t, s.db)); diff != "" {
				t.Errorf("weekly-report entries (-want +got):\n%s", diff)
			}
		})
	}
}

// verifyAudit checks that the log replays entry by entry, the weekly
// report's included (the seeded history is written without its releases,
// so the stored state is not compared).
func verifyAudit(t *testing.T, db commands.Store) {
	t.Helper()
	p := commands.NewProjection()
	err := db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		return p.Add(e)
	})
	if err != nil {
		t.Errorf("replay: %v", err)
	}
}
