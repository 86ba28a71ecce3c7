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
	for _, l := range locks {
		if l.Frozen() && l.Component == comp {
			r.reply(lockText(l, r.now).capitalize().plain(" already."))
			return nil
		}
	}
	l := Lock{Component: comp, By: r.m.User, Since: r.now, Reason: r.cmd.Text}
	if err := r.tx.PutLock(l); err != nil {
		return err
	}
	if err := r.audit(ActionLock, "", StateNone, StateNone, strings.TrimSuffix(comp+": "+r.cmd.Text, ": ")); err != nil {
		return err
	}
	msg := say("Froze %s: no release can dep start on it until unlock %s.", comp, comp)
	if comp == AllComponents {
		msg = say("Froze every component: no release can dep start until unlock all.")
	}
	r.reply(msg)
	return nil
}

func (r *cmdRun) unlock() error {
	comp, locks, err := r.freezeTarget()
	if err != nil {
		return err
	}
	var held []string
	var left *Release // a release no longer open that holds comp
	found := false
	for _, l := range locks {
		if l.Frozen() && l.Component == comp {
			found = true
		}
		if !l.Frozen() && l.Component == comp {
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
		if len(held) > 0 {
			return Errorf(ECONFLICT, "%s is not frozen; it is locked by %s until its dep finish or cancel.", comp, strings.Join(held, ", "))
		}
		r.reply(say("%s is not frozen.", comp))
		return nil
	}
	if err := r.tx.DeleteLock(comp, 0, ""); err != nil {
		return err
	}
	if err := r.audit(ActionUnlock, "", StateNone, StateNone, comp); err != nil {
		return err
	}
	r.reply(say("Unfroze %s.", comp))
	freed := []string{comp}
	if comp == AllComponents {
		// all also frees the releases that lock nothing: the freeze held them too.
		freed = append(r.lockable(), AllComponents)
	}
	return r.tellNext(freed)
}

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
	return r.tellNext([]string{comp})
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
