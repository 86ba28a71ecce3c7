package commands_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestReportParse checks report's grammar: what parses, to what, and the
// answer to everything else.
func TestReportParse(t *testing.T) {
	tests := []struct {
		text    string
		envs    []string
		env     string
		period  string
		wantErr string
	}{
		{text: "report"},
		{text: "report last 7d", period: "last 7d"},
		{text: "REPORT Last 90D", period: "last 90d"},
		{text: "report qa", env: "qa"},
		{text: "report QA last 30d", env: "qa", period: "last 30d"},
		{text: "report in qa last 30d", env: "qa", period: "last 30d"},
		{text: "report production since 2026-11-01", env: "production", period: "since 2026-11-01"},
		{text: "report since 2026-11-01 until 2026-12-01", period: "since 2026-11-01 until 2026-12-01"},
		{text: "report since 2026-11-01T10:00:00Z until 2026-11-02T10:00:00+02:00", period: "since 2026-11-01T10:00:00Z until 2026-11-02T10:00:00+02:00"},
		{text: "report qa last 7d", envs: []string{"qa", "production"}, env: "qa", period: "last 7d"},
		{text: "report stagin last 7d", envs: []string{"staging", "production"},
			wantErr: `"stagin" is not an environment: staging, production (did you mean staging?).`},
		{text: "report last", wantErr: "last takes a number of days, like last 30d, and nothing after: report [ENV] [last 7d | last 30d | last 90d | since 2026-11-01 [until 2026-12-01]]."},
		{text: "report last 0d", wantErr: `"0d" is not a number of days from 1d to 366d: report [ENV] [last 7d | last 30d | last 90d | since 2026-11-01 [until 2026-12-01]].`},
		{text: "report last 367d", wantErr: `"367d" is not a number of days from 1d to 366d: report [ENV] [last 7d | last 30d | last 90d | since 2026-11-01 [until 2026-12-01]].`},
		{text: "report last 7d please", wantErr: "last takes a number of days, like last 30d, and nothing after: report [ENV] [last 7d | last 30d | last 90d | since 2026-11-01 [until 2026-12-01]]."},
		{text: "report since yesterday", wantErr: `"yesterday" is not a date: write 2026-11-01 or 2026-11-01T14:30:00Z.`},
		{text: "report since 2026-12-01 until 2026-11-01", wantErr: "The period must start before it ends (since 2026-12-01T00:00:00Z until 2026-11-01T00:00:00Z)."},
		{text: "report since 2024-01-01 until 2026-01-01", wantErr: "A report covers at most 366 days; that period has 731."},
		{text: "report since 2026-11-01 to 2026-12-01", wantErr: "since takes a date, then maybe until and a date: report [ENV] [last 7d | last 30d | last 90d | since 2026-11-01 [until 2026-12-01]]."},
		{text: "report until 2026-11-01", wantErr: `"until" is not a period: report [ENV] [last 7d | last 30d | last 90d | since 2026-11-01 [until 2026-12-01]].`},
		{text: "report in", wantErr: "report needs an environment after in: report [ENV] [last 7d | last 30d | last 90d | since 2026-11-01 [until 2026-12-01]]."},
		{text: "report qa!", wantErr: `"qa!" is neither an environment nor a period: report [ENV] [last 7d | last 30d | last 90d | since 2026-11-01 [until 2026-12-01]].`},
		{text: "report qa monthly", wantErr: `"monthly" is not a period: report [ENV] [last 7d | last 30d | last 90d | since 2026-11-01 [until 2026-12-01]].`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			c, err := commands.ParseIn(tt.text, tt.envs)
			if tt.wantErr != "" {
				if got := commands.ErrorMessage(err); got != tt.wantErr || commands.ErrorCode(err) != commands.EINVALID {
					t.Fatalf("error %q (%v), want %q", got, commands.ErrorCode(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := commands.Command{Verb: commands.VerbReport, Env: tt.env, Text: tt.period}
			if diff := cmp.Diff(want, c); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// The command reads back as itself.
			again, err := commands.ParseIn(c.String(), tt.envs)
			if err != nil || !cmp.Equal(again, c) {
				t.Errorf("%q parses to %+v (%v), want %+v", c.String(), again, err, c)
			}
		})
	}
}

// TestReportPeriod resolves parsed periods against the clock.
func TestReportPeriod(t *testing.T) {
	now := time.Date(2026, 11, 9, 15, 30, 0, 0, time.UTC)
	tests := []struct {
		text    string
		want    commands.Period
		wantErr string
	}{
		{"report", commands.Period{Since: now.Add(-30 * 24 * time.Hour), Until: now}, ""},
		{"report last 7d", commands.Period{Since: now.Add(-7 * 24 * time.Hour), Until: now}, ""},
		{"report since 2026-11-01", commands.Period{Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Until: now}, ""},
		{"report since 2026-10-01 until 2026-11-01", commands.Period{Since: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}, ""},
		{"report since 2026-11-10", commands.Period{}, "That period starts in the future (2026-11-10T00:00:00Z)."},
		{"report since 2025-11-01", commands.Period{}, "A report covers at most 366 days; that period has 374."},
	}
	for _, tt := range tests {
		c, err := commands.Parse(tt.text)
		if err != nil {
			t.Fatal(err)
		}
		got, err := commands.ReportPeriod(c, now)
		if gotErr := commands.ErrorMessage(err); gotErr != tt.wantErr || got != tt.want {
			t.Errorf("%s: got %v, %q; want %v, %q", tt.text, got, gotErr, tt.want, tt.wantErr)
		}
	}
}

// seedHistory writes the hand-built history into h's audit log, as the core
// would have written it, and returns the chain's head.
func seedHistory(t *testing.T, h *harness) (uint64, string) {
	t.Helper()
	err := h.db.Update(context.Background(), func(tx commands.Tx) error {
		for _, e := range history50(t) {
			if _, err := tx.AppendAudit(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return auditHead(t, h)
}

func auditHead(t *testing.T, h *harness) (seq uint64, hash string) {
	t.Helper()
	err := h.db.View(context.Background(), func(tx commands.Tx) error {
		var err error
		seq, hash, err = tx.AuditHead()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return seq, hash
}

// TestReportCommand asks for reports in chat over the hand-built history:
// the answer is the table of the figures TestReportHistory checks, and
// reports, good or refused, leave the audit log as it was.
func TestReportCommand(t *testing.T) {
	h := newHarness(t)
	h.now = reportNow
	seq, hash := seedHistory(t, h)
	tests := []struct{ text, want string }{{
		text: "report last 7d",
		want: "DORA report, 2026-11-02 00:00 to 2026-11-09 00:00 UTC (7 days), each figure with the number of releases it rests on, next to the 7 days before.\n```\n" +
			"production               this period            the one before\n" +
			"deploys                  8 (1.1/day, 8.0/week)  4 (0.6/day, 4.0/week)\n" +
			"lead time p50/p90        4h / 7d 11h (8)        3h / 8h (4)\n" +
			"change failure rate      33% (3 of 9)           33% (2 of 6)\n" +
			"time to restore p50/p90  3h / 29h (3; 1 open)   24h / 24h (1; 1 open)\n" +
			"failures                 1 start hook, 1 finish hook, 1 cancelled (1 rolled back)\n" +
			"deploys per day          ▁█▅▅▅█▅ (max 2 a day)\n```\n```\n" +
			"qa                       this period            the one before\n" +
			"deploys                  8 (1.1/day, 8.0/week)  2 (0.3/day, 2.0/week)\n" +
			"lead time p50/p90        1h / 4h (8)            2h / 5h (2)\n" +
			"change failure rate      11% (1 of 9)           0% (0 of 2)\n" +
			"time to restore p50/p90  23h / 23h (1)          – (0)\n" +
			"failures                 1 start hook, 0 finish hook, 1 cancelled (0 rolled back)\n" +
			"deploys per day          █▅▅▁▅▅█ (max 2 a day)\n```",
	}, {
		text: "report staging",
		want: "DORA report, 2026-10-10 00:00 to 2026-11-09 00:00 UTC (30 days), each figure with the number of releases it rests on, next to the 30 days before.\nNothing was released in staging in that period or the one before it.",
	}, {
		text: "report last 0d",
		want: `"0d" is not a number of days from 1d to 366d: report [ENV] [last 7d | last 30d | last 90d | since 2026-11-01 [until 2026-12-01]].`,
	}, {
		text: "report since 2026-11-10",
		want: "That period starts in the future (2026-11-10T00:00:00Z).",
	}}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got := reply(h.say(ann, tt.text))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reply (-want +got):\n%s\ngot:\n%s", diff, got)
			}
			if s, hh := auditHead(t, h); s != seq || hh != hash {
				t.Errorf("the audit head moved from %d %s to %d %s", seq, hash, s, hh)
			}
		})
	}
}

// TestReportWithEnvironments runs releases through the core with
// environments configured, then asks for the report: the entries the core
// writes carry the environment the report groups by, and an environment
// that is not configured is refused with the list.
func TestReportWithEnvironments(t *testing.T) {
	h, _ := envHarness(t)
	start := h.now
	h.script([]step{
		{ann, "dobro PAY-1 to qa", []string{"PAY-1> in qa"}},
	})
	h.now = start.Add(time.Hour)
	h.script([]step{{ann, "dep start PAY-1 in qa", []string{"Deploy of PAY-1 started."}}})
	h.now = start.Add(3 * time.Hour)
	h.script([]step{
		{ann, "dep finish PAY-1 in qa", []string{"PAY-1 is done."}},
		{ann, "dobro PAY-2 to qa", []string{"PAY-2> in qa"}},
		{ann, "dep start PAY-2 in qa", []string{"Deploy of PAY-2 started."}},
		{ann, "cancel PAY-2 in qa it broke the login", []string{"PAY-2 is cancelled."}},
	})
	seq, hash := auditHead(t, h)
	got := reply(h.say(bob, "report qa last 7d"))
	for _, want := range []string{
		"qa                       this period            the one before\n",
		"deploys                  1 (0.1/day, 1.0/week)  0 (0.0/day, 0.0/week)\n",
		"lead time p50/p90        3h / 3h (1)            – (0)\n",
		"change failure rate      50% (1 of 2)           – (0)\n",
		"time to restore p50/p90  – (0; 1 open)          – (0)\n",
		"failures                 0 start hook, 0 finish hook, 1 cancelled (0 rolled back)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report qa: the reply lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "production") {
		t.Errorf("report qa names production:\n%s", got)
	}
	if got, want := reply(h.say(bob, "report staging")), `"staging" is not an environment: qa, production.`; got != want {
		t.Errorf("report staging: %q, want %q", got, want)
	}
	if s, hh := auditHead(t, h); s != seq || hh != hash {
		t.Errorf("the audit head moved from %d %s to %d %s", seq, hash, s, hh)
	}
}
