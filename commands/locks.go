package commands

import (
	"fmt"
	"slices"
	"strings"
)

// freezeTarget authorises lock/unlock and returns the component and every lock.
func (r *cmdRun) freezeTarget() (string, []Lock, error) {
	if err := r.authorize(nil); err != nil {
		return "", nil, err
	}
	comp, err := r.component()
	if err != nil {
		return "", nil, err
	}
	locks, err := r.tx.Locks()
	return comp, locks, err
}

func (r *cmdRun) lock() error {
	comp, locks, err := r.freezeTarget()
	if err != nil {
		return err
	}
	env := r.cmd.Env // "": every environment
	for _, l := range locks {
		if l.Frozen() && l.Component == comp && (l.Env == env || l.Env == "") {
			r.reply(lockText(l, r.now, r.s.envConfigured()).capitalize().plain(" already."))
			return nil
		}
	}
	l := Lock{Component: comp, Env: env, By: r.m.User, Since: r.now, Reason: r.cmd.Text}
	if err := r.tx.PutLock(l); err != nil {
		return err
	}
	if err := r.auditFreeze(ActionLock, env, strings.TrimSuffix(comp+": "+r.cmd.Text, ": ")); err != nil {
		return err
	}
	in, unlock := r.freezeWords(comp, env)
	msg := say("Froze %s%s: no release can dep start on it until %s.", comp, in, unlock)
	if comp == AllComponents {
		msg = say("Froze every component%s: no release can dep start until %s.", in, unlock)
	}
	r.reply(msg)
	return nil
}

// freezeWords returns " in ENV" (or nothing) and the unlock command for a
// freeze of comp in env.
func (r *cmdRun) freezeWords(comp, env string) (in, unlock string) {
	if env == "" {
		return "", "unlock " + comp
	}
	return " in " + env, "unlock " + comp + " in " + env
}

// auditFreeze audits a lock or unlock of a freeze in env ("": every
// environment).
func (r *cmdRun) auditFreeze(a Action, env, detail string) error {
	_, err := r.tx.AppendAudit(AuditEntry{Time: r.now, Actor: r.m.User, Action: a, Env: env, Detail: detail, Via: r.source()})
	return err
}

func (r *cmdRun) unlock() error {
	comp, locks, err := r.freezeTarget()
	if err != nil {
		return err
	}
	env := r.cmd.Env // "": the freeze of every environment
	var held, elsewhere []string
	var left *Release // a release no longer open that holds comp
	found := false
	for _, l := range locks {
		if l.Timed() && l.Component == comp && l.Env == env {
			return Errorf(ECONFLICT, "That is the freeze %s, set until %s: end it with unfreeze %s.", l.Name, r.s.whenText(l.Until, r.now), l.Name)
		}
		if l.Frozen() && l.Component == comp {
			if l.Env == env {
				found = true
			} else {
				elsewhere = append(elsewhere, orEvery(l.Env))
			}
		}
		if !l.Frozen() && l.Component == comp && (env == "" || r.s.lockIn(l, env)) {
			held = append(held, l.Ticket)
			if rel, err := r.tx.Release(l.Release); err != nil {
				return err
			} else if !rel.State.Open() {
				left = &rel
			}
		}
	}
	if !found {
		if left != nil {
			return r.unlockLeft(comp, *left)
		}
		in, _ := r.freezeWords(comp, env)
		if len(elsewhere) > 0 {
			return Errorf(ECONFLICT, "%s is not frozen%s; it is frozen in %s: unlock %s in that environment (unlock %s in ENV; without in: the freeze of every environment).", comp, orEveryIn(env), strings.Join(elsewhere, ", "), comp, comp)
		}
		if len(held) > 0 {
			return Errorf(ECONFLICT, "%s is not frozen%s; it is locked by %s until its dep finish or cancel.", comp, in, strings.Join(held, ", "))
		}
		r.reply(say("%s is not frozen%s.", comp, in))
		return nil
	}
	if err := r.tx.DeleteLock(comp, 0, env); err != nil {
		return err
	}
	if err := r.auditFreeze(ActionUnlock, env, comp); err != nil {
		return err
	}
	in, _ := r.freezeWords(comp, env)
	r.reply(say("Unfroze %s%s.", comp, in))
	freed := []string{comp}
	if comp == AllComponents {
		// all also frees the releases that lock nothing: the freeze held them too.
		freed = append(r.lockable(), AllComponents)
	}
	return r.tellNext(env, freed)
}

// orEvery names a freeze's environment: its name, or "every environment".
func orEvery(env string) string {
	if env == "" {
		return "every environment"
	}
	return env
}

// orEveryIn is " in ENV", or " in every environment" for "".
func orEveryIn(env string) string { return " in " + orEvery(env) }

// unlockLeft frees component comp of rel, a release that is no longer open
// but kept the lock: its cancel hook's outcome is unknown after a restart,
// and an admin who checked the rollback lets the next release go. While
// the hook runs, its result frees the lock; nobody else may.
func (r *cmdRun) unlockLeft(comp string, rel Release) error {
	if rel.Running != nil {
		if p, held := r.s.heldResult(rel.Running.Attempt); held {
			// The hook has ended but its result could not be saved:
			// recording it frees every lock of the release.
			_, err := r.settle(rel, p)
			return err
		}
		return Errorf(ECONFLICT, "%s is locked by %s, %s.", comp, rel.Ticket, closingText(rel, comp, r.now))
	}
	if err := r.tx.DeleteLock(comp, rel.ID, ""); err != nil {
		return err
	}
	why := fmt.Sprintf("lock left by %s, which is %s", rel.Ticket, rel.State)
	if h := rel.LastHook; h != nil {
		why += fmt.Sprintf("; its %s hook (attempt %s): %s", h.Phase, h.Attempt, firstLine(hookDetailOrError(*h)))
	}
	if err := r.auditRelease(ActionUnlock, rel, rel.State, rel.State, comp+": "+why); err != nil {
		return err
	}
	r.thread(rel, say("%s freed %s, which %s still held.", Person(r.m.User), comp, rel.Ticket))
	r.reply(say("Freed %s: %s is %s and no longer holds it.", comp, rel.Ticket, rel.State))
	return r.tellNext(r.s.envName(rel), []string{comp})
}

// hookDetailOrError says how a hook ended, for the audit log.
func hookDetailOrError(h HookResult) string {
	if h.OK {
		return "ok"
	}
	return h.Error
}

func (r *cmdRun) component() (string, error) {
	comp := r.cmd.Component
	if comp == AllComponents {
		return comp, nil
	}
	for _, known := range r.lockable() {
		if strings.EqualFold(known, comp) {
			return known, nil
		}
	}
	return "", Errorf(EINVALID, "%s is not a lockable component (known: %s, or all).", comp, strings.Join(r.lockable(), ", "))
}

// lockable returns the components lock and unlock take: those of the
// command's environment (in ENV), else those of every environment, in
// promotion order, each once.
func (r *cmdRun) lockable() []string {
	if r.cmd.Env != "" {
		return slices.Clone(r.cmdEnv().Components)
	}
	var out []string
	for _, e := range r.s.cfg.Policy.Envs {
		for _, c := range e.Components {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}
