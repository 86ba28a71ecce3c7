package commands

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// DueWeeklyReport is the next posting of the weekly report (reports.weekly).
// It is about no release: its Due's Release is weeklyReportID.
const DueWeeklyReport DueKind = "weekly-report"

// ActionWeeklyReport records a posting of the weekly report. It changes no
// state (From and To are StateNone), so the audit log's replay passes over
// it, in this version and in older ones alike.
const ActionWeeklyReport Action = "weekly-report"

// weeklyReportID keys the weekly report's due time: one record, whatever
// the schedule, so that a changed cron replaces it rather than adding one.
const weeklyReportID = uint64(math.MaxInt64 - 18)

// weeklyReportDays is the period the weekly report covers: the same as
// report last 7d at the time it fires.
const weeklyReportDays = 7

func init() {
	dueKinds[DueWeeklyReport] = dueKind{global: true, fire: (*firing).fireWeeklyReport}
}

// planWeeklyReport writes the weekly report's next time at start-up, like
// planFreezes: an overdue record is kept, so that a report missed while
// the bot was down is posted once, now; otherwise the next time is
// computed from the schedule, which also applies a changed one. Without a
// schedule the record goes.
func (s *Service) planWeeklyReport(ctx context.Context) error {
	now := s.now()
	return s.cfg.Store.Update(ctx, func(tx Tx) error {
		if s.cfg.WeeklyReport == nil {
			return tx.DeleteDue(weeklyReportID, DueWeeklyReport)
		}
		overdue, err := tx.DueBefore(now, 0)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(overdue, func(d Due) bool { return d.Release == weeklyReportID && d.Kind == DueWeeklyReport }) {
			return nil
		}
		next := s.cfg.WeeklyReport.Next(now)
		if next.IsZero() {
			return tx.DeleteDue(weeklyReportID, DueWeeklyReport)
		}
		return tx.PutDue(Due{At: next, Kind: DueWeeklyReport, Release: weeklyReportID})
	})
}

// weeklyPeriod is the period the weekly report fired at now covers.
func weeklyPeriod(now time.Time) Period {
	now = now.UTC()
	return Period{Since: now.Add(-weeklyReportDays * reportDay), Until: now}
}

// prepareWeeklyReport computes the weekly report's text for a firing at
// now, before the firing's transaction: the walk of the log is a read of
// its own, and the write transaction that every command queues behind must
// not wait for it.
func (s *Service) prepareWeeklyReport(ctx context.Context, now time.Time) (Text, error) {
	rep, err := ComputeReport(ctx, s.cfg.Store, weeklyPeriod(now), "")
	if err != nil {
		return nil, err
	}
	return ReportText(rep, ""), nil
}

// fireWeeklyReport posts the report prepared before the transaction and
// audits it, and returns the next time. A schedule no longer configured
// drops the record.
func (f *firing) fireWeeklyReport(_ Release, d Due) (*Due, error) {
	if f.s.cfg.WeeklyReport == nil {
		return nil, nil
	}
	if f.weekly == nil {
		return nil, fmt.Errorf("the weekly report was not prepared")
	}
	f.post(f.weekly)
	p := weeklyPeriod(f.now)
	if _, err := f.tx.AppendAudit(AuditEntry{Time: f.now, Actor: ActorDobrobot, Action: ActionWeeklyReport,
		Detail: fmt.Sprintf("report last %dd (%s until %s), due %s", weeklyReportDays, p.Since.Format(time.RFC3339), p.Until.Format(time.RFC3339), d.At.UTC().Format(time.RFC3339)),
		Via:    f.source()}); err != nil {
		return nil, err
	}
	// The next time after now, not after d.At: after a long downtime
	// the missed weeks are one report, not one each.
	next := f.s.cfg.WeeklyReport.Next(f.now)
	if next.IsZero() {
		return nil, nil
	}
	return &Due{At: next}, nil
}
