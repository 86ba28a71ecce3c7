package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands/failpoint"
)

// Service runs commands: it parses a Message, authorises the actor, looks the
// ticket up, applies the transition in one Store transaction together with its
// audit entries and outbox effects, and runs hooks after the commit.
type Service struct {
	Store   Store
	Tracker Tracker
	Hooks   Hooks
	Groups  Groups // nil: user-group IDs in the policy match nobody
	Policy  Policy
	Now     func() time.Time
	Log     zerolog.Logger
	// Notify, if set, is called after a commit put effects in the outbox.
	Notify func()
	// InboxTTL is how long processed event IDs are kept for deduplication
	// (default 48 h; Slack retries for minutes, reconnects may replay older).
	InboxTTL time.Duration
	// HookContext, if set, bounds every hook: cancelling it kills running
	// hooks (their process groups), e.g. when a shutdown's grace runs out.
	HookContext context.Context
	// CommentOn lists the phases (start, finish) after which the ticket gets
	// a comment, when the Tracker is a Commenter.
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

	// ResultBackOff, if set, returns the retry policy for recording a hook
	// result whose commit failed (default: 100 ms doubling up to 30 s, no
	// overall limit). Tests make it quick or controlled.
	ResultBackOff func() backoff.BackOff

	hooks sync.WaitGroup
	// held holds the hook results that could not be committed yet, by
	// attempt, while they are retried (hookresult.go).
	held sync.Map
	// own holds the hook attempts this Service created and has not
	// recorded a result of: Recover, which runs while the first commands
	// after a start are handled, must not take them for interrupted ones.
	own sync.Map

	alertMu   sync.Mutex
	lastAlert time.Time

	recvMu   sync.Mutex
	recvNext *receiveBatch // messages waiting for the next inbox commit
	recvBusy bool          // a goroutine is committing them
}

// Observer receives what a Service counts and times, for metrics. Its
// methods must be quick and safe for concurrent use.
type Observer interface {
	// Command is called once for each message Handle processes: its verb
	// (VerbUnknown when none could be read), its outcome and how long the
	// handling took.
	Command(verb Verb, outcome Outcome, took time.Duration)
	// Hook is called with each hook's result once it has ended.
	Hook(res HookResult)
}

// Outcome is how a handled command ended, as reported to an Observer.
type Outcome string

// The outcomes of a command.
const (
	OutcomeOK        Outcome = "ok"        // done (or answered, for a read)
	OutcomeRefused   Outcome = "refused"   // refused and answered: not allowed, wrong state, not parsed
	OutcomeFailed    Outcome = "failed"    // not recorded: a store or internal error
	OutcomeDuplicate Outcome = "duplicate" // the event was processed already
)

// VerbUnknown is the verb reported to an Observer for a message that names
// no command.
const VerbUnknown Verb = "unknown"

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

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Receive records m in the inbox and reports whether it is new. A chat adapter
// calls it before acknowledging an event and calls Handle only when it is new;
// a redelivered event (same EventID) reports false and has no further effect.
//
// Concurrent calls share one transaction (group commit): a call that finds
// no inbox commit running starts one for its message at once, and the calls
// that arrive meanwhile are committed together by the next, so a burst of
// events costs a few fsyncs, not one each, and no ack waits for more than
// about two commits. A Store with UpdateFirst (storage.DB) lets these
// commits go before the commands waiting for the write lock. A call whose
// ctx ends before its message was committed returns ctx's error; its
// message may still be recorded (an unacked event is redelivered, and
// Recover handles recorded events that were never processed).
func (s *Service) Receive(ctx context.Context, m Message) (bool, error) {
	if m.EventID == "" {
		return false, Errorf(EINVALID, "message without an event ID")
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.recvMu.Lock()
	b := s.recvNext
	if b == nil {
		b = &receiveBatch{done: make(chan struct{})}
		s.recvNext = b
	}
	i := len(b.msgs)
	b.msgs = append(b.msgs, m)
	b.ctxs = append(b.ctxs, ctx)
	if !s.recvBusy {
		s.recvBusy = true
		go s.receiveLoop()
	}
	s.recvMu.Unlock()
	select {
	case <-b.done:
		if b.err != nil {
			return false, b.err
		}
		if b.skipped[i] {
			return false, ctx.Err()
		}
		return b.fresh[i], nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// receiveBatch is the messages of one inbox commit and its outcome.
type receiveBatch struct {
	msgs    []Message
	ctxs    []context.Context
	done    chan struct{} // closed when fresh, skipped and err are set
	fresh   []bool
	skipped []bool // the caller had given up before the commit began
	err     error
}

// firstUpdater is a Store that can let a transaction go before the others
// waiting for its write lock (storage.DB).
type firstUpdater interface {
	UpdateFirst(ctx context.Context, fn func(Tx) error) error
}

// receiveLoop commits the waiting messages, batch after batch, until none
// are left.
func (s *Service) receiveLoop() {
	for {
		s.recvMu.Lock()
		b := s.recvNext
		s.recvNext = nil
		if b == nil {
			s.recvBusy = false
			s.recvMu.Unlock()
			return
		}
		s.recvMu.Unlock()
		s.receive(b)
		close(b.done)
	}
}

// receive records the new messages of b in one transaction.
func (s *Service) receive(b *receiveBatch) {
	update := s.Store.Update
	if f, ok := s.Store.(firstUpdater); ok {
		update = f.UpdateFirst
	}
	n := len(b.msgs)
	b.skipped = make([]bool, n)
	live := false
	for i, ctx := range b.ctxs {
		b.skipped[i] = ctx.Err() != nil
		live = live || !b.skipped[i]
	}
	if !live {
		b.fresh = make([]bool, n)
		return
	}
	var fresh []bool
	// The callers wait with their own contexts; the commit is given up only
	// when all of them have given up (a shutdown), not when one of them has.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waiting atomic.Int64
	for i, c := range b.ctxs {
		if !b.skipped[i] {
			waiting.Add(1)
			stop := context.AfterFunc(c, func() {
				if waiting.Add(-1) == 0 {
					cancel()
				}
			})
			defer stop()
		}
	}
	b.err = update(ctx, func(tx Tx) error {
		fresh = make([]bool, n)
		recorded := make(map[string]bool, n)
		now := s.now()
		for i, m := range b.msgs {
			if b.skipped[i] || recorded[m.EventID] {
				continue // a copy of an event earlier in the batch is not new
			}
			if _, ok, err := tx.Event(m.EventID); err != nil {
				return err
			} else if ok {
				continue
			}
			if err := tx.PutEvent(InboxEvent{ID: m.EventID, Message: m, Received: now}); err != nil {
				return err
			}
			fresh[i], recorded[m.EventID] = true, true
		}
		return nil
	})
	if b.err != nil {
		fresh = make([]bool, n)
	}
	b.fresh = fresh
}

// Handle runs the command in m once: a message already processed is skipped.
// What to tell whom is committed to the outbox; the returned error is only for
// failures the adapter should log (the user was told "internal error").
func (s *Service) Handle(ctx context.Context, m Message) (err error) {
	log := s.Log.With().Str("event", m.EventID).Str("user", m.User).Logger()
	began := time.Now()
	cmd, perr := Parse(m.Text)
	outcome := OutcomeOK
	if s.Observer != nil {
		defer func() {
			if err != nil {
				outcome = OutcomeFailed
			}
			s.Observer.Command(observedVerb(cmd, perr, m.Text), outcome, time.Since(began))
		}()
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
		return s.Store.Update(ctx, func(tx Tx) error {
			if ev, ok, err := tx.Event(m.EventID); err != nil {
				return err
			} else if ok && ev.Processed {
				return errDone
			}
			r := &run{s: s, tx: tx, m: m, cmd: cmd, now: s.now(), pre: pre}
			switch {
			case perr != nil:
				var e *Error
				if !errors.As(perr, &e) {
					return perr
				}
				if err := r.refuse(e, verbOf(m.Text).changes()); err != nil {
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
	s.Log.Error().Err(cause).Msg("the tracker rejects the bot's credentials: every dobro is refused until this is fixed")
	admins := s.expand(ctx, s.Policy.Admins)
	text := ":rotating_light: The tracker rejects dobrobot's credentials (" + Escape(ErrorMessage(cause)) + "). Every dobro is refused until the token or its permissions are fixed; dobrobot config check tells when it works again."
	err := s.Store.Update(ctx, func(tx Tx) error {
		for _, a := range admins {
			if _, err := tx.Emit(Effect{Kind: EffectDM, User: a, Text: text}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.Log.Error().Err(err).Msg("could not queue the tracker alert")
		return
	}
	s.notify()
}

// processed reports whether the event was handled already, so a replayed
// event costs no tracker lookup. The transaction checks again.
func (s *Service) processed(ctx context.Context, id string) (bool, error) {
	var done bool
	err := s.Store.View(ctx, func(tx Tx) error {
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
	text := "Internal error: nothing was changed. Try again; if it persists, tell an admin."
	if errors.Is(cause, context.DeadlineExceeded) || errors.Is(cause, context.Canceled) {
		text = "That took too long and was stopped: nothing was changed, try again."
	} else if code := ErrorCode(cause); code == EUNAVAILABLE {
		text = "Could not record that (" + ErrorMessage(cause) + "): nothing was changed, try again."
	}
	err := s.Store.Update(context.WithoutCancel(ctx), func(tx Tx) error {
		if marked, err := s.markFailed(tx, m); err != nil || !marked {
			return err // processed meanwhile: "nothing was changed" would be untrue
		}
		_, err := tx.Emit(Effect{Kind: EffectReply, Event: m.EventID, User: m.User, Channel: m.Channel, Thread: m.Thread, Via: m.Via, Text: text})
		return err
	})
	if err != nil {
		s.Log.Error().Err(err).Str("event", m.EventID).Msg("could not tell the sender that their command failed; it stays pending")
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
	if s.Notify != nil {
		s.Notify()
	}
}

// Recover runs after a start: it reports releases whose hook was running when
// the bot stopped (their outcome is unknown; they are not re-run), handles
// inbox events received but not yet processed within ReplayWindow and drops
// older ones (see replayPending), and forgets old event IDs.
func (s *Service) Recover(ctx context.Context) error {
	var interrupted []Release
	if err := s.Store.View(ctx, func(tx Tx) error {
		open, err := tx.Open()
		if err != nil {
			return err
		}
		// A cancelled release is not in the open index, but it keeps its
		// locks while its cancel hook runs: find it through them.
		locks, err := tx.Locks()
		if err != nil {
			return err
		}
		for _, l := range locks {
			if l.Frozen() || slices.ContainsFunc(open, func(r Release) bool { return r.ID == l.Release }) {
				continue
			}
			r, err := tx.Release(l.Release)
			if err != nil {
				return err
			}
			open = append(open, r)
		}
		for _, r := range open {
			if r.Running != nil && !s.owns(r.Running.Attempt) {
				interrupted = append(interrupted, r)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	for _, r := range interrupted {
		if err := s.reportInterrupted(ctx, r.ID); err != nil {
			return fmt.Errorf("recover %s: %w", r.Ticket, err)
		}
	}
	if err := s.replayPending(ctx); err != nil {
		return err
	}
	ttl := s.InboxTTL
	if ttl <= 0 {
		ttl = 48 * time.Hour
	}
	return s.Store.Update(ctx, func(tx Tx) error {
		n, err := tx.PruneEvents(s.now().Add(-ttl))
		if n > 0 {
			s.Log.Info().Int("events", n).Msg("forgot old event IDs")
		}
		return err
	})
}

func (s *Service) reportInterrupted(ctx context.Context, id uint64) error {
	err := s.Store.Update(ctx, func(tx Tx) error {
		rel, err := tx.Release(id)
		if err != nil || rel.Running == nil || s.owns(rel.Running.Attempt) {
			return err
		}
		hr := *rel.Running
		r := &run{s: s, tx: tx, m: Message{User: hr.Actor, Via: ViaDM}, now: s.now(), src: SourceDobrobot}
		detail := fmt.Sprintf("%s hook (attempt %s) outcome unknown after a restart; not re-run", hr.Phase, hr.Attempt)
		unknown := func(x *Release) {
			x.Running = nil
			x.LastHook = &HookResult{Phase: hr.Phase, Attempt: hr.Attempt, Error: outcomeUnknown, Ended: r.now}
		}
		if !rel.State.Open() {
			return s.cancelInterrupted(r, rel, detail, unknown)
		}
		rel, err = r.move(rel, ActionInterrupt, detail, unknown)
		if err != nil {
			return err
		}
		text := fmt.Sprintf(":warning: dobrobot restarted while the %s hook of %s was running: its outcome is unknown and it was not re-run. The locks stay held. Check the deploy, then resolve it: dep finish %s, dep start %s (runs the start hook again), or cancel %s.",
			hr.Phase, TicketRef(rel), rel.Ticket, rel.Ticket, rel.Ticket)
		r.card(rel)
		r.thread(rel, text)
		for _, u := range uniq(rel.Requester, rel.Admin) {
			r.dm(u, text)
		}
		return r.flush()
	})
	if err == nil {
		s.notify()
	}
	return err
}

// replayPending handles the inbox events received before a restart and not
// processed: nobody was answered about them. One received less than
// ReplayWindow ago is handled as if it had just arrived; an older one is
// dropped (marked processed and failed) and its sender told by DM that it
// was not carried out.
func (s *Service) replayPending(ctx context.Context) error {
	var pending []InboxEvent
	if err := s.Store.View(ctx, func(tx Tx) error {
		var err error
		pending, err = tx.PendingEvents()
		return err
	}); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	for _, ev := range pending {
		log := s.Log.With().Str("event", ev.ID).Str("user", ev.Message.User).Time("received", ev.Received).Logger()
		if age := s.now().Sub(ev.Received); age >= ReplayWindow {
			log.Warn().Dur("age", age).Msg("dropping an event received before a restart: too old to carry out; its sender is told")
			if err := s.dropStale(ctx, ev); err != nil {
				return fmt.Errorf("recover: drop event %s: %w", ev.ID, err)
			}
			continue
		}
		log.Info().Msg("handling an event received before a restart")
		if err := s.Handle(ctx, ev.Message); err != nil {
			log.Error().Err(err).Msg("recover: command failed")
		}
	}
	return nil
}

// dropStale marks a pending event too old to replay as processed and failed,
// and tells its sender, in the same transaction.
func (s *Service) dropStale(ctx context.Context, ev InboxEvent) error {
	m := ev.Message
	if m.EventID == "" {
		m.EventID = ev.ID
	}
	at := ev.Received.UTC()
	when := at.Format("15:04 MST")
	if s.now().Sub(at) >= 20*time.Hour {
		when = at.Format("2006-01-02 15:04 MST")
	}
	text := fmt.Sprintf("Your command %s from %s was not carried out: dobrobot stopped before it could. Nothing was changed; send it again if you still want it.",
		commandQuote(m.Text), when)
	err := s.Store.Update(ctx, func(tx Tx) error {
		cur, ok, err := tx.Event(ev.ID)
		if err != nil || (ok && cur.Processed) {
			return err // handled meanwhile (a redelivery): nothing to drop
		}
		if _, err := s.markFailed(tx, m); err != nil {
			return err
		}
		if m.User == "" {
			return nil
		}
		_, err = tx.Emit(Effect{Kind: EffectDM, Event: m.EventID, User: m.User, Text: text})
		return err
	})
	if err == nil {
		s.notify()
	}
	return err
}

// commandQuote renders a command's text for a reply, in a code span: plain
// (chat markup unwrapped, controls neutralised), shortened, escaped, and
// with no backtick that could end the span early.
func commandQuote(text string) string {
	const max = 80
	q := strings.Join(strings.Fields(Clean(PlainText(text))), " ")
	q = strings.ReplaceAll(q, "`", "'")
	if utf8.RuneCountInString(q) > max {
		q = string([]rune(q)[:max]) + "…"
	}
	if q == "" {
		q = "(empty)"
	}
	return "`" + Escape(q) + "`"
}

// cancelInterrupted reports the cancel hook of rel, a cancelled release,
// found running after a restart. The release stays cancelled (a closed
// release never moves) and keeps its locks: nobody knows whether the
// rollback ended, so an admin frees them (unlock) once it is checked.
func (s *Service) cancelInterrupted(r *run, rel Release, detail string, unknown func(*Release)) error {
	unknown(&rel)
	rel.Updated = r.now
	rel, err := r.tx.PutRelease(rel)
	if err != nil {
		return err
	}
	if err := r.audit(ActionInterrupt, rel.Ticket, rel.State, rel.State, detail); err != nil {
		return err
	}
	kept, err := r.keptLocks(rel)
	if err != nil {
		return err
	}
	text := fmt.Sprintf(":warning: dobrobot restarted while the cancel hook of %s was running: its outcome is unknown and it was not re-run.", TicketRef(rel))
	if len(kept) > 0 {
		text += fmt.Sprintf(" Its locks stay held (%s): check the rollback, then an admin frees each with unlock COMPONENT (unlock %s).", strings.Join(kept, ", "), kept[0])
	}
	r.card(rel)
	r.thread(rel, text)
	for _, u := range uniq(rel.Requester, rel.Admin, r.m.User) {
		r.dm(u, text)
	}
	return r.flush()
}

// outcomeUnknown is the error of a hook found running after a restart.
const outcomeUnknown = "outcome unknown: dobrobot stopped while the hook was running"

// Wait blocks until every hook started by the Service has ended and its result
// was recorded.
func (s *Service) Wait() { s.hooks.Wait() }

// prepared holds what a command needs from the network, fetched before its
// transaction: the actor's roles and, for dobro, the ticket.
type prepared struct {
	roles     roles
	ticket    Ticket
	ticketErr error
	approvers []string // users to ask, groups expanded
	admins    []string
}

type roles struct {
	requester, approver, admin bool
	// notInChannel: not a requester because not a member of the release
	// channel, when that is what makes a requester.
	notInChannel bool
	err          error // could not tell (groups unavailable)
}

func (s *Service) prepare(ctx context.Context, m Message, cmd Command) prepared {
	var p prepared
	if !cmd.Changes() {
		return p
	}
	p.roles = s.rolesOf(ctx, m, cmd.Verb)
	if cmd.Verb == VerbDobro && p.roles.err == nil && p.roles.requester {
		p.ticket, p.ticketErr = s.Tracker.Ticket(ctx, cmd.Ticket)
		p.approvers = s.expand(ctx, s.Policy.Approvers)
	}
	if cmd.Verb == VerbAccept {
		p.admins = s.expand(ctx, s.Policy.Admins)
	}
	return p
}

// rolesOf is the one place that decides a user's roles, for every path
// (mention, DM, button, console). Missing role configuration denies.
//
// With no requesters configured, the requesters are the people in the
// release channel: a mention there (Slack delivered it from the channel)
// and the console need no check, but a dobro by DM or button asks Groups
// for the members of the release channel (Policy.Channel), and denies when
// they cannot be known (issue 12, item 10). Only dobro asks, so that an
// approver's click never waits on, or fails with, that list.
func (s *Service) rolesOf(ctx context.Context, m Message, verb Verb) roles {
	user := m.User
	var r roles
	var err error
	switch {
	case len(s.Policy.Requesters) > 0:
		if r.requester, err = s.member(ctx, user, s.Policy.Requesters); err != nil {
			r.err = err
		}
	case m.Via == ViaMention || m.Via == ViaConsole:
		r.requester = user != ""
	case verb == VerbDobro:
		r.requester, err = s.inChannel(ctx, user)
		if err != nil {
			r.err = err
		}
		r.notInChannel = err == nil && !r.requester
	}
	if r.approver, err = s.member(ctx, user, s.Policy.Approvers); err != nil {
		r.err = err
	}
	if r.admin, err = s.member(ctx, user, s.Policy.Admins); err != nil {
		r.err = err
	}
	return r
}

// inChannel reports whether user is a member of the release channel, as
// Groups knows it. No channel or no Groups: nobody is.
func (s *Service) inChannel(ctx context.Context, user string) (bool, error) {
	if user == "" || s.Policy.Channel == "" || s.Groups == nil {
		return false, nil
	}
	members, err := s.Groups.Members(ctx, s.Policy.Channel)
	if err != nil {
		return false, err
	}
	return slices.Contains(members, user), nil
}

// channelRef renders a link to a channel by ID, as Slack shows one.
func channelRef(id string) string {
	if id == "" {
		return "the release channel"
	}
	return "<#" + Escape(id) + ">"
}

func (s *Service) member(ctx context.Context, user string, list []string) (bool, error) {
	if user == "" {
		return false, nil
	}
	var groupErr error
	for _, id := range list {
		if id == user {
			return true, nil
		}
		if !isGroup(id) || s.Groups == nil {
			continue
		}
		members, err := s.Groups.Members(ctx, id)
		if err != nil {
			groupErr = err
			continue
		}
		if slices.Contains(members, user) {
			return true, nil
		}
	}
	return false, groupErr
}

func isGroup(id string) bool { return strings.HasPrefix(id, "S") }

// expand turns a role list into user IDs, best effort (for DMs).
func (s *Service) expand(ctx context.Context, list []string) []string {
	var out []string
	for _, id := range list {
		if !isGroup(id) {
			out = append(out, id)
			continue
		}
		if s.Groups == nil {
			continue
		}
		members, err := s.Groups.Members(ctx, id)
		if err != nil {
			s.Log.Warn().Err(err).Str("group", id).Msg("could not list a user group's members to notify them")
		}
		out = append(out, members...)
	}
	return uniq(out...)
}

func uniq(ids ...string) []string {
	var out []string
	for _, id := range ids {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// verbWord is the verb a text starts with, even when it does not parse.
type verbWord string

func verbOf(text string) verbWord {
	f := strings.Fields(text)
	if len(f) == 0 {
		return ""
	}
	v := strings.ToLower(f[0])
	if v == "dep" && len(f) > 1 {
		v += " " + strings.ToLower(f[1])
	}
	return verbWord(v)
}

func (v verbWord) changes() bool { return Command{Verb: Verb(v)}.Changes() }

// observedVerb is the verb an Observer is told: the command's, the known
// verb a message that did not parse starts with, or VerbUnknown, so that
// metric labels stay few.
func observedVerb(cmd Command, perr error, text string) Verb {
	if perr == nil {
		return cmd.Verb
	}
	v := Verb(verbOf(text))
	for _, u := range Help {
		if u.Verb == v {
			return v
		}
	}
	return VerbUnknown
}

// attempt returns a new hook attempt ID and remembers it as this Service's.
func (s *Service) attempt() string {
	a := newAttempt()
	s.own.Store(a, true)
	return a
}

// owns reports whether this Service created the hook attempt a.
func (s *Service) owns(a string) bool {
	_, ok := s.own.Load(a)
	return ok
}

func newAttempt() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
