package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/cmd/internal/adminsock"
	"github.com/dobrobot/dobrobot/commands"
)

// ReportCmd prints the DORA report of the audit log (docs/reports.md): the
// same figures as report in chat, computed by the same code.
type ReportCmd struct {
	Format string   `help:"text (as in chat), json or csv (one row per environment and period)." enum:"text,json,csv" default:"text"`
	DB     string   `help:"Database file (default: the config's storage.path, or the demo's)." placeholder:"FILE"`
	Args   []string `arg:"" optional:"" help:"As in chat: [ENV] [last Nd | since DATE [until DATE]]; last 30d by default."`
}

// Run reads the audit log, through the running bot when it holds the
// database, and prints the report. It writes nothing.
func (cmd ReportCmd) Run(ctx context.Context, a *app) error {
	c, err := commands.Parse(strings.TrimSpace("report " + strings.Join(cmd.Args, " ")))
	if err != nil {
		return usagef("%s", commands.ErrorMessage(err))
	}
	p, err := commands.ReportPeriod(c, time.Now())
	if err != nil {
		return usagef("%s", commands.ErrorMessage(err))
	}
	var src commands.AuditReader
	if pg, err := a.postgresSource(ctx, cmd.DB); pg != nil || err != nil {
		if err != nil {
			return err
		}
		defer pg.Close()
		src = pg
	} else {
		s, err := a.openSource(cmd.DB)
		if err != nil {
			return err
		}
		defer s.Close()
		src = s.db
		if s.admin != nil {
			src = adminAudit{s.admin}
		}
	}
	rep, err := commands.ComputeReport(ctx, src, p, c.Env)
	if err != nil {
		return err
	}
	return writeReport(a.stdout, rep, c.Env, cmd.Format)
}

// adminAudit reads the audit log of a running bot through its admin socket:
// the export's JSON lines, decoded again.
type adminAudit struct{ c *adminsock.Client }

// Audit calls fn for each entry the running bot exports for f.
func (s adminAudit) Audit(ctx context.Context, f commands.AuditFilter, fn func(commands.AuditEntry) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.c.Export(ctx, f, "jsonl", pw)) }()
	defer pr.Close()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e commands.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("an exported audit entry: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return sc.Err()
}

// reportRow is one environment's figures over one period, for json and csv:
// durations in seconds.
type reportRow struct {
	Env                 string    `json:"env"`
	Period              string    `json:"period"` // current or previous
	Since               time.Time `json:"since"`
	Until               time.Time `json:"until"`
	Deploys             int       `json:"deploys"`
	DeploysPerDay       float64   `json:"deploys_per_day"`
	DeploysPerWeek      float64   `json:"deploys_per_week"`
	BucketDays          int       `json:"bucket_days"`
	PerBucket           []int     `json:"deploys_per_bucket"`
	LeadN               int       `json:"lead_time_n"`
	LeadP50             float64   `json:"lead_time_p50_s"`
	LeadP90             float64   `json:"lead_time_p90_s"`
	LeadUnknown         int       `json:"lead_time_unknown"`
	Ended               int       `json:"ended"`
	Failed              int       `json:"failed"`
	FailureRate         *float64  `json:"change_failure_rate"` // null when nothing ended
	StartFailed         int       `json:"start_failed"`
	HookFailed          int       `json:"hook_failed"`
	CancelledAfterStart int       `json:"cancelled_after_start"`
	RolledBack          int       `json:"rolled_back"`
	RestoreN            int       `json:"time_to_restore_n"`
	RestoreP50          float64   `json:"time_to_restore_p50_s"`
	RestoreP90          float64   `json:"time_to_restore_p90_s"`
	Unrestored          int       `json:"unrestored"`
	Incidents           int       `json:"incidents"` // done releases marked as an incident's cause (counted in failed)
}

var reportColumns = []string{"env", "period", "since", "until", "deploys", "deploys_per_day", "deploys_per_week", "bucket_days", "deploys_per_bucket",
	"lead_time_n", "lead_time_p50_s", "lead_time_p90_s", "lead_time_unknown", "ended", "failed", "change_failure_rate",
	"start_failed", "hook_failed", "cancelled_after_start", "rolled_back", "time_to_restore_n", "time_to_restore_p50_s",
	"time_to_restore_p90_s", "unrestored", "incidents"} // new columns go last: scripts read CSV by position

func rowOf(env, period string, f commands.Figures) reportRow {
	r := reportRow{
		Env: env, Period: period, Since: f.Period.Since, Until: f.Period.Until, Deploys: f.Deploys,
		DeploysPerDay: f.PerWeek() / 7, DeploysPerWeek: f.PerWeek(), BucketDays: int(f.Bucket / (24 * time.Hour)), PerBucket: f.PerBucket,
		LeadN: f.Lead.N, LeadP50: f.Lead.P50.Seconds(), LeadP90: f.Lead.P90.Seconds(), LeadUnknown: f.LeadUnknown,
		Ended: f.Ended, Failed: f.Failed, StartFailed: f.StartFailed, HookFailed: f.HookFailed,
		CancelledAfterStart: f.Cancelled, RolledBack: f.RolledBack,
		RestoreN: f.Restore.N, RestoreP50: f.Restore.P50.Seconds(), RestoreP90: f.Restore.P90.Seconds(), Unrestored: f.Unrestored,
		Incidents: f.Incidents,
	}
	if rate, ok := f.FailureRate(); ok {
		r.FailureRate = &rate
	}
	return r
}

func (r reportRow) record() []string {
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	rate := ""
	if r.FailureRate != nil {
		rate = num(*r.FailureRate)
	}
	buckets := make([]string, len(r.PerBucket))
	for i, n := range r.PerBucket {
		buckets[i] = strconv.Itoa(n)
	}
	return []string{r.Env, r.Period, r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339), strconv.Itoa(r.Deploys),
		num(r.DeploysPerDay), num(r.DeploysPerWeek), strconv.Itoa(r.BucketDays), strings.Join(buckets, " "), strconv.Itoa(r.LeadN),
		num(r.LeadP50), num(r.LeadP90), strconv.Itoa(r.LeadUnknown), strconv.Itoa(r.Ended), strconv.Itoa(r.Failed), rate,
		strconv.Itoa(r.StartFailed), strconv.Itoa(r.HookFailed), strconv.Itoa(r.CancelledAfterStart), strconv.Itoa(r.RolledBack),
		strconv.Itoa(r.RestoreN), num(r.RestoreP50), num(r.RestoreP90), strconv.Itoa(r.Unrestored), strconv.Itoa(r.Incidents)}
}

// writeReport writes rep in format: text as chat shows it (in the
// console's rendering), json as an array of rows, csv as a header and rows.
func writeReport(w io.Writer, rep commands.Report, env, format string) error {
	var rows []reportRow
	for _, er := range rep.Envs {
		rows = append(rows, rowOf(er.Env, "current", er.Current), rowOf(er.Env, "previous", er.Previous))
	}
	switch format {
	case "json":
		if rows == nil {
			rows = []reportRow{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write(reportColumns)
		for _, r := range rows {
			_ = cw.Write(r.record())
		}
		cw.Flush()
		return cw.Error()
	}
	_, err := io.WriteString(w, commands.ReportText(rep, env).String()+"\n")
	return err
}
