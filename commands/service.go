package commands

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands/failpoint"
)

// Service runs commands: it parses a Message, authorises the actor, looks the
// ticket up, applies the transition in one Store transaction together with its
// audit entries and outbox effects, and runs hooks after the commit. Build it
// with NewService.
type Service struct {
	// cfg is what the Service was built with. It is private so that nothing
	// changes it once NewService has returned.
	cfg Config

	hooks sync.WaitGroup
	// held holds the hook results that could not be committed yet, by
	// attempt, while they are retried (hookresult.go).
	held sync.Map
	// own holds the hook attempts this Service created and has not
	// recorded a result of: Recover, which runs while the first commands
	// after a start are handled, must not take them for interrupted ones.
	own sync.Map
	// handling holds the event IDs a Handle of this Service is carrying
	// out: the same event found pending meanwhile (HandlePending, Recover)
	// is left to it.
	handling sync.Map
	// recovered is set once Recover has reported the interrupted hooks:
	// HandlePending waits for it, so that a pending command does not meet
	// a hook that a previous run left "running".
	recovered atomic.Bool

	alertMu   sync.Mutex
	lastAlert time.Time

	// deploys is the usual deploy's length that queue estimates turns with
	// (handoff.go), kept for a while rather than read at every queue.
	deploys deployEstimate

	// envNames are the configured environments' names, nil when the
	// configuration names none (ParseIn).
	envNames []string

	// inbox commits the messages of concurrent Receive calls together.
	inbox GroupCommit[Message, received]

	// clock is the Service's time (Config.Clock, or its fallback).
	clock Clock
	// sched is the scheduler's state (schedule.go).
	sched scheduler
}

// Config is what a Service is built from: its ports (the Store, the
// Tracker, the optional Commenter, Groups and Hooks) and its settings. Only
// Store and Tracker are required.
type Config struct {
	Store   Store
	Tracker Tracker
	// Commenter, if set, writes a comment on the ticket after the phases in
	// CommentOn (tracker.comment_on); nil means no comments.
	Commenter Commenter
	Hooks     Hooks
	Groups    Groups // nil: user-group IDs in the policy match nobody
	Policy    Policy
	Now       func() time.Time // Clock's fallback for now (see Clock)
	Log       zerolog.Logger
	// Clock is the Service's time and timers. Nil: Now wrapped, with the
	// time package's timers; both nil: the real clock. Now stays this round
	// so that the tests written before Clock need not change; new code
	// sets Clock.
	Clock Clock
	// Reminders says when the Service follows up by itself (Schedule
	// sends them); zero: no reminders.
	Reminders Reminders
	// ApprovalTTL is how long an accepted release may wait for dep start
	// before its approval is void and it goes back to requested
	// (approval_ttl; expiry.go); zero: approvals never expire.
	ApprovalTTL time.Duration
	// RecheckOnStart makes dep start ask the tracker again before a first
	// start (tracker.recheck_on_start; recheck.go).
	RecheckOnStart bool
	// Timezone is the zone of every time shown to people (nil: UTC);
	// stored and audited times stay UTC.
	Timezone *time.Location
	// Freezes are the configured freeze windows (freezewindows.go).
	Freezes []FreezeWindow
	// WeeklyReport, if set, gives the times at which last week's report
	// is posted in the channel (reports.weekly; weeklyreport.go), in the
	// configured zone (cron.WithLocation or CRON_TZ).
	WeeklyReport cron.Schedule
	// ClaimWindow is how long a release told "you're next" has to dep
	// start before its turn passes to the next in line (queue.claim_window;
	// turns.go); zero: no window, the turn never passes.
	ClaimWindow time.Duration
	// Notify, if set, is called after a commit put effects in the outbox:
	// the chat adapter's hook that wakes its sender.
	Notify func()
	// InboxTTL is how long processed event IDs are kept for deduplication
	// (default 48 h; Slack retries for minutes, reconnects may replay older).
	InboxTTL time.Duration
	// HookContext, if set, bounds every hook: cancelling it kills running
	// hooks (their process groups), e.g. when a shutdown's grace runs out.
	// It also ends the retries of held hook results and ticket comments.
	HookContext context.Context
	// CommentOn lists the phases (start, finish) after which the ticket gets
	// a comment, when there is a Commenter.
	CommentOn []Phase
	// CommentRetry is the pause between write-back attempts (default 30 s).
	CommentRetry time.Duration
	// Observer, if set, is told of every handled command and hook result
	// (for metrics).
	Observer Observer
	// Instance, if set, names the process that answers, for people: the
	// queue reply ends with it, so that with several instances (PostgreSQL,
	// active/standby) anyone can see which one leads, e.g. "host:4242
	// (leader, term 7)". It must be known before a command is handled:
	// nothing is looked up inside a transaction.
	Instance string

	// HandIn, if set, is how the Store shared with other instances takes a
	// hook's result from an instance whether or not it leads (see the
	// type). With it, a result that arrives after a new leader's recovery
	// called the hook's outcome unknown is taken while the release still
	// waits on that attempt, and the recovery's report says a result may
	// still come. Nil on a store one process owns (bbolt): results are
	// recorded through Update, and none is taken late.
	HandIn HandIn

	// ResultBackOff, if set, returns the retry policy for recording a hook
	// result whose commit failed (default: 100 ms doubling up to 30 s, no
	// overall limit). Tests make it quick or controlled.
	ResultBackOff func() backoff.BackOff
}

// NewService returns a Service ready to Receive, Handle and Recover. The
// adapters it serves give what they contribute in c (Groups, Notify), so
// nothing changes the Service once it is built.
func NewService(c Config) *Service {
	s := &Service{cfg: withEnvs(c), envNames: configuredEnvs(c.Policy), clock: clockOf(c)}
	s.inbox.Commit = s.receive
	s.sched.init()
	return s
}

// ReplayWindow is how old a pending inbox event may be for Recover to
// handle it after a start. Slack retries an event it has no ack for at once,
// after about a minute and after about five minutes, then gives up: within
// that time the sender may still expect the command to be carried out (and
// Slack would deliver it again if the bot were up), after it they have been
// left without an answer and must not find their command done by itself
// later. The window is a little over five minutes so that Slack's last retry
// falls inside it. An older pending event is dropped and its sender told.
const ReplayWindow = 6 * time.Minute

// alertEvery bounds how often admins are alerted about the tracker.
const alertEvery = 10 * time.Minute

// errDone stops an Update whose event was already processed.
var errDone = errors.New("event already processed")

func (s *Service) now() time.Time { return s.clock.Now().UTC() }

// Handle runs the command in m once: a message already processed is skipped.
// What to tell whom is committed to the outbox; the returned error is only for
// failures the adapter should log (the user was told "internal error").
func (s *Service) Handle(ctx context.Context, m Message) (err error) {
	log := s.cfg.Log.With().Str("event", m.EventID).Str("user", m.User).Logger()
	began := time.Now()
	cmd, perr := ParseIn(m.Text, s.envNames)
	outcome := OutcomeOK
	if s.cfg.Observer != nil {
		defer func() {
			if err != nil {
				outcome = OutcomeFailed
			}
			s.cfg.Observer.Command(observedVerb(cmd, perr, m.Text), outcome, time.Since(began))
		}()
	}
	if m.EventID != "" {
		if _, busy := s.handling.LoadOrStore(m.EventID, struct{}{}); busy {
			log.Debug().Msg("event being handled already")
			outcome = OutcomeDuplicate
			return nil
		}
		defer s.handling.Delete(m.EventID)
	}
	if done, err := s.processed(ctx, m.EventID); err != nil || done {
		outcome = OutcomeDuplicate
		return err
	}
	// Slow I/O first, outside any transaction: roles (user groups) and the tracker.
	var pre prepared
	if perr == nil {
		pre = s.prepare(ctx, m, cmd)
		if ErrorCode(pre.ticketErr) == EFORBIDDEN {
			s.alertTracker(ctx, pre.ticketErr)
		}
	}
	var after []func()
	attempt := func(refused *Error) error {
		return s.cfg.Store.Update(ctx, func(tx Tx) error {
			if ev, ok, err := tx.Event(m.EventID); err != nil {
				return err
			} else if ok && ev.Processed {
				return errDone
			}
			r := &cmdRun{s: s, tx: tx, m: m, cmd: cmd, now: s.now(), pre: pre}
			switch {
			case perr != nil:
				var e *Error
				if !errors.As(perr, &e) {
					return perr
				}
				if err := r.refuse(e, VerbOf(m.Text).Changes()); err != nil {
					return err
				}
			case refused != nil:
				if err := r.refuse(refused, cmd.Changes()); err != nil {
					return err
				}
			default:
				if err := r.exec(); err != nil {
					return err
				}
			}
			if err := tx.PutEvent(InboxEvent{ID: m.EventID, Message: m, Received: s.now(), Processed: true}); err != nil {
				return err
			}
			after = r.after
			if err := r.flush(); err != nil {
				return err
			}
			failpoint.Hit(failpoint.BeforeTransitionCommit)
			return nil
		})
	}
	err = attempt(nil)
	if ref := (*refusal)(nil); errors.As(err, &ref) {
		outcome = OutcomeRefused
		err = attempt(ref.err)
	} else if perr != nil {
		outcome = OutcomeRefused
	}
	switch {
	case errors.Is(err, errDone):
		log.Debug().Msg("event already processed")
		outcome = OutcomeDuplicate
		return nil
	case err != nil:
		log.Error().Err(err).Str("command", string(cmd.Verb)).Msg("command failed")
		s.tellFailure(ctx, m, err)
		return err
	}
	failpoint.Hit(failpoint.AfterTransitionCommitBeforeOutboxSend)
	s.notify()
	for _, f := range after {
		f()
	}
	return nil
}

// alertTracker tells the admins, at most every alertEvery, that the tracker
// rejects the bot's credentials: every dobro fails until someone fixes it.
func (s *Service) alertTracker(ctx context.Context, cause error) {
	s.alertMu.Lock()
	now := s.now()
	if !s.lastAlert.IsZero() && now.Sub(s.lastAlert) < alertEvery {
		s.alertMu.Unlock()
		return
	}
	s.lastAlert = now
	s.alertMu.Unlock()
	s.cfg.Log.Error().Err(cause).Msg("the tracker rejects the bot's credentials: every dobro is refused until this is fixed")
	admins := s.allAdmins(ctx)
	text := say("%v The tracker rejects dobrobot's credentials (%s). Every dobro is refused until the token or its permissions are fixed; dobrobot config check tells when it works again.", Icon("rotating_light"), ErrorMessage(cause))
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		for _, a := range admins {
			if _, err := tx.Emit(Effect{Kind: EffectDM, User: a, Text: text}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.cfg.Log.Error().Err(err).Msg("could not queue the tracker alert")
		return
	}
	s.notify()
}

// processed reports whether the event was handled already, so a replayed
// event costs no tracker lookup. The transaction checks again.
func (s *Service) processed(ctx context.Context, id string) (bool, error) {
	var done bool
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		ev, ok, err := tx.Event(id)
		done = ok && ev.Processed
		return err
	})
	return done, err
}

// tellFailure tries to tell the user that nothing was recorded. The same
// transaction marks the event processed and failed, so that a person told
// "nothing was changed" can rely on it: the event is never replayed (by
// Recover after a restart). If that transaction fails too, nobody was told
// anything and the event stays pending: Recover may still carry it out
// within ReplayWindow, as Slack's own retry would.
func (s *Service) tellFailure(ctx context.Context, m Message, cause error) {
	text := say("Internal error: nothing was changed. Try again; if it persists, tell an admin.")
	if errors.Is(cause, context.DeadlineExceeded) || errors.Is(cause, context.Canceled) {
		text = say("That took too long and was stopped: nothing was changed, try again.")
	} else if code := ErrorCode(cause); code == EUNAVAILABLE {
		text = say("Could not record that (%s): nothing was changed, try again.", ErrorMessage(cause))
	}
	err := s.cfg.Store.Update(context.WithoutCancel(ctx), func(tx Tx) error {
		if marked, err := s.markFailed(tx, m); err != nil || !marked {
			return err // processed meanwhile: "nothing was changed" would be untrue
		}
		_, err := tx.Emit(Effect{Kind: EffectReply, Event: m.EventID, User: m.User, Channel: m.Channel, Thread: m.Thread, Via: m.Via, Text: text})
		return err
	})
	if err != nil {
		s.cfg.Log.Error().Err(err).Str("event", m.EventID).Msg("could not tell the sender that their command failed; it stays pending")
		return
	}
	s.notify()
}

// markFailed records in tx that event m was handled without effect, and
// reports whether it did: an event processed meanwhile with effect (Recover
// and a redelivery racing) is left alone. An event without an ID (never
// recorded) is reported marked.
func (s *Service) markFailed(tx Tx, m Message) (bool, error) {
	if m.EventID == "" {
		return true, nil
	}
	ev, ok, err := tx.Event(m.EventID)
	if err != nil {
		return false, err
	}
	if ok && ev.Processed && !ev.Failed {
		return false, nil
	}
	if !ok {
		ev = InboxEvent{ID: m.EventID, Message: m, Received: s.now()}
	}
	ev.Processed, ev.Failed = true, true
	return true, tx.PutEvent(ev)
}

func (s *Service) notify() {
	if s.cfg.Notify != nil {
		s.cfg.Notify()
	}
}

// Wait blocks until every hook started by the Service has ended and its result
// was recorded.
func (s *Service) Wait() { s.hooks.Wait() }

// Redirect answers m with text and changes nothing else: the chat adapter's
// reply to a message it does not take commands from (a mention outside the
// release channel). Like a command it happens once per event: the same
// transaction records the event processed, and a redelivered one is skipped.
func (s *Service) Redirect(ctx context.Context, m Message, text Text) error {
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		if _, seen, err := tx.Event(m.EventID); err != nil || seen {
			return err
		}
		if err := tx.PutEvent(InboxEvent{ID: m.EventID, Message: m, Received: s.now(), Processed: true}); err != nil {
			return err
		}
		_, err := tx.Emit(Effect{Kind: EffectReply, Event: m.EventID, User: m.User, Channel: m.Channel, Via: m.Via, Text: text})
		return err
	})
	if err == nil {
		s.notify()
	}
	return err
}

// SetCard keeps ref, the chat adapter's reference to the card it posted for
// a release (Slack's message ts), on the release: the core stores it and
// never reads it. ENOTFOUND when the release does not exist.
func (s *Service) SetCard(ctx context.Context, release uint64, ref string) error {
	return s.cfg.Store.Update(ctx, func(tx Tx) error {
		r, err := tx.Release(release)
		if err != nil {
			return err
		}
		r.Card = ref
		_, err = tx.PutRelease(r)
		return err
	})
}
