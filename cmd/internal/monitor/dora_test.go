package monitor

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// countingStore counts the reads of the audit log.
type countingStore struct {
	commands.Store
	audits atomic.Int64
}

func (c *countingStore) Audit(ctx context.Context, f commands.AuditFilter, fn func(commands.AuditEntry) error) error {
	c.audits.Add(1)
	return c.Store.Audit(ctx, f, fn)
}

var doraNow = time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC)

// release returns the entries of ticket in env: requested at req, started
// an hour later, then ended by end (finish, fail then cancel, or cancel).
func release(ticket, env string, req time.Time, end commands.Action) []commands.AuditEntry {
	e := func(at time.Time, a commands.Action, from, to commands.State, detail string) commands.AuditEntry {
		return commands.AuditEntry{Time: at, Actor: "U1", Action: a, Ticket: ticket, Env: env, From: from, To: to, Detail: detail}
	}
	out := []commands.AuditEntry{
		e(req, commands.ActionRequest, commands.StateNone, commands.StateRequested, "components: backend"),
		e(req.Add(30*time.Minute), commands.ActionAccept, commands.StateRequested, commands.StateAccepted, ""),
		e(req.Add(time.Hour), commands.ActionStart, commands.StateAccepted, commands.StateDeploying, "locks: backend"),
	}
	switch end {
	case commands.ActionFinish:
		out = append(out, e(req.Add(3*time.Hour), commands.ActionFinish, commands.StateDeploying, commands.StateDone, ""))
	case commands.ActionFail:
		out = append(out, e(req.Add(2*time.Hour), commands.ActionFail, commands.StateDeploying, commands.StateFailed, "start hook failed"),
			e(req.Add(4*time.Hour), commands.ActionCancel, commands.StateFailed, commands.StateCancelled, "gave up"))
	}
	return out
}

// doraHistory: production has 4 done (one of which restores a failed
// start), a failure and one deploy older than the window; qa has 2 done.
func doraHistory() []commands.AuditEntry {
	day := func(d, h int) time.Time {
		return doraNow.Add(time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour)
	}
	var out []commands.AuditEntry
	for _, r := range []struct {
		ticket, env string
		at          time.Time
		end         commands.Action
	}{
		{"P-1", "production", day(-9, 9), commands.ActionFinish},
		{"P-2", "production", day(-6, 9), commands.ActionFinish},
		{"Q-1", "qa", day(-5, 8), commands.ActionFinish},
		{"P-3", "production", day(-4, 9), commands.ActionFail},
		{"P-4", "production", day(-4, 15), commands.ActionFinish},
		{"Q-2", "qa", day(-3, 8), commands.ActionFinish},
		{"P-5", "production", day(-2, 9), commands.ActionFinish},
		{"P-6", "production", day(-1, 9), commands.ActionFinish},
	} {
		out = append(out, release(r.ticket, r.env, r.at, r.end)...)
	}
	return out
}

// gauges scrapes m and returns "metric{env}" → value of the DORA gauges.
func gauges(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if len(mf.GetName()) < 13 || mf.GetName()[:13] != "dobrobot_dora" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			out[mf.GetName()+"{"+mt.GetLabel()[0].GetValue()+"}"] = mt.GetGauge().GetValue()
		}
	}
	return out
}

// TestDORAGauges: the gauges, primed from half the history and fed the rest
// as it is appended, say what report last 7d says on the same database; a
// scrape reads no log (one Audit call in all, the priming).
func TestDORAGauges(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := &countingStore{Store: db}
	m := NewMetrics(store, func() bool { return true }, zerolog.Nop())
	m.dora.now = func() time.Time { return doraNow }
	ctx := context.Background()
	hist := doraHistory()
	appendAll := func(s commands.Store, es []commands.AuditEntry) {
		for _, e := range es {
			if err := s.Update(ctx, func(tx commands.Tx) error { _, err := tx.AppendAudit(e); return err }); err != nil {
				t.Fatal(err)
			}
		}
	}
	half := len(hist) / 2
	appendAll(db, hist[:half])
	if got := gauges(t, m); len(got) != 0 {
		t.Errorf("gauges before StartDORA: %v", got)
	}
	if err := m.StartDORA(ctx, store); err != nil {
		t.Fatal(err)
	}
	appendAll(commands.WatchAudit(db, m.Audited), hist[half:])

	rep, err := commands.ComputeReport(ctx, db, commands.Period{Since: doraNow.Add(-DORAWindow), Until: doraNow}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, er := range rep.Envs {
		f, env := er.Current, er.Env
		want["dobrobot_dora_deploys{"+env+"}"] = float64(f.Deploys)
		want["dobrobot_dora_lead_time_releases{"+env+"}"] = float64(f.Lead.N)
		want["dobrobot_dora_lead_time_p50_seconds{"+env+"}"] = f.Lead.P50.Seconds()
		want["dobrobot_dora_change_failure_releases{"+env+"}"] = float64(f.Ended)
		want["dobrobot_dora_time_to_restore_releases{"+env+"}"] = float64(f.Restore.N)
		want["dobrobot_dora_unrestored{"+env+"}"] = float64(f.Unrestored)
		if r, ok := f.FailureRate(); ok {
			want["dobrobot_dora_change_failure_rate{"+env+"}"] = r
		}
		if f.Restore.N > 0 {
			want["dobrobot_dora_time_to_restore_p50_seconds{"+env+"}"] = f.Restore.P50.Seconds()
		}
	}
	// The figures worked out by hand, so that agreeing is not agreeing on
	// nothing: production has P-2, P-4, P-5, P-6 done (P-1 is older), P-3
	// failed at day -4 11:00 and restored by P-4 at 18:00.
	for k, v := range map[string]float64{
		"dobrobot_dora_deploys{production}": 4, "dobrobot_dora_change_failure_rate{production}": 0.2,
		"dobrobot_dora_time_to_restore_p50_seconds{production}": 7 * 3600, "dobrobot_dora_lead_time_p50_seconds{qa}": 3 * 3600,
	} {
		if want[k] != v {
			t.Errorf("report: %s = %v, want %v", k, want[k], v)
		}
	}
	before := store.audits.Load()
	for range 3 {
		if diff := cmp.Diff(want, gauges(t, m)); diff != "" {
			t.Errorf("gauges (-report +gauges):\n%s", diff)
		}
	}
	if got := store.audits.Load(); got != 1 || got != before {
		t.Errorf("%d reads of the log (%d before the scrapes); want 1, the priming", got, before)
	}
	m.StopDORA()
	if got := gauges(t, m); len(got) != 0 {
		t.Errorf("gauges after StopDORA: %v", got)
	}
}
