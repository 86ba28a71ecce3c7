package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/commands/failpoint"
)

// ActorDobrobot is the audit actor of what the bot does by itself at a due
// time: reminders, and later expiries and freeze windows.
const ActorDobrobot = "dobrobot"

// ActionRemind records a reminder sent at a due time. It changes no state
// (From and To are StateNone), so the audit log's replay passes over it.
const ActionRemind Action = "remind"

const (
	// scheduleMaxSleep bounds one sleep of Schedule. A due time written
	// by this process wakes it at once; the bound only covers what could
	// not (a wall clock stepped by hand, a due written by another tool)
	// at the cost of one indexed read an hour.
	scheduleMaxSleep = time.Hour
	// scheduleRetry is the pause after a store error before Schedule
	// tries again.
	scheduleRetry = 5 * time.Second
	// fireBatch bounds the due times fired in one transaction: after a
	// long downtime thousands may be overdue, and each batch is a short
	// commit that commands queue behind.
	fireBatch = 64
)

// scheduler is the Service's state for Schedule: the channel through which
// a commit that wrote a due time wakes the sleeping goroutine.
type scheduler struct {
	wake chan struct{}
}

func (sc *scheduler) init() { sc.wake = make(chan struct{}, 1) }

// wakeSchedule tells Schedule, if it sleeps, to read the next due time
// again: a commit wrote one that may be earlier than the one it waits for.
// It never blocks; wakes that come while one is pending are merged.
func (s *Service) wakeSchedule() {
	select {
	case s.sched.wake <- struct{}{}:
	default:
	}
}

// dueKind is what the Service does with a Due of one kind.
type dueKind struct {
	// state is the release state the due time is about: a release that
	// leaves it loses the record in the same transaction (leave), and one
	// found in another state at firing time is not acted on.
	state State
	// more lists other states the due time is about, when it holds in
	// several (a claim turn: accepted without an admin, or claimed).
	more []State
	// sameVersion makes firing also require the release's version to be
	// the Guard's: for kinds that a change within the state makes moot.
	// Without it a change that keeps the state (the card's reference, an
	// approval of several) leaves the due time standing.
	sameVersion bool
	// needs lists the role lists, expanded before the firing transaction
	// (nothing is looked up inside one), that fire reads from firing.roles.
	needs func(p Policy) [][]string
	// fire acts on rel at the due time d, inside the firing transaction,
	// and returns the record to write next (nil: none, the record goes).
	fire func(f *firing, rel Release, d Due) (*Due, error)
	// anyOf lets the due time fire in any of the kind's states, not only
	// the Guard's: for one that outlives a move between them (an approval
	// expiry written at accept still holds once an admin claims).
	anyOf bool
	// global marks a kind about no release (the freeze windows): its
	// Due's Release is its own key, fire gets a zero Release, and no
	// guard is checked.
	global bool
}

// about reports whether the kind's due times are about a release in state s.
func (k dueKind) about(s State) bool { return s == k.state || slices.Contains(k.more, s) }

// dueKinds are the kinds this version knows; reminders.go adds its own.
var dueKinds = map[DueKind]dueKind{}

// firing is one transaction of Schedule's: the due times it fires share it.
type firing struct {
	*cmdRun
	roles map[string][]string // a role list's ID, expanded
	// weekly is the weekly report's text, computed before the
	// transaction when the batch holds its due time.
	weekly Text
}

// putDue writes d in r's transaction and wakes Schedule once it commits.
func (r *cmdRun) putDue(d Due) error {
	if err := r.tx.PutDue(d); err != nil {
		return err
	}
	r.after = append(r.after, r.s.wakeSchedule)
	return nil
}

// leave deletes the due times of rel that are about state from, which rel
// has just left in r's transaction: a reminder never outlives its cause.
func (r *cmdRun) leave(from State, rel Release) error {
	if rel.State == from {
		return nil
	}
	for kind, k := range dueKinds {
		if k.about(from) && !k.about(rel.State) && !k.global {
			if err := r.tx.DeleteDue(rel.ID, kind); err != nil {
				return err
			}
		}
	}
	return nil
}

// Schedule fires due times as they fall due until ctx ends. One goroutine
// runs it: it reads the earliest due time and sleeps on the clock until
// then, or until a commit writes an earlier one. Firing is a transaction,
// so each due time fires once; one overdue after a downtime fires once, at
// the start. On a Store several instances share, only the leader runs it,
// inside its term: its writes are fenced like every other.
func (s *Service) Schedule(ctx context.Context) {
	log := s.cfg.Log.With().Str("part", "scheduler").Logger()
	if err := s.planFreezes(ctx); err != nil && ctx.Err() == nil {
		log.Error().Err(err).Msg("could not plan the freeze windows; they are planned at the next start")
	}
	if err := s.planWeeklyReport(ctx); err != nil && ctx.Err() == nil {
		log.Error().Err(err).Msg("could not plan the weekly report; it is planned at the next start")
	}
	for {
		wait := scheduleMaxSleep
		next, ok, err := s.nextDue(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error().Err(err).Msg("could not read the next due time; trying again shortly")
			wait = scheduleRetry
		case ok:
			if w := next.At.Sub(s.now()); w > 0 {
				wait = min(wait, w)
				break
			}
			handled, unknown, err := s.fireDue(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				log.Error().Err(err).Msg("could not fire the due times; trying again shortly")
				wait = scheduleRetry
			case handled > 0 || unknown == 0:
				// More may be due; or what was due went meanwhile (a
				// command deleted it): read the next one again.
				continue
			}
			// Only kinds this version does not know are due: they wait for
			// a version that does, and one known behind them for the next
			// wake-up (a new due time, or the longest sleep).
		}
		ch, stop := s.clock.Timer(wait)
		select {
		case <-ctx.Done():
			stop()
			return
		case <-s.sched.wake:
			stop()
		case <-ch:
		}
	}
}

func (s *Service) nextDue(ctx context.Context) (d Due, ok bool, err error) {
	err = s.cfg.Store.View(ctx, func(tx Tx) error {
		d, ok, err = tx.NextDue()
		return err
	})
	return d, ok, err
}

// fireDue fires up to fireBatch due times in one transaction and returns
// how many it handled (fired, or dropped as moot) and how many it left
// because this version does not know their kind.
func (s *Service) fireDue(ctx context.Context) (handled, unknown int, err error) {
	now := s.now()
	var batch []Due
	if err := s.cfg.Store.View(ctx, func(tx Tx) (err error) {
		batch, err = tx.DueBefore(now, fireBatch)
		return err
	}); err != nil {
		return 0, 0, err
	}
	// Slow I/O first, outside the transaction: the people to tell.
	roles := map[string][]string{}
	for _, d := range batch {
		if k, ok := dueKinds[d.Kind]; ok && k.needs != nil {
			for _, list := range k.needs(s.cfg.Policy) {
				key := strings.Join(list, ",")
				if _, done := roles[key]; !done {
					roles[key] = s.expand(ctx, list)
				}
			}
		}
	}
	// And the weekly report, a read of the log of its own.
	var weekly Text
	if slices.ContainsFunc(batch, func(d Due) bool { return d.Kind == DueWeeklyReport }) && s.cfg.WeeklyReport != nil {
		if weekly, err = s.prepareWeeklyReport(ctx, now); err != nil {
			return 0, 0, err
		}
	}
	var after []func()
	err = s.cfg.Store.Update(ctx, func(tx Tx) error {
		handled, unknown = 0, 0
		f := &firing{cmdRun: &cmdRun{s: s, tx: tx, m: Message{User: ActorDobrobot}, now: now, src: SourceScheduler}, roles: roles, weekly: weekly}
		dues, err := tx.DueBefore(now, fireBatch)
		if err != nil {
			return err
		}
		for _, d := range dues {
			k, known := dueKinds[d.Kind]
			if !known {
				unknown++
				s.cfg.Log.Warn().Str("kind", string(d.Kind)).Uint64("release", d.Release).Msg("a due time of a kind this version does not know: left for one that does")
				continue
			}
			handled++
			next, err := f.fireOne(k, d)
			if err != nil {
				return fmt.Errorf("fire %s of release %d: %w", d.Kind, d.Release, err)
			}
			if next != nil {
				next.Kind, next.Release = d.Kind, d.Release
				err = tx.PutDue(*next)
			} else {
				err = tx.DeleteDue(d.Release, d.Kind)
			}
			if err != nil {
				return err
			}
		}
		after = f.after
		if err := f.flush(); err != nil {
			return err
		}
		if handled > 0 {
			failpoint.Hit(failpoint.BeforeDueCommit)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if handled > 0 {
		failpoint.Hit(failpoint.AfterDueCommitBeforeOutboxSend)
	}
	s.notify()
	for _, fn := range after {
		fn()
	}
	return handled, unknown, nil
}

// fireOne checks d's guard against its release and, when it holds, fires
// it. A due time whose release moved on, or is gone, is dropped.
func (f *firing) fireOne(k dueKind, d Due) (*Due, error) {
	if k.global {
		return k.fire(f, Release{}, d)
	}
	rel, err := f.tx.Release(d.Release)
	if ErrorCode(err) == ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if (rel.State != d.Guard.State && !k.anyOf) || !k.about(rel.State) || (k.sameVersion && rel.Version != d.Guard.Version) {
		return nil, nil
	}
	next, err := k.fire(f, rel, d)
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		// A kind's refusal is no reason to retry the others forever.
		f.s.cfg.Log.Warn().Err(err).Str("kind", string(d.Kind)).Str("ticket", rel.Ticket).Msg("a due time could not be acted on; dropped")
		return nil, nil
	}
	return next, err
}
