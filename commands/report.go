package commands

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// ReportBuilder computes a Report from audit entries given in seq order
// (Add), as read from Period.ReadFrom() to the period's end; entries outside
// that span are harmless. Its memory holds the releases still open, the
// failures not yet restored and the durations of the two periods: not the
// log.
type ReportBuilder struct {
	period, prev Period
	only         string // the one environment to report, "" for all
	rels         map[relKey]*relTrack
	envs         map[string]*envTrack
	// finished is each release done so far, by ticket and environment:
	// a rollback that replaces it later makes that deployment a failure.
	finished map[relKey]finishedTrack
}

// finishedTrack is a done release: when, and whether it counted as failed.
type finishedTrack struct {
	at     time.Time
	failed bool
}

type relKey struct{ ticket, env string }

// relTrack is what the builder knows of one release so far.
type relTrack struct {
	requested  time.Time // zero: its request was not read
	comps      []string
	failedAt   time.Time // its first failure, zero while none
	startFail  bool
	hookFail   bool
	cancelled  bool
	rolledBack bool
}

// envTrack accumulates one environment's figures.
type envTrack struct {
	figs    [2]Figures // current, previous
	lead    [2][]time.Duration
	restore [2][]time.Duration
	pending []*failure // failures not yet restored, oldest first
}

// failure is a failed release waiting for every one of its components to be
// deployed again in its environment.
type failure struct {
	at    time.Time
	left  []string // components not yet deployed since
	which int      // the period it counts in: 0 current, 1 previous
}

// NewReportBuilder returns a builder of the report of period p (and of the
// period before it), for environment env or, with env "", every
// environment the entries name. bucket is the sparkline's step.
func NewReportBuilder(p Period, env string) *ReportBuilder {
	return &ReportBuilder{period: p, prev: p.Previous(), only: env, rels: map[relKey]*relTrack{}, envs: map[string]*envTrack{},
		finished: map[relKey]finishedTrack{}}
}

// Bucket returns the sparkline step of a period: a day for one shorter than
// 28 days, else a week.
func Bucket(p Period) time.Duration {
	if p.Until.Sub(p.Since) < 28*24*time.Hour {
		return 24 * time.Hour
	}
	return 7 * 24 * time.Hour
}

// which returns the period t is in: 0 current, 1 previous, -1 neither.
func (b *ReportBuilder) which(t time.Time) int {
	switch {
	case b.period.Contains(t):
		return 0
	case b.prev.Contains(t):
		return 1
	}
	return -1
}

func (b *ReportBuilder) env(name string) *envTrack {
	et := b.envs[name]
	if et == nil {
		et = &envTrack{}
		for i, p := range []Period{b.period, b.prev} {
			step := Bucket(p)
			n := int((p.Until.Sub(p.Since) + step - 1) / step)
			et.figs[i] = Figures{Period: p, Bucket: step, PerBucket: make([]int, n)}
		}
		b.envs[name] = et
	}
	return et
}

// ReportActions are the actions a report counts; Add ignores every other,
// so that its figures are the same whether the store filters by action
// (ComputeReport asks it to: the walk then skips the others undecoded) or
// not (the admin socket's export).
var ReportActions = []Action{ActionRequest, ActionStart, ActionFail, ActionHookFailed, ActionFinish, ActionCancel, ActionReject,
	ActionRolledBack, ActionIncident}

// Add feeds the next audit entry.
func (b *ReportBuilder) Add(e AuditEntry) {
	if e.Ticket == "" || !slices.Contains(ReportActions, e.Action) {
		return
	}
	env := e.Env
	if env == "" {
		env = DefaultEnv
	}
	if b.only != "" && env != b.only {
		return
	}
	if b.which(e.Time) >= 0 {
		b.env(env) // an environment active in either period is reported, even with nothing done
	}
	k := relKey{e.Ticket, env}
	if e.Action == ActionRolledBack || e.Action == ActionIncident {
		b.rolledBack(env, k, e)
		return
	}
	rel := b.rels[k]
	switch {
	case e.Action == ActionRequest:
		rel = &relTrack{requested: e.Time, comps: listAfter(e.Detail, "components: ")}
		b.rels[k] = rel
		return
	case rel == nil && !e.From.Open():
		return // after its end (a cancel hook's result, an unlock), or before the read
	case rel == nil:
		rel = &relTrack{}
		b.rels[k] = rel
	}
	switch e.Action {
	case ActionStart:
		if len(rel.comps) == 0 {
			rel.comps = listAfter(e.Detail, "locks: ")
		}
	case ActionFail:
		rel.startFail = true
		b.failed(env, rel, e.Time)
	case ActionHookFailed:
		rel.hookFail = true
		b.failed(env, rel, e.Time)
	case ActionFinish:
		b.done(env, rel, e.Time)
		b.finished[k] = finishedTrack{at: e.Time, failed: !rel.failedAt.IsZero()}
		delete(b.rels, k)
	case ActionCancel:
		if e.From.HoldsLocks() {
			rel.cancelled = true
			rel.rolledBack = strings.Contains(e.Detail, cancelHookWords)
			b.failed(env, rel, e.Time)
			b.ended(env, rel, e.Time)
		}
		delete(b.rels, k)
	case ActionReject:
		delete(b.rels, k)
	}
}

// rolledBack records a rollback of the done release k (entry e, detail
// "COMPONENT: rolled back to …") or an incident mark of it (detail
// "components: a,b; note: …"): that deployment failed, counted in the
// period it was done in, and from the rollback or the mark its components
// wait to be deployed again (the time to restore). A release done before
// what was read counts nowhere but its restore. A release marked twice (or
// rolled back and marked) is one failure, counted under each cause.
func (b *ReportBuilder) rolledBack(env string, k relKey, e AuditEntry) {
	if d, ok := b.finished[k]; ok {
		if w := b.which(d.at); w >= 0 {
			f := &b.env(env).figs[w]
			if e.Action == ActionIncident {
				f.Incidents++
			} else {
				f.RolledBack++
			}
			if !d.failed {
				f.Failed++
			}
		}
		d.failed = true
		b.finished[k] = d
	}
	if w := b.which(e.Time); w >= 0 {
		var left []string
		if e.Action == ActionIncident {
			left = listAfter(e.Detail, incidentDetail)
		} else {
			comp, _, _ := strings.Cut(e.Detail, ":")
			left = []string{strings.TrimSpace(comp)}
		}
		et := b.env(env)
		et.pending = append(et.pending, &failure{at: e.Time, left: left, which: w})
	}
}

// listAfter reads the comma-separated list that follows prefix at the start
// of an audit detail, up to its first "; ".
func listAfter(detail, prefix string) []string {
	rest, ok := strings.CutPrefix(detail, prefix)
	if !ok {
		return nil
	}
	rest, _, _ = strings.Cut(rest, "; ")
	var out []string
	for _, c := range strings.Split(rest, ",") {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// failed records rel's first failure, at t: from then on its environment
// waits for each of its components to be deployed again.
func (b *ReportBuilder) failed(env string, rel *relTrack, t time.Time) {
	if !rel.failedAt.IsZero() {
		return
	}
	rel.failedAt = t
	w := b.which(t)
	if w < 0 {
		return
	}
	et := b.env(env)
	et.pending = append(et.pending, &failure{at: t, left: slices.Clone(rel.comps), which: w})
}

// ended counts rel's deployment as ended at t, failed or not.
func (b *ReportBuilder) ended(env string, rel *relTrack, t time.Time) {
	w := b.which(t)
	if w < 0 {
		return
	}
	f := &b.env(env).figs[w]
	f.Ended++
	if rel.failedAt.IsZero() {
		return
	}
	f.Failed++
	if rel.startFail {
		f.StartFailed++
	}
	if rel.hookFail {
		f.HookFailed++
	}
	if rel.cancelled {
		f.Cancelled++
	}
	if rel.rolledBack {
		f.RolledBack++
	}
}

// done records rel as done at t: a deploy, its lead time, the end of its
// deployment, and the restore of the failures its components wait for.
func (b *ReportBuilder) done(env string, rel *relTrack, t time.Time) {
	b.ended(env, rel, t)
	et := b.envs[env]
	if w := b.which(t); w >= 0 {
		et = b.env(env)
		f := &et.figs[w]
		f.Deploys++
		if i := int(t.Sub(f.Period.Since) / f.Bucket); i < len(f.PerBucket) {
			f.PerBucket[i]++
		}
		if rel.requested.IsZero() {
			f.LeadUnknown++
		} else {
			et.lead[w] = append(et.lead[w], t.Sub(rel.requested))
		}
	}
	if et == nil {
		return
	}
	kept := et.pending[:0]
	for _, fl := range et.pending {
		if t.Before(fl.at) {
			kept = append(kept, fl)
			continue
		}
		// A failure of a release without components waits for any
		// release done in the environment; one with components for each
		// of them to be done again.
		fl.left = slices.DeleteFunc(fl.left, func(c string) bool { return slices.Contains(rel.comps, c) })
		if len(fl.left) > 0 {
			kept = append(kept, fl)
			continue
		}
		if w := []Period{b.period, b.prev}[fl.which]; t.Before(w.Until) {
			et.restore[fl.which] = append(et.restore[fl.which], t.Sub(fl.at))
		} else {
			et.figs[fl.which].Unrestored++
		}
	}
	clear(et.pending[len(kept):])
	et.pending = kept
}

// Report returns the figures of every environment seen, by name. The
// builder may be fed more entries after.
func (b *ReportBuilder) Report() Report {
	names := make([]string, 0, len(b.envs))
	for n := range b.envs {
		names = append(names, n)
	}
	sort.Strings(names)
	out := Report{Period: b.period}
	for _, n := range names {
		et := b.envs[n]
		var figs [2]Figures
		for i := range figs {
			figs[i] = et.figs[i]
			figs[i].PerBucket = slices.Clone(et.figs[i].PerBucket)
			figs[i].Lead = summarise(slices.Clone(et.lead[i]))
			figs[i].Restore = summarise(slices.Clone(et.restore[i]))
		}
		for _, fl := range et.pending {
			figs[fl.which].Unrestored++
		}
		out.Envs = append(out.Envs, EnvReport{Env: n, Current: figs[0], Previous: figs[1]})
	}
	return out
}
