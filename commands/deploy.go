package commands

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// ready reports whether rel may start as far as its own state goes.
func ready(rel Release) bool {
	return rel.Running == nil && (rel.State == StateClaimed || (rel.State == StateAccepted && !rel.NeedAdmin))
}

func (r *cmdRun) start() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	return r.startRelease(rel)
}

// startRelease is dep start of rel once its actor is authorised: a person's
// and the CI intake's auto_deploy (build.go) pass the same checks. Every
// refusal comes before the first write.
func (r *cmdRun) startRelease(rel Release) error {
	if err := ciBlocks(rel); err != nil {
		return err
	}
	var err error
	switch rel.State {
	case StateRequested:
		return Errorf(ECONFLICT, "%s is not accepted yet: ask an approver.", rel.Ticket)
	case StateAccepted:
		if rel.NeedAdmin {
			return Errorf(ECONFLICT, "%s needs an admin: wait until one claims it (here %s), or request it with no_need_admin.", rel.Ticket, r.s.ref(rel))
		}
	case StateDeploying:
		if rel.LastHook == nil || rel.LastHook.Phase != PhaseStart || rel.LastHook.OK || rel.LastHook.Error != outcomeUnknown {
			r.reply(say("%s is already deploying (dep start %s by %s).", TicketRef(rel), since(r.now, rel.Started), Person(rel.Requester)))
			return nil
		}
	}
	if rel.State == StateAccepted || rel.State == StateClaimed {
		if voided, err := r.recheck(rel); err != nil || voided {
			return err
		}
		if err := r.checkPromotion(rel); err != nil {
			return err
		}
	}
	past, err := r.checkFreezes(rel)
	if err != nil {
		return err
	}
	if err := r.checkLocks(rel); err != nil {
		return err
	}
	hook := r.s.envOf(rel).Hooks.Start
	detail := "locks: " + strings.Join(rel.Locks, ",")
	if rel.Requester != r.m.User && rel.Admin != r.m.User {
		detail += "; " + r.overrideWord(rel)
	}
	var hookRun *HookRun
	if hook != nil {
		hookRun = &HookRun{Phase: PhaseStart, Attempt: r.s.attempt(), Actor: r.m.User, Since: r.now}
		detail += "; start hook attempt " + hookRun.Attempt
	}
	if rel, err = r.move(rel, ActionStart, detail, func(x *Release) {
		x.Started, x.Running = r.now, hookRun
		x.Turn, x.Behind = time.Time{}, 0 // its turn is taken; the queue is behind it
	}); err != nil {
		return err
	}
	for _, comp := range rel.Locks {
		if err := r.tx.PutLock(Lock{Component: comp, Release: rel.ID, Ticket: rel.Ticket, Env: r.s.envName(rel), By: r.m.User, Since: r.now}); err != nil {
			return err
		}
	}
	if err := r.forced(rel, past); err != nil {
		return err
	}
	r.card(rel)
	msg := say("%v started the deploy", Person(r.m.User))
	if len(rel.Locks) > 0 {
		msg = msg.say("; locked %s", strings.Join(rel.Locks, ", "))
	}
	if hook != nil {
		msg = msg.plain(". Start hook running…")
		r.after = append(r.after, r.s.spawn(rel, *hookRun, hook))
	} else {
		msg = msg.say(". When it is done: dep finish %s.", r.s.ref(rel))
		r.after = append(r.after, r.s.comment(rel.Ticket, PhaseStart, r.m.User, r.now))
	}
	r.thread(rel, msg)
	r.reply(say("Deploy of %s started.", rel.Ticket))
	return nil
}

// checkLocks refuses when a component of rel is locked by another release,
// frozen, or, unless rel holds its locks already (a retry), wanted by an
// earlier ready release (no jumping the queue), all
// in rel's environment: deploying backend to qa never blocks backend in
// production. A freeze of all stops every start there, also of a release
// that locks nothing; a freeze without an environment holds in every one.
func (r *cmdRun) checkLocks(rel Release) error {
	locks, err := r.tx.Locks()
	if err != nil {
		return err
	}
	env := r.s.envName(rel)
	for _, l := range locks {
		if !r.s.lockIn(l, env) || l.Timed() { // a freeze from chat: checkFreezes
			continue
		}
		if l.Frozen() && (l.Component == AllComponents || slices.Contains(rel.Locks, l.Component)) {
			return Errorf(ECONFLICT, "%s: %s.", lockText(l, r.now, r.s.envConfigured()).capitalize(), "wait until an admin unlocks it")
		}
		if !l.Frozen() && l.Release != rel.ID && slices.Contains(rel.Locks, l.Component) {
			return r.lockedBy(l)
		}
	}
	if rel.State.HoldsLocks() {
		// A retry (failed, or a start whose outcome is unknown) holds its
		// locks already: no release ahead in the queue can take them, so
		// the queue rule would leave both stuck until a cancel.
		return nil
	}
	open, err := r.queued()
	if err != nil {
		return err
	}
	for _, o := range open { // in the queue's order: hotfixes let go first lead
		if o.ID == rel.ID {
			break
		}
		if !ready(o) || r.s.envName(o) != env {
			continue
		}
		for _, c := range o.Locks {
			if slices.Contains(rel.Locks, c) {
				return Errorf(ECONFLICT, "%s is ahead of %s in the queue for %s (%s by %s): it starts first, or it must be cancelled.", o.Ticket, rel.Ticket, c, o.State, Person(o.Requester))
			}
		}
	}
	return nil
}

// lockedBy refuses a dep start because release lock l holds one of its
// components. A release that is no longer open holds a lock only while its
// cancel hook runs, or after a restart found it running: say so, and what
// to do.
func (r *cmdRun) lockedBy(l Lock) error {
	text := lockText(l, r.now, r.s.envConfigured()).capitalize()
	holder, err := r.tx.Release(l.Release)
	if err != nil || holder.State.Open() {
		return Errorf(ECONFLICT, "%s.", text)
	}
	return Errorf(ECONFLICT, "%s, %s.", text, closingText(holder, l.Component, r.now))
}

// closingText says why a release that is no longer open still holds
// component c: its cancel hook is running, or its outcome is unknown.
func closingText(rel Release, c string, now time.Time) string {
	if rel.Running != nil {
		return fmt.Sprintf("which is %s and whose %s hook is running (since %s): wait until it ends", rel.State, rel.Running.Phase, since(now, rel.Running.Since))
	}
	return fmt.Sprintf("which is %s; its cancel hook's outcome is unknown after a restart: check the rollback, then an admin frees it with unlock %s", rel.State, c)
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (r *cmdRun) finish() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	if rel.State != StateDeploying && rel.State != StateFailed {
		return Errorf(ECONFLICT, "%s has not started (%s): dep start %s first, or cancel %s.", rel.Ticket, rel.State, r.s.ref(rel), r.s.ref(rel))
	}
	if hook := r.s.envOf(rel).Hooks.Finish; hook != nil {
		hookRun := HookRun{Phase: PhaseFinish, Attempt: r.s.attempt(), Actor: r.m.User, Since: r.now}
		rel.Running = &hookRun
		if rel, err = r.tx.PutRelease(rel); err != nil {
			return err
		}
		r.card(rel)
		r.thread(rel, say("%s is finishing the deploy. Finish hook running…", Person(r.m.User)))
		r.reply(say("Finishing %s: the finish hook is running.", rel.Ticket))
		r.after = append(r.after, r.s.spawn(rel, hookRun, hook))
		return nil
	}
	return r.close(rel, ActionFinish, "", "", nil)
}

// close moves rel to done or cancelled and tells the people concerned. A
// release that held locks frees them and tells the next in line, unless
// hook is set: hook is the cancel hook about to run, kept as rel.Running,
// and the locks stay held until its result is recorded (recordHook), so
// that no other release deploys a component while it is rolled back.
// reason is the cancel reason.
func (r *cmdRun) close(rel Release, action Action, reason, detail string, hook *HookRun) error {
	free := rel.State.HoldsLocks() && hook == nil
	if hook != nil {
		detail = strings.TrimPrefix(detail+"; cancel hook attempt "+hook.Attempt, "; ")
	}
	if rel.Requester != r.m.User && rel.Admin != r.m.User {
		detail = strings.TrimPrefix(detail+"; "+r.overrideWord(rel), "; ")
	}
	rel, err := r.move(rel, action, detail, func(x *Release) {
		if reason != "" {
			x.Reason = reason
		}
		if hook != nil {
			x.Running = hook
		}
	})
	if err != nil {
		return err
	}
	if free {
		for _, c := range rel.Locks {
			if err := r.tx.DeleteLock(c, rel.ID, ""); err != nil {
				return err
			}
		}
	}
	r.card(rel)
	switch action {
	case ActionFinish:
		r.after = append(r.after, r.s.comment(rel.Ticket, PhaseFinish, r.m.User, r.now), r.s.forgetDeploys)
		r.thread(rel, say("Done: %s finished the deploy.", Person(r.m.User)))
		r.reply(say("%s is done. Thank you!", rel.Ticket))
		if err := r.done(rel); err != nil {
			return err
		}
	default:
		why := ""
		if reason != "" {
			why = ": " + reason
		}
		text := say("Cancelled by %v%s.", Person(r.m.User), why)
		if hook != nil {
			text = text.say(" Cancel hook running…%s", keptText(rel))
		}
		r.thread(rel, text)
		if rel.Requester != r.m.User {
			r.dm(rel.Requester, say("%s was cancelled by %s%s.", TicketRef(rel), Person(r.m.User), why))
		}
		msg := say("%s is cancelled.", rel.Ticket)
		if hook != nil {
			msg = msg.say(" The cancel hook is running%s", keptText(rel))
		}
		r.reply(msg)
	}
	if free || (hook == nil && !rel.Turn.IsZero()) {
		// Locks freed, or a turn given up: the next in line may go.
		return r.tellNext(r.s.envName(rel), rel.Locks)
	}
	return nil
}

// keptText says which locks a cancelled release keeps while its cancel hook
// runs, as the end of a sentence.
func keptText(rel Release) string {
	if len(rel.Locks) == 0 {
		return "."
	}
	return fmt.Sprintf("; %s stay locked until it ends.", strings.Join(rel.Locks, ", "))
}

// tellNext tells "you're next" to each release of environment env ("": of
// every environment) that can start now and waits for one of the freed
// components; with a claim window its turn begins (turns.go).
func (r *cmdRun) tellNext(env string, freed []string) error {
	if len(freed) == 0 {
		return nil
	}
	if env == "" {
		for _, e := range r.s.cfg.Policy.Envs {
			if err := r.tellNext(e.Name, freed); err != nil {
				return err
			}
		}
		return nil
	}
	open, locks, err := r.openAndLocks()
	if err != nil {
		return err
	}
	for _, o := range r.s.nextUp(queueOrder(open), locks, env) {
		wants := len(o.Locks) == 0 && slices.Contains(freed, AllComponents)
		for _, c := range o.Locks {
			wants = wants || slices.Contains(freed, c)
		}
		if wants {
			if held, err := r.freezesOn(env, o.Components); err != nil {
				return err
			} else if len(held) > 0 {
				continue // a freeze window still holds it: told when that one ends
			}
			if err := r.tellYoureNext(o); err != nil {
				return err
			}
		}
	}
	return nil
}
