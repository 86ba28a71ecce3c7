package commands

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// VerbReport asks for the DORA report (report.go, docs/reports.md).
const VerbReport Verb = "report"

// The report's periods.
const (
	defaultReportDays = 30
	maxReportDays     = 366
	reportDay         = 24 * time.Hour
)

// parseReport reads report's words: [ENV | in ENV] [last Nd | since DATE
// [until DATE]]. The environment goes to Env, the period, normalised, to
// Text; ReportPeriod resolves it against the clock. With envs, ENV must be
// one of them; without, any environment name (the log may name
// environments no longer configured, and the command line has no
// configuration).
func parseReport(args []string, envs []string) (Command, error) {
	c := Command{Verb: VerbReport}
	const how = "report [ENV] [last 7d | last 30d | last 90d | since 2026-11-01 [until 2026-12-01]]"
	if len(args) > 0 && !isPeriodWord(args[0]) {
		word := args[0]
		if strings.EqualFold(word, "in") {
			if len(args) < 2 {
				return Command{}, Errorf(EINVALID, "report needs an environment after in: %s.", how)
			}
			word, args = args[1], args[1:]
		}
		env := strings.ToLower(word)
		switch {
		case len(envs) > 0 && !slices.Contains(envs, env):
			return Command{}, Errorf(EINVALID, "%s is not an environment: %s%s.", quoteArg(word), strings.Join(envs, ", "), didYouMean(env, envs, " (did you mean %s?)"))
		case !ValidEnv(env):
			return Command{}, Errorf(EINVALID, "%s is neither an environment nor a period: %s.", quoteArg(word), how)
		}
		c.Env, args = env, args[1:]
	}
	switch {
	case len(args) == 0:
	case strings.EqualFold(args[0], "last"):
		if len(args) != 2 {
			return Command{}, Errorf(EINVALID, "last takes a number of days, like last 30d, and nothing after: %s.", how)
		}
		n, ok := days(args[1])
		if !ok {
			return Command{}, Errorf(EINVALID, "%s is not a number of days from 1d to %dd: %s.", quoteArg(args[1]), maxReportDays, how)
		}
		c.Text = fmt.Sprintf("last %dd", n)
	case strings.EqualFold(args[0], "since"):
		if len(args) != 2 && (len(args) != 4 || !strings.EqualFold(args[2], "until")) {
			return Command{}, Errorf(EINVALID, "since takes a date, then maybe until and a date: %s.", how)
		}
		var since, until time.Time
		var err error
		if since, err = reportDate(args[1]); err != nil {
			return Command{}, err
		}
		c.Text = "since " + args[1]
		if len(args) == 4 {
			if until, err = reportDate(args[3]); err != nil {
				return Command{}, err
			}
			if err := checkSpan(since, until); err != nil {
				return Command{}, err
			}
			c.Text += " until " + args[3]
		}
	default:
		return Command{}, Errorf(EINVALID, "%s is not a period: %s.", quoteArg(args[0]), how)
	}
	return c, nil
}

func isPeriodWord(w string) bool {
	return strings.EqualFold(w, "last") || strings.EqualFold(w, "since") || strings.EqualFold(w, "until")
}

// days reads "30d" (or "30") as a number of days in 1..maxReportDays.
func days(s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.ToLower(s), "d"))
	return n, err == nil && n >= 1 && n <= maxReportDays
}

// reportDate reads a day (2026-11-01, midnight UTC) or an RFC 3339 time.
func reportDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, Errorf(EINVALID, "%s is not a date: write 2026-11-01 or 2026-11-01T14:30:00Z.", quoteArg(s))
}

func checkSpan(since, until time.Time) error {
	switch {
	case !since.Before(until):
		return Errorf(EINVALID, "The period must start before it ends (since %s until %s).", since.Format(time.RFC3339), until.Format(time.RFC3339))
	case until.Sub(since) > maxReportDays*reportDay:
		return Errorf(EINVALID, "A report covers at most %d days; that period has %.0f.", maxReportDays, until.Sub(since).Hours()/24)
	}
	return nil
}

// ReportPeriod resolves the period of a parsed report command at now: last
// N days up to now, or since … until … (until now when it names none).
func ReportPeriod(c Command, now time.Time) (Period, error) {
	now = now.UTC()
	f := strings.Fields(c.Text)
	switch {
	case len(f) == 0:
		return Period{Since: now.Add(-defaultReportDays * reportDay), Until: now}, nil
	case f[0] == "last" && len(f) == 2:
		if n, ok := days(f[1]); ok {
			return Period{Since: now.Add(-time.Duration(n) * reportDay), Until: now}, nil
		}
	case f[0] == "since" && (len(f) == 2 || len(f) == 4):
		since, err := reportDate(f[1])
		if err != nil {
			return Period{}, err
		}
		if since.After(now) {
			return Period{}, Errorf(EINVALID, "That period starts in the future (%s).", since.Format(time.RFC3339))
		}
		until := now
		if len(f) == 4 {
			if until, err = reportDate(f[3]); err != nil {
				return Period{}, err
			}
		}
		if err := checkSpan(since, until); err != nil {
			return Period{}, err
		}
		return Period{Since: since, Until: until}, nil
	}
	return Period{}, Errorf(EINVALID, "%s is not a period.", quoteArg(c.Text))
}

// AuditReader is what a report reads: Store.Audit, or the same stream from
// elsewhere (a running bot's admin socket).
type AuditReader interface {
	Audit(ctx context.Context, f AuditFilter, fn func(AuditEntry) error) error
}

// ComputeReport reads the entries a report of p needs, from p.ReadFrom() to
// its end, and returns the report of env ("" for every environment). It
// only reads.
func ComputeReport(ctx context.Context, src AuditReader, p Period, env string) (Report, error) {
	b := NewReportBuilder(p, env)
	err := src.Audit(ctx, AuditFilter{Since: p.ReadFrom(), Until: p.Until, Actions: ReportActions}, func(e AuditEntry) error {
		b.Add(e)
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("read the audit log for the report: %w", err)
	}
	return b.Report(), nil
}

// prepareReport computes the report a report command asks for, before its
// transaction: the walk of the log is a read of its own (Store.Audit), and
// a transaction that waits for it would hold up every other command.
func (s *Service) prepareReport(ctx context.Context, c Command) (Text, error) {
	p, err := ReportPeriod(c, s.now())
	if err != nil {
		return nil, err
	}
	rep, err := ComputeReport(ctx, s.cfg.Store, p, c.Env)
	if err != nil {
		return nil, err
	}
	return ReportText(rep, c.Env), nil
}

// report answers with the report prepare computed.
func (r *cmdRun) report() error {
	if r.pre.reportErr != nil {
		if _, ok := r.pre.reportErr.(*Error); ok {
			return r.pre.reportErr
		}
		r.s.cfg.Log.Error().Err(r.pre.reportErr).Msg("report failed")
		return Errorf(EUNAVAILABLE, "Could not read the audit log for the report: try again.")
	}
	r.reply(r.pre.report)
	return nil
}
