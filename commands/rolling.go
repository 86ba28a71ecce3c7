package commands

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// RollingFigures keeps the four keys of every environment over a window
// that ends now (the last 7 days, for /metrics), fed each audit entry as it
// is appended (Add) rather than read from the log at each look (Figures):
// what it holds is the open releases and the events of the window, not the
// log. The definitions are ReportBuilder's (docs/reports.md), for the
// current period of a report that ends at the look: deploys done in the
// window, the lead time of each, the deployments that ended in the window
// and the failed ones among them, and the time to restore of each failure
// of the window restored since. Safe for concurrent use.
type RollingFigures struct {
	mu       sync.Mutex
	window   time.Duration
	rels     map[relKey]*relTrack
	finished map[relKey]*ended
	envs     map[string]*rollingEnv
	seen     uint64 // the last seq fed: an entry up to it is not fed twice
}

// ended is a deployment that ended (done, or cancelled after start), as
// the window counts it.
type ended struct {
	at     time.Time
	key    relKey
	failed bool
	done   bool
	lead   time.Duration
	known  bool // lead is known: the request was seen
}

// rollingFailure is a failure waiting for its components to be deployed
// again, then its time to restore.
type rollingFailure struct {
	at       time.Time
	left     []string
	restored bool
	took     time.Duration
}

// rollingEnv is one environment's window: events oldest first, the counts
// over them, and the durations sorted for the medians.
type rollingEnv struct {
	ends     []*ended
	failures []*rollingFailure
	deploys  int
	pending  int // failures of the window not restored
	count    int // ended
	failed   int
	lead     []time.Duration // sorted
	restore  []time.Duration // sorted
}

// NewRollingFigures returns an empty window of the given length.
func NewRollingFigures(window time.Duration) *RollingFigures {
	return &RollingFigures{window: window, rels: map[relKey]*relTrack{}, finished: map[relKey]*ended{}, envs: map[string]*rollingEnv{}}
}

// RollingEnv is one environment's figures over the window ending at a look.
type RollingEnv struct {
	Env     string
	Deploys int
	// Lead is the lead time of the deploys whose request was seen.
	Lead Durations
	// Ended and Failed give the change failure rate.
	Ended, Failed int
	// Restore is the time to restore of the window's restored failures.
	Restore    Durations
	Unrestored int
}

func (r *RollingFigures) env(name string) *rollingEnv {
	et := r.envs[name]
	if et == nil {
		et = &rollingEnv{}
		r.envs[name] = et
	}
	return et
}

// insertSorted and removeSorted keep a sorted multiset of durations.
func insertSorted(ds []time.Duration, d time.Duration) []time.Duration {
	i, _ := slices.BinarySearch(ds, d)
	return slices.Insert(ds, i, d)
}

func removeSorted(ds []time.Duration, d time.Duration) []time.Duration {
	if i, ok := slices.BinarySearch(ds, d); ok {
		return slices.Delete(ds, i, i+1)
	}
	return ds
}

// Add feeds the next audit entry, in seq order; entries a report does not
// count are ignored. Its cost does not grow with the log: a map look-up and,
// for a done release, the sorted insert of its lead time.
func (r *RollingFigures) Add(e AuditEntry) {
	if e.Ticket == "" || !slices.Contains(ReportActions, e.Action) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Seq != 0 {
		if e.Seq <= r.seen {
			return
		}
		r.seen = e.Seq
	}
	env := e.Env
	if env == "" {
		env = DefaultEnv
	}
	k := relKey{e.Ticket, env}
	if e.Action == ActionRolledBack || e.Action == ActionIncident {
		// As the report (rolledBack): the deployment failed, and its
		// component (a rollback's) or components (an incident's) wait to be
		// deployed again from the mark.
		if d := r.finished[k]; d != nil && !d.failed {
			d.failed = true
			r.env(env).failed++
		}
		left := listAfter(e.Detail, incidentDetail)
		if e.Action == ActionRolledBack {
			comp, _, _ := strings.Cut(e.Detail, ":")
			left = []string{strings.TrimSpace(comp)}
		}
		et := r.env(env)
		et.failures = append(et.failures, &rollingFailure{at: e.Time, left: left})
		et.pending++
		return
	}
	rel := r.rels[k]
	switch {
	case e.Action == ActionRequest:
		r.rels[k] = &relTrack{requested: e.Time, comps: listAfter(e.Detail, "components: ")}
		return
	case rel == nil && !e.From.Open():
		return
	case rel == nil:
		rel = &relTrack{}
		r.rels[k] = rel
	}
	switch e.Action {
	case ActionStart:
		if len(rel.comps) == 0 {
			rel.comps = listAfter(e.Detail, "locks: ")
		}
	case ActionFail, ActionHookFailed:
		r.failedAt(env, rel, e.Time)
	case ActionFinish:
		d := r.end(env, rel, e.Time)
		d.done = true
		if d.known = !rel.requested.IsZero(); d.known {
			d.lead = e.Time.Sub(rel.requested)
		}
		et := r.env(env)
		et.deploys++
		if d.known {
			et.lead = insertSorted(et.lead, d.lead)
		}
		d.key = k
		r.finished[k] = d
		r.restored(et, rel.comps, e.Time)
		delete(r.rels, k)
	case ActionCancel:
		if e.From.HoldsLocks() {
			r.failedAt(env, rel, e.Time)
			r.end(env, rel, e.Time)
		}
		delete(r.rels, k)
	case ActionReject:
		delete(r.rels, k)
	}
}

func (r *RollingFigures) failedAt(env string, rel *relTrack, t time.Time) {
	if !rel.failedAt.IsZero() {
		return
	}
	rel.failedAt = t
	et := r.env(env)
	et.failures = append(et.failures, &rollingFailure{at: t, left: slices.Clone(rel.comps)})
	et.pending++
}

func (r *RollingFigures) end(env string, rel *relTrack, t time.Time) *ended {
	d := &ended{at: t, key: relKey{"", env}, failed: !rel.failedAt.IsZero()}
	et := r.env(env)
	et.ends = append(et.ends, d)
	et.count++
	if d.failed {
		et.failed++
	}
	return d
}

// restored applies a release done at t with components comps to the
// failures that wait: as ReportBuilder.done does.
func (r *RollingFigures) restored(et *rollingEnv, comps []string, t time.Time) {
	for _, fl := range et.failures {
		if fl.restored || t.Before(fl.at) {
			continue
		}
		fl.left = slices.DeleteFunc(fl.left, func(c string) bool { return slices.Contains(comps, c) })
		if len(fl.left) == 0 {
			fl.restored, fl.took = true, t.Sub(fl.at)
			et.pending--
			et.restore = insertSorted(et.restore, fl.took)
		}
	}
}

// expire drops what fell out of the window ending at now: each event once,
// so that over time a look costs what was added since, not the window.
func (r *RollingFigures) expire(et *rollingEnv, now time.Time) {
	since := now.Add(-r.window)
	i := 0
	for ; i < len(et.ends) && et.ends[i].at.Before(since); i++ {
		d := et.ends[i]
		et.count--
		if d.failed {
			et.failed--
		}
		if d.done {
			et.deploys--
			if d.known {
				et.lead = removeSorted(et.lead, d.lead)
			}
		}
		if r.finished[d.key] == d {
			delete(r.finished, d.key)
		}
	}
	// Re-sliced, not shifted: a look costs what expired, not the window;
	// append reallocates with the live events alone once the array fills.
	clear(et.ends[:i])
	et.ends = et.ends[i:]
	j := 0
	for ; j < len(et.failures) && et.failures[j].at.Before(since); j++ {
		if fl := et.failures[j]; fl.restored {
			et.restore = removeSorted(et.restore, fl.took)
		} else {
			et.pending--
		}
	}
	clear(et.failures[:j])
	et.failures = et.failures[j:]
}

// Figures returns every environment's figures over the window ending at
// now, by name.
func (r *RollingFigures) Figures(now time.Time) []RollingEnv {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RollingEnv, 0, len(r.envs))
	for name, et := range r.envs {
		r.expire(et, now)
		re := RollingEnv{Env: name, Deploys: et.deploys, Ended: et.count, Failed: et.failed,
			Lead: sortedSummary(et.lead), Restore: sortedSummary(et.restore), Unrestored: et.pending}
		out = append(out, re)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Env < out[j].Env })
	return out
}

// sortedSummary is summarise of durations already sorted.
func sortedSummary(ds []time.Duration) Durations {
	if len(ds) == 0 {
		return Durations{}
	}
	return Durations{N: len(ds), P50: nearestRank(ds, 50), P90: nearestRank(ds, 90)}
}
