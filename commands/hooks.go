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
			job := Job{Phase: hr.Phase, Attempt: hr.Attempt, Ticket: rel.Ticket, Env: s.envName(rel), Build: rel.Build,
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

// recordHook records a hook's result as its own transition. On a Store
// shared by several instances (Config.HandIn set) it goes through HandIn: the
// result is a fact whatever the term, so an instance deposed while its hook
// ran hands it in; applyHook takes it only while the release still waits on
// its attempt.
func (s *Service) recordHook(id uint64, hr HookRun, res HookResult) error {
	var after []func()
	apply := func(tx Tx, leads bool) error {
		var err error
		after, err = s.applyHook(tx, id, hr, res, leads)
		return err
	}
	var err error
	if s.cfg.HandIn != nil {
		err = s.cfg.HandIn(context.Background(), apply)
	} else {
		err = s.cfg.Store.Update(context.Background(), func(tx Tx) error { return apply(tx, true) })
	}
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
// outcome unknown, or an admin recorded it), and it does not await the
// attempt's late result either (see awaitsLate).
var errNotCurrent = errors.New("the hook attempt is no longer current")

// awaitsLate reports whether rel, whose Running is not attempt hr, still
// waits for hr's result: a new leader's recovery reported hr interrupted
// (its LastHook is hr's unknown outcome) and nothing has happened to the
// release since — no other hook ran, and it is still in a state hr's
// result applies to (open for a start or finish hook; cancelled, as it
// stays, for a cancel hook).
func awaitsLate(rel Release, hr HookRun) bool {
	h := rel.LastHook
	if rel.Running != nil || h == nil || h.Attempt != hr.Attempt || h.Phase != hr.Phase || h.OK || h.Error != outcomeUnknown {
		return false
	}
	if hr.Phase == PhaseCancel {
		return rel.State == StateCancelled
	}
	return rel.State.Open()
}

// applyHook records hook attempt hr's result res for release id inside tx:
// the transition, its audit entry and whom to tell. It returns the work to
// do after the commit. leads is false when the instance that ran the hook
// no longer leads and hands the result in: the audit entry and the thread
// say so, and a result that arrives after a recovery called it unknown is
// told to those who were told that.
func (s *Service) applyHook(tx Tx, id uint64, hr HookRun, res HookResult, leads bool) ([]func(), error) {
	rel, err := tx.Release(id)
	if err != nil {
		return nil, err
	}
	current := rel.Running != nil && rel.Running.Attempt == hr.Attempt
	// Only on a shared store can a result arrive after a recovery: on bbolt
	// one process runs, and the hooks of the one before it are gone.
	late := !current && s.cfg.HandIn != nil && awaitsLate(rel, hr)
	if !current && !late {
		return nil, fmt.Errorf("release %s, hook attempt %s: %w", rel.Ticket, hr.Attempt, errNotCurrent)
	}
	detail := hookDetail(res)
	if !leads {
		detail = handedInDetail(res, s.cfg.Instance)
	}
	r := &cmdRun{s: s, tx: tx, m: Message{User: hr.Actor, Via: ViaDM}, now: s.now(), src: SourceDobrobot}
	held := rel.Locks
	if late && hr.Phase == PhaseCancel {
		// Since the recovery an admin may have freed some of the locks the
		// cancelled release kept; once all are free it waits for nothing.
		if held, err = r.keptLocks(rel); err != nil {
			return nil, err
		}
		if len(held) == 0 {
			return nil, fmt.Errorf("release %s, cancel hook attempt %s: its locks were freed by hand: %w", rel.Ticket, hr.Attempt, errNotCurrent)
		}
	}
	rel.Running, rel.LastHook = nil, &res
	switch {
	case hr.Phase == PhaseCancel:
		if err := r.cancelHookEnded(rel, res, detail, held); err != nil {
			return nil, err
		}
	case hr.Phase == PhaseStart && res.OK:
		if rel, err = r.move(rel, ActionStarted, detail, nil); err != nil {
			return nil, err
		}
		r.after = append(r.after, s.comment(rel.Ticket, PhaseStart, hr.Actor, r.now))
		r.card(rel)
		r.thread(rel, hookText(res).say(". When the deploy is done: dep finish %s.", r.s.ref(rel)))
	case hr.Phase == PhaseStart:
		if rel, err = r.move(rel, ActionFail, detail, nil); err != nil {
			return nil, err
		}
		r.card(rel)
		r.thread(rel, hookText(res))
		text := say("The start hook of %v failed; its locks stay held. Fix it and dep start %s again, or dep finish %s, or cancel %s. Output: log %s.", TicketRef(rel), r.s.ref(rel), r.s.ref(rel), r.s.ref(rel), r.s.ref(rel))
		for _, u := range uniq(hr.Actor, rel.Requester) {
			r.dm(u, text)
		}
	case res.OK: // finish
		if err := r.close(rel, ActionFinish, "", detail, nil); err != nil {
			return nil, err
		}
	default: // finish failed: nothing changes but the record of it
		if rel, err = r.move(rel, ActionHookFailed, detail, nil); err != nil {
			return nil, err
		}
		r.card(rel)
		r.thread(rel, hookText(res))
		r.dm(hr.Actor, say("The finish hook of %s failed; the release stays %s and keeps its locks. Retry dep finish %s, or cancel %s. Output: log %s.", TicketRef(rel), rel.State, r.s.ref(rel), r.s.ref(rel), r.s.ref(rel)))
	}
	if !leads {
		r.handedIn(rel, hr, res, late)
	}
	return r.after, r.flush()
}

// handedIn tells the thread that hook attempt hr's result res was handed in
// by the instance that ran it, deposed meanwhile; when a recovery had
// reported the attempt interrupted (late), those it told are told too.
func (r *cmdRun) handedIn(rel Release, hr HookRun, res HookResult, late bool) {
	instance := r.s.cfg.Instance
	if instance == "" {
		instance = "no longer the leader"
	}
	outcome := "succeeded"
	if !res.OK {
		outcome = "failed (" + res.Error + ")"
	}
	text := say("The %s hook of %v (attempt %s) ended after the instance that ran it, %s, lost the leadership; it handed in the result: the hook %s.",
		hr.Phase, TicketRef(rel), hr.Attempt, instance, outcome)
	if !late {
		r.thread(rel, text)
		return
	}
	text = text.say(" This replaces the earlier report that its outcome was unknown.")
	r.thread(rel, text)
	for _, u := range uniq(rel.Requester, rel.Admin) {
		r.dm(u, text)
	}
}

// cancelHookEnded records the result of a cancelled release's cancel hook,
// whatever it is, then frees the locks the release kept while the hook ran
// (held: those it still holds) and tells the next in line.
func (r *cmdRun) cancelHookEnded(rel Release, res HookResult, detail string, held []string) error {
	rel, err := r.tx.PutRelease(rel)
	if err != nil {
		return err
	}
	action := ActionHook
	if !res.OK {
		action = ActionHookFailed
	}
	if err := r.auditRelease(action, rel, rel.State, rel.State, detail); err != nil {
		return err
	}
	for _, c := range held {
		if err := r.tx.DeleteLock(c, rel.ID, ""); err != nil {
			return err
		}
	}
	text := hookText(res)
	if len(held) > 0 {
		text = text.withFirstLine(say("; freed %s.", strings.Join(held, ", ")))
	}
	r.card(rel)
	r.thread(rel, text)
	if !res.OK {
		r.dm(r.m.User, say("The cancel hook of %s failed: check the rollback. Its locks are freed. Output: log %s.", TicketRef(rel), r.s.ref(rel)))
	}
	return r.tellNext(r.s.envName(rel), held)
}

// handedInDetail is hookDetail for a result handed in by instance after its
// term ended. It still ends with the attempt, which the audit replay reads.
func handedInDetail(res HookResult, instance string) string {
	if instance == "" {
		instance = "the instance that ran it"
	}
	what := fmt.Sprintf("%s hook ok in %s", res.Phase, res.Duration.Round(time.Millisecond))
	if !res.OK {
		what = fmt.Sprintf("%s hook failed: %s", res.Phase, res.Error)
	}
	return fmt.Sprintf("%s; handed in by %s after its term ended (attempt %s)", what, instance, res.Attempt)
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
