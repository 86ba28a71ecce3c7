package commands_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// reportFigures is what report last 7d at now says of each environment,
// in RollingEnv's terms.
func reportFigures(t *testing.T, db commands.Store, now time.Time) []commands.RollingEnv {
	t.Helper()
	rep, err := commands.ComputeReport(context.Background(), db, commands.Period{Since: now.Add(-7 * 24 * time.Hour), Until: now}, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []commands.RollingEnv
	for _, er := range rep.Envs {
		f := er.Current
		out = append(out, commands.RollingEnv{Env: er.Env, Deploys: f.Deploys, Lead: f.Lead, Ended: f.Ended, Failed: f.Failed,
			Restore: f.Restore, Unrestored: f.Unrestored})
	}
	return out
}

// nonEmpty drops the environments with nothing in the window: the report
// names an environment active in the window before too.
func nonEmpty(es []commands.RollingEnv) []commands.RollingEnv {
	var out []commands.RollingEnv
	for _, e := range es {
		if e != (commands.RollingEnv{Env: e.Env}) {
			out = append(out, e)
		}
	}
	return out
}

// TestRollingAgreesWithReport: over the hand-built history, the rolling
// window fed entry by entry as they are appended (through WatchAudit, the
// way the bot feeds /metrics), and one primed from the log, say at every
// look what report last 7d says at that time.
func TestRollingAgreesWithReport(t *testing.T) {
	tests := []struct {
		name    string
		entries func(t *testing.T) []commands.AuditEntry
	}{
		{"history50", history50},
		{"rollback", rollbackHistory},
		{"incident", incidentHistory},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkRolling(t, tc.entries(t)) })
	}
}

// rollbackHistory is TestReportRollback's: R-2, done on day -3, rolled back
// on day -2 at 10:00 and restored by R-3 at 13:00.
func rollbackHistory(t *testing.T) []commands.AuditEntry {
	var entries []commands.AuditEntry
	entries = append(entries, simple(t, "R-1", "production", "backend", -5, 2).entries...)
	entries = append(entries, simple(t, "R-2", "production", "backend", -3, 2).entries...)
	entries = append(entries, commands.AuditEntry{Time: dayAt(-2, 10), Actor: "U1", Action: commands.ActionRolledBack,
		Ticket: "R-2", Env: "production", Version: "2.0.0", From: commands.StateDone, To: commands.StateDone,
		Detail: "backend: rolled back to 1.0.0 by R-3 (release 3)"})
	return append(entries, newRelease(t, "R-3", "production", "backend", dayAt(-2, 10)).accept(dayAt(-2, 11)).
		start(dayAt(-2, 12)).finish(dayAt(-2, 13)).entries...)
}

func checkRolling(t *testing.T, entries []commands.AuditEntry) {
	h := newHarness(t)
	fed := commands.NewRollingFigures(7 * 24 * time.Hour)
	watched := commands.WatchAudit(h.db, func(es []commands.AuditEntry) {
		for _, e := range es {
			fed.Add(e)
		}
	})
	looks := []time.Time{reportNow.Add(-10 * 24 * time.Hour), reportNow.Add(-5 * 24 * time.Hour), dayAt(-2, 11), reportNow.Add(-36 * time.Hour),
		dayAt(-2, 14), reportNow, reportNow.Add(3 * 24 * time.Hour), reportNow.Add(5 * 24 * time.Hour)}
	if !slices.IsSortedFunc(looks, time.Time.Compare) {
		t.Fatal("the looks must go forward: entries before each are appended")
	}
	i := 0
	for _, now := range looks {
		// Append what happened before now, one transaction an entry.
		for ; i < len(entries) && entries[i].Time.Before(now); i++ {
			if err := watched.Update(context.Background(), func(tx commands.Tx) error {
				_, err := tx.AppendAudit(entries[i])
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		want := nonEmpty(reportFigures(t, h.db, now))
		if diff := cmp.Diff(want, nonEmpty(fed.Figures(now))); diff != "" {
			t.Errorf("fed, at %s (-report +rolling):\n%s", now, diff)
		}
		primed := commands.NewRollingFigures(7 * 24 * time.Hour)
		if _, err := commands.PrimeRolling(context.Background(), h.db, primed, now); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, nonEmpty(primed.Figures(now))); diff != "" {
			t.Errorf("primed, at %s (-report +rolling):\n%s", now, diff)
		}
	}
	if len(nonEmpty(fed.Figures(reportNow))) == 0 {
		t.Fatal("the window at reportNow is empty: the test compares nothing")
	}
}
