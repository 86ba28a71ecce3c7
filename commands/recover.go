package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Recover runs after a start: it reports releases whose hook was running when
// the bot stopped (their outcome is unknown; they are not re-run), handles
// inbox events received but not yet processed within ReplayWindow and drops
// older ones (see replayPending), and forgets old event IDs.
func (s *Service) Recover(ctx context.Context) error {
	var interrupted []Release
	if err := s.cfg.Store.View(ctx, func(tx Tx) error {
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
	s.recovered.Store(true)
	if err := s.replayPending(ctx); err != nil {
		return err
	}
	ttl := s.cfg.InboxTTL
	if ttl <= 0 {
		ttl = 48 * time.Hour
	}
	return s.cfg.Store.Update(ctx, func(tx Tx) error {
		n, err := tx.PruneEvents(s.now().Add(-ttl))
		if n > 0 {
			s.cfg.Log.Info().Int("events", n).Msg("forgot old event IDs")
		}
		return err
	})
}

func (s *Service) reportInterrupted(ctx context.Context, id uint64) error {
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		rel, err := tx.Release(id)
		if err != nil || rel.Running == nil || s.owns(rel.Running.Attempt) {
			return err
		}
		hr := *rel.Running
		r := &cmdRun{s: s, tx: tx, m: Message{User: hr.Actor, Via: ViaDM}, now: s.now(), src: SourceDobrobot}
		// On a Store several instances share, the hook may have been run by
		// a leader that froze and was deposed: it may still hand the result
		// in when it wakes, which applyHook takes while the release waits
		// on this attempt (awaitsLate).
		shared := s.cfg.HandIn != nil
		detail := fmt.Sprintf("%s hook (attempt %s) outcome unknown after a restart; not re-run", hr.Phase, hr.Attempt)
		if shared {
			detail = fmt.Sprintf("%s hook (attempt %s) outcome unknown after a restart or takeover; not re-run; the instance that ran it may still hand in its result", hr.Phase, hr.Attempt)
		}
		unknown := func(x *Release) {
			x.Running = nil
			x.LastHook = &HookResult{Phase: hr.Phase, Attempt: hr.Attempt, Error: outcomeUnknown, Ended: r.now}
		}
		if !rel.State.Open() {
			return s.cancelInterrupted(r, rel, detail, unknown, shared)
		}
		rel, err = r.move(rel, ActionInterrupt, detail, unknown)
		if err != nil {
			return err
		}
		text := say("%v dobrobot restarted while the %s hook of %v was running: its outcome is unknown and it was not re-run. The locks stay held. Check the deploy, then resolve it: dep finish %s, dep start %s (runs the start hook again), or cancel %s.",
			Icon("warning"), hr.Phase, TicketRef(rel), r.s.ref(rel), r.s.ref(rel), r.s.ref(rel))
		if shared {
			text = say("%v dobrobot restarted, or another instance took over, while the %s hook of %v (attempt %s) was running: its outcome is unknown and it was not re-run. The locks stay held. If the instance that ran it was only frozen, it may still hand in its result when it wakes, and the release moves on by itself. Otherwise check the deploy, then resolve it: dep finish %s, dep start %s (runs the start hook again), or cancel %s.",
				Icon("warning"), hr.Phase, TicketRef(rel), hr.Attempt, r.s.ref(rel), r.s.ref(rel), r.s.ref(rel))
		}
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
	pending, err := s.pendingEvents(ctx)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	for _, ev := range pending {
		log := s.cfg.Log.With().Str("event", ev.ID).Str("user", ev.Message.User).Time("received", ev.Received).Logger()
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

// HandlePending carries out the inbox events that are pending and that no
// Handle of this Service is carrying out: those another instance recorded
// (a PostgreSQL standby holds Slack connections, records the events it
// acknowledges and leaves them to the leader), and any left pending by a
// Handle that failed before it could record an outcome. Each is handled on a
// goroutine of its own, as the chat adapter handles the events it receives,
// and HandlePending returns when all have been. One received more than
// ReplayWindow ago is dropped and its sender told, as Recover does. The
// leader calls it when the store says an event was recorded, and now and
// then in case it missed that. Until Recover has reported the hooks a
// previous run left running it does nothing: Recover then handles what is
// pending itself.
func (s *Service) HandlePending(ctx context.Context) error {
	if !s.recovered.Load() {
		return nil
	}
	pending, err := s.pendingEvents(ctx)
	if err != nil {
		return fmt.Errorf("handle pending events: %w", err)
	}
	var wg sync.WaitGroup
	for _, ev := range pending {
		if _, busy := s.handling.Load(ev.ID); busy {
			continue
		}
		log := s.cfg.Log.With().Str("event", ev.ID).Str("user", ev.Message.User).Time("received", ev.Received).Logger()
		if age := s.now().Sub(ev.Received); age >= ReplayWindow {
			log.Warn().Dur("age", age).Msg("dropping a pending event: too old to carry out; its sender is told")
			if err := s.dropStale(ctx, ev); err != nil {
				log.Error().Err(err).Msg("could not drop a pending event")
			}
			continue
		}
		m := ev.Message
		if m.EventID == "" {
			m.EventID = ev.ID
		}
		wg.Go(func() {
			log.Debug().Msg("handling an event another instance recorded")
			if err := s.Handle(ctx, m); err != nil {
				log.Error().Err(err).Msg("command failed")
			}
		})
	}
	wg.Wait()
	return nil
}

// pendingEvents reads the inbox events not processed yet, oldest first.
func (s *Service) pendingEvents(ctx context.Context) ([]InboxEvent, error) {
	var pending []InboxEvent
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		pending, err = tx.PendingEvents()
		return err
	})
	return pending, err
}

// dropStale marks a pending event too old to replay as processed and failed,
// and tells its sender, in the same transaction.
func (s *Service) dropStale(ctx context.Context, ev InboxEvent) error {
	m := ev.Message
	if m.EventID == "" {
		m.EventID = ev.ID
	}
	at := ev.Received.UTC()
	when := s.clockAt(at, layoutClock)
	if s.now().Sub(at) >= 20*time.Hour {
		when = s.clockAt(at, layoutDate)
	}
	text := say("Your command %v from %s was not carried out: dobrobot stopped before it could. Nothing was changed; send it again if you still want it.",
		commandQuote(m.Text), when)
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
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

// commandQuote quotes a command's text for a reply, as code: controls
// neutralised, shortened, and with no backtick that could end an adapter's
// code span early.
func commandQuote(text string) Span {
	const max = 80
	q := strings.Join(strings.Fields(Clean(text)), " ")
	q = strings.ReplaceAll(q, "`", "'")
	if utf8.RuneCountInString(q) > max {
		q = string([]rune(q)[:max]) + "…"
	}
	if q == "" {
		q = "(empty)"
	}
	return Code(q)
}

// cancelInterrupted reports the cancel hook of rel, a cancelled release,
// found running after a restart. The release stays cancelled (a closed
// release never moves) and keeps its locks: nobody knows whether the
// rollback ended, so an admin frees them (unlock) once it is checked.
func (s *Service) cancelInterrupted(r *cmdRun, rel Release, detail string, unknown func(*Release), shared bool) error {
	unknown(&rel)
	rel.Updated = r.now
	rel, err := r.tx.PutRelease(rel)
	if err != nil {
		return err
	}
	if err := r.auditRelease(ActionInterrupt, rel, rel.State, rel.State, detail); err != nil {
		return err
	}
	kept, err := r.keptLocks(rel)
	if err != nil {
		return err
	}
	text := say("%v dobrobot restarted while the cancel hook of %v was running: its outcome is unknown and it was not re-run.", Icon("warning"), TicketRef(rel))
	if shared {
		text = say("%v dobrobot restarted, or another instance took over, while the cancel hook of %v (attempt %s) was running: its outcome is unknown and it was not re-run. If the instance that ran it was only frozen, it may still hand in its result when it wakes, which frees the locks.",
			Icon("warning"), TicketRef(rel), rel.LastHook.Attempt)
	}
	if len(kept) > 0 {
		text = text.say(" Its locks stay held (%s): check the rollback, then an admin frees each with unlock COMPONENT (unlock %s).", strings.Join(kept, ", "), kept[0])
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
