package commands

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// FreezeWindow is a configured freeze window (SPEC "Reminders, freezes and
// expiry"): recurring, when Cron is set (its starts, each Duration long),
// else one-off, from From until Until. It holds dep start of the releases
// of its environments and components; only its next boundary is stored, as
// a due time, and firing one stores the one after.
type FreezeWindow struct {
	Name string
	// Cron gives the starts of a recurring window, in the window's own
	// zone (cron.WithLocation or CRON_TZ): cron's rules decide the DST days.
	Cron     cron.Schedule
	Duration time.Duration
	// From and Until bound a one-off window (Cron nil).
	From, Until time.Time
	// Envs and Components are what the window holds; empty: all.
	Envs       []string
	Components []string
	Reason     string
	// Announce is how long before a start the channel is told; zero: not
	// ahead, only at the start.
	Announce time.Duration
}

// Due kinds of the freeze windows. They are about no release: their Due's
// Release is the window's ID (windowID).
const (
	// DueFreezeWindow is a window's next boundary. Its Repeat counts the
	// boundaries fired so far: even, the next is a start; odd, an end.
	DueFreezeWindow DueKind = "freeze-window"
	// DueFreezeAnnounce is the announcement Announce ahead of a start.
	DueFreezeAnnounce DueKind = "freeze-announce"
	// DueFreezeEnd ends a freeze set from chat (freeze … until T).
	DueFreezeEnd DueKind = "freeze-end"
)

// Actions of the freeze windows in the audit log; none changes a release.
const (
	ActionFreezeStart Action = "freeze-start"
	ActionFreezeEnd   Action = "freeze-end"
	ActionFreezeSoon  Action = "freeze-announce"
	ActionForce       Action = "force"
)

func init() {
	dueKinds[DueFreezeWindow] = dueKind{global: true, fire: (*firing).fireWindow}
	dueKinds[DueFreezeAnnounce] = dueKind{global: true, fire: (*firing).fireAnnounce}
	dueKinds[DueFreezeEnd] = dueKind{global: true, fire: (*firing).fireChatEnd}
}

// windowID is the key of a window's due times: a hash of its name, so that
// it stays the same across restarts and reorderings of the configuration.
// It keeps 63 bits: PostgreSQL keeps a release ID in a signed bigint and
// refuses a larger one.
func windowID(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64() & math.MaxInt64
}

// next returns the first occurrence of w that starts after t.
func (w FreezeWindow) next(t time.Time) (start, end time.Time, ok bool) {
	if w.Cron == nil {
		return w.From, w.Until, w.From.After(t)
	}
	start = w.Cron.Next(t)
	return start, start.Add(w.Duration), !start.IsZero()
}

// activeAt returns the occurrence of w that t falls in, if any: the first
// start after t-Duration, when it is not after t.
func (w FreezeWindow) activeAt(t time.Time) (start, end time.Time, ok bool) {
	if w.Cron == nil {
		return w.From, w.Until, !t.Before(w.From) && t.Before(w.Until)
	}
	start = w.Cron.Next(t.Add(-w.Duration))
	return start, start.Add(w.Duration), !start.IsZero() && !start.After(t)
}

// covers reports whether w holds a release of env with components comps: its
// environment is one of w's (or w names none) and w names no components or
// one of comps.
func (w FreezeWindow) covers(env string, comps []string) bool {
	if len(w.Envs) > 0 && !slices.Contains(w.Envs, env) {
		return false
	}
	if len(w.Components) == 0 || slices.Contains(w.Components, AllComponents) {
		return true
	}
	for _, c := range comps {
		if slices.Contains(w.Components, c) {
			return true
		}
	}
	return false
}

// where says where w holds, for people: "production", "qa and production",
// or "every environment", and the components when w names some.
func (w FreezeWindow) where() string {
	out := "every environment"
	if len(w.Envs) > 0 {
		out = strings.Join(w.Envs, ", ")
	}
	if len(w.Components) > 0 && !slices.Contains(w.Components, AllComponents) {
		out += " (" + strings.Join(w.Components, ", ") + ")"
	}
	return out
}

// window returns the configured window whose ID is id.
func (s *Service) window(id uint64) (FreezeWindow, bool) {
	for _, w := range s.cfg.Freezes {
		if windowID(w.Name) == id {
			return w, true
		}
	}
	return FreezeWindow{}, false
}

// planFreezes writes each configured window's next boundary (and
// announcement) at start-up, computed from the configuration and now. A
// window with an overdue record keeps it, so that an end missed while the
// bot was down fires once, now; the others are recomputed, which also
// applies a changed configuration. A record of a window no longer
// configured is dropped when it fires.
func (s *Service) planFreezes(ctx context.Context) error {
	if len(s.cfg.Freezes) == 0 {
		return nil
	}
	now := s.now()
	return s.cfg.Store.Update(ctx, func(tx Tx) error {
		overdue, err := tx.DueBefore(now, 0)
		if err != nil {
			return err
		}
		has := func(id uint64, kind DueKind) bool {
			return slices.ContainsFunc(overdue, func(d Due) bool { return d.Release == id && d.Kind == kind })
		}
		for _, w := range s.cfg.Freezes {
			id := windowID(w.Name)
			if !has(id, DueFreezeWindow) {
				if _, end, ok := w.activeAt(now); ok {
					err = tx.PutDue(Due{At: end, Kind: DueFreezeWindow, Release: id, Repeat: 1})
				} else if start, _, ok := w.next(now); ok {
					err = tx.PutDue(Due{At: start, Kind: DueFreezeWindow, Release: id})
				} else {
					err = tx.DeleteDue(id, DueFreezeWindow)
				}
				if err != nil {
					return err
				}
			}
			if !has(id, DueFreezeAnnounce) {
				if at, ok := w.nextAnnounce(now); ok {
					err = tx.PutDue(Due{At: at, Kind: DueFreezeAnnounce, Release: id})
				} else {
					err = tx.DeleteDue(id, DueFreezeAnnounce)
				}
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// nextAnnounce is the time of the first announcement of w after t: Announce
// before a start whose announcement is still ahead.
func (w FreezeWindow) nextAnnounce(t time.Time) (time.Time, bool) {
	if w.Announce <= 0 {
		return time.Time{}, false
	}
	after := t.Add(w.Announce)
	if w.Cron == nil {
		return w.From.Add(-w.Announce), w.From.After(after)
	}
	start, _, ok := w.next(after)
	return start.Add(-w.Announce), ok
}

// fireWindow fires a window's boundary d: a start tells the channel that
// the window holds (unless it already ended, after a long downtime), an end
// that it no longer does and the releases it held that they may start. It
// returns the boundary after.
func (f *firing) fireWindow(_ Release, d Due) (*Due, error) {
	w, ok := f.s.window(d.Release)
	if !ok {
		return nil, nil // no longer configured
	}
	if d.Repeat%2 == 0 { // a start
		end := d.At.Add(w.Duration)
		if w.Cron == nil {
			end = w.Until
		}
		if !end.After(f.now) {
			return f.nextStart(w, end, d.Repeat+2)
		}
		f.post(say("%v %s is frozen by %s until %s: %s.", Icon("snowflake"), w.where(), w.Name, f.s.whenText(end, f.now), orNone(w.Reason)))
		if err := f.auditWindow(ActionFreezeStart, w, "until "+end.UTC().Format(time.RFC3339)); err != nil {
			return nil, err
		}
		return &Due{At: end, Repeat: d.Repeat + 1}, nil
	}
	f.post(say("%v The %s freeze has ended: %s may deploy again.", Icon("sunny"), w.Name, w.where()))
	if err := f.auditWindow(ActionFreezeEnd, w, "ended"); err != nil {
		return nil, err
	}
	if err := f.tellWindowEnd(w.Envs, w.Components); err != nil {
		return nil, err
	}
	return f.nextStart(w, d.At, d.Repeat+1)
}

// nextStart is the record of w's first start after t (none for a one-off
// window), with repeat boundaries counted.
func (f *firing) nextStart(w FreezeWindow, t time.Time, repeat int) (*Due, error) {
	start, _, ok := w.next(t)
	if !ok {
		return nil, nil
	}
	return &Due{At: start, Repeat: repeat}, nil
}

// fireAnnounce tells the channel that a window starts soon, and returns the
// announcement of the start after.
func (f *firing) fireAnnounce(_ Release, d Due) (*Due, error) {
	w, ok := f.s.window(d.Release)
	if !ok || w.Announce <= 0 {
		return nil, nil
	}
	start := d.At.Add(w.Announce)
	end := start.Add(w.Duration)
	if w.Cron == nil {
		end = w.Until
	}
	if start.After(f.now) { // not when the start itself is already past
		f.post(say("%v %s will be frozen by %s from %s until %s: %s.", Icon("hourglass_flowing_sand"), w.where(), w.Name, f.s.whenText(start, f.now), f.s.whenText(end, f.now), orNone(w.Reason)))
		if err := f.auditWindow(ActionFreezeSoon, w, "starts "+start.UTC().Format(time.RFC3339)); err != nil {
			return nil, err
		}
	}
	if at, ok := w.nextAnnounce(start); ok {
		return &Due{At: at}, nil
	}
	return nil, nil
}

// auditWindow audits what the scheduler did with window w.
func (f *firing) auditWindow(a Action, w FreezeWindow, detail string) error {
	env := "" // an entry names one environment: a window of several says them in its detail
	if len(w.Envs) == 1 {
		env = w.Envs[0]
	} else if len(w.Envs) > 1 {
		detail += " in " + strings.Join(w.Envs, ", ")
	}
	_, err := f.tx.AppendAudit(AuditEntry{Time: f.now, Actor: ActorDobrobot, Action: a, Env: env,
		Detail: fmt.Sprintf("%s: %s", w.Name, detail), Via: f.source()})
	return err
}

// post says text in the release channel, as a message of its own.
func (r *cmdRun) post(text Text) {
	r.effects = append(r.effects, Effect{Kind: EffectPost, Text: text})
}

// tellWindowEnd tells the releases a window of envs (none: every one) and
// comps (none: all) held that they may start, in queue order (tellNext).
func (r *cmdRun) tellWindowEnd(envs, comps []string) error {
	freed := comps
	if len(comps) == 0 || slices.Contains(comps, AllComponents) {
		freed = append(r.lockable(), AllComponents)
	}
	if len(envs) == 0 {
		return r.tellNext("", freed)
	}
	for _, e := range envs {
		if err := r.tellNext(e, freed); err != nil {
			return err
		}
	}
	return nil
}
