package commands

import (
	"slices"
	"time"
)

// The DORA figures (issue 18), computed from the audit log alone by a
// ReportBuilder fed entries in seq order: the same code serves the report
// verb, dobrobot report and, later, /metrics. docs/reports.md defines each
// figure exactly as computed here.

// Period is a span of time [Since, Until).
type Period struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// Contains reports whether t is in p.
func (p Period) Contains(t time.Time) bool { return !t.Before(p.Since) && t.Before(p.Until) }

// Previous returns the period of the same length that ends where p starts.
func (p Period) Previous() Period {
	return Period{Since: p.Since.Add(-p.Until.Sub(p.Since)), Until: p.Since}
}

// LeadLookback is how far before the previous period a report reads the
// audit log, to find the requests of the releases done in its periods: a
// release requested longer ago than that has no known lead time.
const LeadLookback = 30 * 24 * time.Hour

// ReadFrom returns the first moment whose entries a report of p needs.
func (p Period) ReadFrom() time.Time { return p.Previous().Since.Add(-LeadLookback) }

// Figures are the four keys of one environment over one period.
type Figures struct {
	Period Period `json:"period"`
	// Deploys is the number of releases done in the period; PerBucket
	// splits them by Bucket from Period.Since (the last bucket may be
	// shorter).
	Deploys   int           `json:"deploys"`
	Bucket    time.Duration `json:"bucket"`
	PerBucket []int         `json:"per_bucket"`
	Lead      Durations     `json:"lead_time"`
	// LeadUnknown counts releases done in the period whose request is
	// older than what was read: they are not in Lead.
	LeadUnknown int `json:"lead_time_unknown"`
	// Ended counts the releases whose deployment ended in the period: done,
	// or cancelled after dep start. Failed counts those of them that
	// failed (StartFailed, HookFailed, Cancelled, RolledBack, Incidents:
	// one release may count in several). RolledBack counts the cancels that
	// ran a cancel hook and the done releases a rollback replaced later, in
	// the period they were done in; Incidents the done releases marked with
	// incident, likewise.
	Ended       int `json:"ended"`
	Failed      int `json:"failed"`
	StartFailed int `json:"start_failed"`
	HookFailed  int `json:"hook_failed"`
	Cancelled   int `json:"cancelled_after_start"`
	RolledBack  int `json:"rolled_back"`
	Incidents   int `json:"incidents"`
	// Restore holds the time to restore of each failure of the period
	// restored before the period ends; Unrestored counts the others.
	Restore    Durations `json:"time_to_restore"`
	Unrestored int       `json:"unrestored"`
}

// FailureRate returns Failed / Ended, and false when nothing ended.
func (f Figures) FailureRate() (float64, bool) {
	if f.Ended == 0 {
		return 0, false
	}
	return float64(f.Failed) / float64(f.Ended), true
}

// PerWeek returns the deploys per 7 days of the period.
func (f Figures) PerWeek() float64 {
	d := f.Period.Until.Sub(f.Period.Since)
	if d <= 0 {
		return 0
	}
	return float64(f.Deploys) * float64(7*24*time.Hour) / float64(d)
}

// Durations summarises a set of durations: how many, the median and the
// 90th percentile by nearest rank (an observed value each; zero when N is 0).
type Durations struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50"`
	P90 time.Duration `json:"p90"`
}

// summarise returns the Durations of ds, which it sorts.
func summarise(ds []time.Duration) Durations {
	if len(ds) == 0 {
		return Durations{}
	}
	slices.Sort(ds)
	return Durations{N: len(ds), P50: nearestRank(ds, 50), P90: nearestRank(ds, 90)}
}

// nearestRank is the p-th percentile of sorted ds: the value at rank
// ceil(p/100 × n), counted from 1.
func nearestRank(ds []time.Duration, p int) time.Duration {
	rank := (p*len(ds) + 99) / 100
	return ds[max(rank, 1)-1]
}

// EnvReport is one environment's figures for a period and the one before it.
type EnvReport struct {
	Env      string  `json:"env"`
	Current  Figures `json:"current"`
	Previous Figures `json:"previous"`
}

// Report is the DORA report of every environment seen, by name.
type Report struct {
	Period Period      `json:"period"`
	Envs   []EnvReport `json:"envs"`
}
