package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/commands/failpoint"
)

// spawn returns a function, run after the commit, that runs hook for rel on a
// tracked goroutine and records its result in a second transaction.
func (s *Service) spawn(rel Release, hr HookRun, hook Executor) func() {
	return func() {
		switch hr.Phase {
		case PhaseStart:
			failpoint.Hit(failpoint.AfterDeployIntentCommitBeforeSpawn)
		case PhaseFinish:
			failpoint.Hit(failpoint.AfterFinishIntentCommitBeforeSpawn)
		}
		s.hooks.Add(1)
		go func() {
			defer s.hooks.Done()
			job := Job{Phase: hr.Phase, Attempt: hr.Attempt, Ticket: rel.Ticket, Env: rel.EnvName(), Build: rel.Build,
				Requester: rel.Requester, Admin: rel.Admin, Components: rel.Components}
			log := s.cfg.Log.With().Str("ticket", rel.Ticket).Str("phase", string(hr.Phase)).Str("attempt", hr.Attempt).Logger()
			log.Info().Msg("hook started")
			ctx := s.hookContext()
			failpoint.Hit(failpoint.HookRunning)
			res := hook.Run(ctx, job)
			failpoint.Hit(failpoint.AfterHookExitBeforeResultCommit)
			res.Phase, res.Attempt = hr.Phase, hr.Attempt
			if res.Ended.IsZero() {
				res.Ended = s.now()
			}
			if s.cfg.Observer != nil {
				s.cfg.Observer.Hook(res)
			}
			ev := log.Info()
			if !res.OK {
				ev = log.Warn().Str("error", res.Error)
			}
			ev.Bool("ok", res.OK).Int("exit", res.ExitCode).Dur("duration", res.Duration).Msg("hook ended")
			s.keepRecording(ctx, log, rel.ID, hr, res)
			s.own.Delete(hr.Attempt)
		}()
	}
}

// recordHook records a hook's result as its own transition.
func (s *Service) recordHook(id uint64, hr HookRun, res HookResult) error {
	var after []func()
	err := s.cfg.Store.Update(context.Background(), func(tx Tx) error {
		var err error
		after, err = s.applyHook(tx, id, hr, res)
		return err
	})
	if err == nil {
		s.notify()
		for _, f := range after {
			f()
		}
	}
	return err
}

// errNotCurrent says that a hook's result can no longer be recorded: the
// release's Running names another attempt, or none (a restart called the
// outcome unknown, or an admin recorded it).
var errNotCurrent = errors.New("the hook attempt is no longer current")

// applyHook records hook attempt hr's result res for release id inside tx:
// the transition, its audit entry and whom to tell. It returns the work to
// do after the commit.
func (s *Service) applyHook(tx Tx, id uint64, hr HookRun, res HookResult) ([]func(), error) {
	rel, err := tx.Release(id)
	if err != nil {
		return nil, err
	}
	if rel.Running == nil || rel.Running.Attempt != hr.Attempt {
		return nil, fmt.Errorf("release %s, hook attempt %s: %w", rel.Ticket, hr.Attempt, errNotCurrent)
	}
	r := &cmdRun{s: s, tx: tx, m: Message{User: hr.Actor, Via: ViaDM}, now: s.now(), src: SourceDobrobot}
	rel.Running, rel.LastHook = nil, &res
	switch {
	case hr.Phase == PhaseCancel:
		if err := r.cancelHookEnded(rel, res); err != nil {
			return nil, err
		}
	case hr.Phase == PhaseStart && res.OK:
		if rel, err = r.move(rel, ActionStarted, hookDetail(res), nil); err != nil {
			return nil, err
		}
		r.after = append(r.after, s.comment(rel.Ticket, PhaseStart, hr.Actor, r.now))
		r.card(rel)
		r.thread(rel, hookText(res).say(". When the deploy is done: dep finish %s.", rel.Ticket))
	case hr.Phase == PhaseStart:
		if rel, err = r.move(rel, ActionFail, hookDetail(res), nil); err != nil {
			return nil, err
		}
		r.card(rel)
		r.thread(rel, hookText(res))
		text := say("The start hook of %v failed; its locks stay held. Fix it and dep start %s again, or dep finish %s, or cancel %s. Output: log %s.", TicketRef(rel), rel.Ticket, rel.Ticket, rel.Ticket, rel.Ticket)
		for _, u := range uniq(hr.Actor, rel.Requester) {
			r.dm(u, text)
		}
	case res.OK: // finish
		if err := r.close(rel, ActionFinish, "", hookDetail(res), nil); err != nil {
			return nil, err
		}
	default: // finish failed: nothing changes but the record of it
		if rel, err = r.move(rel, ActionHookFailed, hookDetail(res), nil); err != nil {
			return nil, err
		}
		r.card(rel)
		r.thread(rel, hookText(res))
		r.dm(hr.Actor, say("The finish hook of %s failed; the release stays %s and keeps its locks. Retry dep finish %s, or cancel %s. Output: log %s.", TicketRef(rel), rel.State, rel.Ticket, rel.Ticket, rel.Ticket))
	}
	return r.after, r.flush()
}

// cancelHookEnded records the result of a cancelled release's cancel hook,
// whatever it is, then frees the locks the release kept while the hook ran
// and tells the next in line.
func (r *cmdRun) cancelHookEnded(rel Release, res HookResult) error {
	rel, err := r.tx.PutRelease(rel)
	if err != nil {
		return err
	}
	action := ActionHook
	if !res.OK {
		action = ActionHookFailed
	}
	if err := r.auditRelease(action, rel, rel.State, rel.State, hookDetail(res)); err != nil {
		return err
	}
	for _, c := range rel.Locks {
		if err := r.tx.DeleteLock(c, rel.ID); err != nil {
			return err
		}
	}
	text := hookText(res)
	if len(rel.Locks) > 0 {
		text = text.withFirstLine(say("; freed %s.", strings.Join(rel.Locks, ", ")))
	}
	r.card(rel)
	r.thread(rel, text)
	if !res.OK {
		r.dm(r.m.User, say("The cancel hook of %s failed: check the rollback. Its locks are freed. Output: log %s.", TicketRef(rel), rel.Ticket))
	}
	return r.tellNext(rel.Locks)
}

func hookDetail(res HookResult) string {
	if res.OK {
		return fmt.Sprintf("%s hook ok in %s (attempt %s)", res.Phase, res.Duration.Round(time.Millisecond), res.Attempt)
	}
	return fmt.Sprintf("%s hook failed: %s (attempt %s)", res.Phase, res.Error, res.Attempt)
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
