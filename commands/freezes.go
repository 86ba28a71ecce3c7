package commands

import (
	"fmt"
	"strings"
	"time"
)

// The freeze commands (SPEC "Reminders, freezes and expiry").
const (
	VerbFreeze   Verb = "freeze"
	VerbUnfreeze Verb = "unfreeze"
	VerbFreezes  Verb = "freezes"
)

// activeFreeze is a freeze that holds now: a configured window or one set
// from chat (a freeze of all with an end).
type activeFreeze struct {
	name, reason string
	end          time.Time
	where        string
}

// freezesOn returns the freezes that hold a release of env with components
// comps now.
func (r *cmdRun) freezesOn(env string, comps []string) ([]activeFreeze, error) {
	var out []activeFreeze
	for _, w := range r.s.cfg.Freezes {
		if _, end, ok := w.activeAt(r.now); ok && w.covers(env, comps) {
			out = append(out, activeFreeze{name: w.Name, reason: w.Reason, end: end, where: env})
		}
	}
	locks, err := r.tx.Locks()
	if err != nil {
		return nil, err
	}
	for _, l := range locks {
		if l.Timed() && r.s.lockIn(l, env) && l.Until.After(r.now) {
			out = append(out, activeFreeze{name: l.Name, reason: l.Reason, end: l.Until, where: env})
		}
	}
	return out, nil
}

// checkFreezes refuses to start rel while a freeze window holds it, unless
// the command says force with a reason and comes from an admin of rel's
// environment. It returns the freezes forced past.
func (r *cmdRun) checkFreezes(rel Release) ([]activeFreeze, error) {
	if rel.State != StateAccepted && rel.State != StateClaimed {
		return nil, nil
	}
	env := r.s.envName(rel)
	active, err := r.freezesOn(env, rel.Components)
	if err != nil || len(active) == 0 {
		return nil, err
	}
	a := active[0]
	if !r.cmd.Force {
		return nil, Errorf(ECONFLICT, "%s is frozen by %s until %s: %s. An admin may start anyway: dep start %s force REASON.", env, a.name, r.s.whenText(a.end, r.now), orNone(a.reason), r.s.ref(rel))
	}
	if !r.rolesIn(env).admin {
		return nil, Errorf(EFORBIDDEN, "Only admins of %s can start %s during the %s freeze: ask one of them.", env, rel.Ticket, a.name)
	}
	return active, nil
}

// forced audits and announces a start that an admin forced past freezes.
func (r *cmdRun) forced(rel Release, past []activeFreeze) error {
	if len(past) == 0 {
		return nil
	}
	var names []string
	for _, a := range past {
		names = append(names, a.name)
	}
	if err := r.auditRelease(ActionForce, rel, StateNone, StateNone, fmt.Sprintf("override of freeze %s: %s", strings.Join(names, ","), r.cmd.Text)); err != nil {
		return err
	}
	r.post(say("%v %v started %v in %s during the %s freeze: %s.", Icon("warning"), Person(r.m.User), TicketRef(rel), r.s.envName(rel), strings.Join(names, ", "), r.cmd.Text))
	return nil
}

// freeze sets a one-off freeze from chat: a freeze of all components (in
// the environment named, else in every one) with an end, stored as a Lock
// with Until and Name, and a due time that ends it.
func (r *cmdRun) freeze() error {
	if err := r.authorize(nil); err != nil {
		return err
	}
	until, err := resolveUntil(r.cmd.Until, r.now, r.s.zone())
	if err != nil {
		return err
	}
	env := r.cmd.Env
	locks, err := r.tx.Locks()
	if err != nil {
		return err
	}
	for _, l := range locks {
		if l.Frozen() && l.Component == AllComponents && l.Env == env {
			if l.Timed() {
				return Errorf(ECONFLICT, "%s is already frozen by %s until %s: unfreeze %s first.", orEvery(env), l.Name, r.s.whenText(l.Until, r.now), l.Name)
			}
			return Errorf(ECONFLICT, "%s is already frozen by lock all (%v): unlock all%s first.", orEvery(env), Person(l.By), strings.TrimSuffix(" in "+env, " in "))
		}
	}
	// Named after its author, environment and end: unique, since there is
	// one per environment, and readable in unfreeze NAME.
	name := strings.ToLower(r.m.User) + "-" + strings.ToLower(until.In(r.s.zone()).Format("Jan02-1504"))
	if env != "" {
		name = strings.ToLower(r.m.User) + "-" + env + "-" + strings.ToLower(until.In(r.s.zone()).Format("Jan02-1504"))
	}
	l := Lock{Component: AllComponents, Env: env, By: r.m.User, Since: r.now, Reason: r.cmd.Text, Until: until, Name: name}
	if err := r.tx.PutLock(l); err != nil {
		return err
	}
	if err := r.putDue(Due{At: until, Kind: DueFreezeEnd, Release: windowID(name)}); err != nil {
		return err
	}
	// Audited as the lock of all it is (detail "all: …"), so that the audit
	// log's replay (audit verify, the checkpoints) knows the freeze.
	if err := r.auditFreeze(ActionLock, env, strings.TrimSuffix(fmt.Sprintf("%s: freeze %s until %s; %s", AllComponents, name, until.UTC().Format(time.RFC3339), r.cmd.Text), "; ")); err != nil {
		return err
	}
	r.post(say("%v %s is frozen by %s (%v) until %s: %s.", Icon("snowflake"), orEvery(env), name, Person(r.m.User), r.s.whenText(until, r.now), orNone(r.cmd.Text)))
	r.reply(say("Froze %s until %s as %s; it ends by itself, or earlier with unfreeze %s.", orEvery(env), r.s.whenText(until, r.now), name, name))
	return nil
}

// unfreeze ends a freeze set from chat before its time.
func (r *cmdRun) unfreeze() error {
	if err := r.authorize(nil); err != nil {
		return err
	}
	locks, err := r.tx.Locks()
	if err != nil {
		return err
	}
	for _, l := range locks {
		if l.Timed() && strings.EqualFold(l.Name, r.cmd.Name) {
			if err := r.endChatFreeze(l, say("been ended early by %v", Person(r.m.User))); err != nil {
				return err
			}
			r.reply(say("Ended the freeze %s.", l.Name))
			return nil
		}
	}
	for _, w := range r.s.cfg.Freezes {
		if strings.EqualFold(w.Name, r.cmd.Name) {
			return Errorf(ECONFLICT, "%s is a configured freeze window: change the configuration to end it, or start a release anyway with dep start TICKET force REASON.", w.Name)
		}
	}
	return Errorf(ENOTFOUND, "There is no freeze called %s: freezes lists them.", quoteArg(r.cmd.Name))
}

// endChatFreeze deletes the freeze l set from chat, audits and announces its
// end and tells the releases it held that they may start.
func (r *cmdRun) endChatFreeze(l Lock, how Text) error {
	if err := r.tx.DeleteLock(l.Component, 0, l.Env); err != nil {
		return err
	}
	if err := r.tx.DeleteDue(windowID(l.Name), DueFreezeEnd); err != nil {
		return err
	}
	// Its end is the unlock of all (the detail is the component, as the
	// replay reads it); the freeze's name and why are said in the channel.
	if _, err := r.tx.AppendAudit(AuditEntry{Time: r.now, Actor: r.m.User, Action: ActionUnlock, Env: l.Env, Detail: l.Component, Via: r.source()}); err != nil {
		return err
	}
	r.post(say("%v The freeze %s has %v: %s may deploy again.", Icon("sunny"), l.Name, how, orEvery(l.Env)))
	var envs []string
	if l.Env != "" {
		envs = []string{l.Env}
	}
	return r.tellWindowEnd(envs, nil)
}

// fireChatEnd ends a freeze set from chat at its time; one ended meanwhile
// (unfreeze, unlock all) or replaced is left alone.
func (f *firing) fireChatEnd(_ Release, d Due) (*Due, error) {
	locks, err := f.tx.Locks()
	if err != nil {
		return nil, err
	}
	for _, l := range locks {
		if l.Timed() && windowID(l.Name) == d.Release && !l.Until.After(f.now) {
			if err := f.endChatFreeze(l, say("ended at its time")); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

// freezes lists the freezes in force and the next window of each configured
// one.
func (r *cmdRun) freezes() error {
	var now, next []Text
	for _, w := range r.s.cfg.Freezes {
		if _, end, ok := w.activeAt(r.now); ok {
			now = append(now, say("\n• %s: %s, until %s — %s", w.Name, w.where(), r.s.whenText(end, r.now), orNone(w.Reason)))
		}
		if start, end, ok := w.next(r.now); ok {
			next = append(next, say("\n• %s: %s, from %s until %s — %s", w.Name, w.where(), r.s.whenText(start, r.now), r.s.whenText(end, r.now), orNone(w.Reason)))
		}
	}
	locks, err := r.tx.Locks()
	if err != nil {
		return err
	}
	for _, l := range locks {
		if l.Timed() {
			now = append(now, say("\n• %s: %s, until %s, set by %v — %s (unfreeze %s)", l.Name, orEvery(l.Env), r.s.whenText(l.Until, r.now), Person(l.By), orNone(l.Reason), l.Name))
		}
	}
	if len(now)+len(next) == 0 {
		r.reply(say("No freeze windows: none is configured and none was set from chat."))
		return nil
	}
	msg := say("Freezes now:")
	if len(now) == 0 {
		msg = say("No freeze holds now.")
	}
	for _, line := range now {
		msg = msg.say("%v", line)
	}
	if len(next) > 0 {
		msg = msg.plain("\nNext:")
		for _, line := range next {
			msg = msg.say("%v", line)
		}
	}
	r.reply(msg)
	return nil
}
