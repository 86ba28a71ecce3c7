package commands

import (
	"fmt"
	"strings"
)

// rollback COMPONENT [in ENV] [to VERSION]: a release that deploys again
// the version done before the current one of a component in an environment
// (or the one named), through the same approvals, checks, locks and hooks
// as any release. Its ticket is the ticket of the release that deployed
// that version. The release it replaces, the current one, is marked rolled
// back (Release.RolledBack) and audited as ActionRolledBack, which a report
// counts as a change failure (docs/audit.md).

// parseRollback reads what follows rollback: a component, then, in either
// order and each at most once, "in ENV" (only with environments) and "to
// VERSION".
func parseRollback(args []string, envs []string) (Command, error) {
	v := VerbRollback
	if len(args) == 0 {
		return Command{}, Errorf(EINVALID, "rollback needs a component: rollback backend [in production] [to 2.4.0].")
	}
	comp := strings.ToLower(args[0])
	if !ValidComponent(comp) || comp == AllComponents {
		return Command{}, Errorf(EINVALID, "%s is not a component name (letters, digits, . _ -): rollback backend.", quoteArg(args[0]))
	}
	c := Command{Verb: v, Component: comp}
	rest := args[1:]
	for len(rest) > 0 {
		switch w := strings.ToLower(rest[0]); {
		case w == "in" && len(envs) > 0 && c.Env == "":
			env, err := envArg(v, w, rest[1:], envs)
			if err != nil {
				return Command{}, err
			}
			c.Env = env
		case w == "to" && c.Build == "":
			if len(rest) < 2 || !ValidBuild(rest[1]) {
				got := "nothing"
				if len(rest) >= 2 {
					got = quoteArg(rest[1])
				}
				return Command{}, Errorf(EINVALID, "to needs a version like 2.4.0 (letters, digits, . _ + -, at most 128), not %s: rollback %s to 2.4.0.", got, comp)
			}
			c.Build = rest[1]
		default:
			return Command{}, Errorf(EINVALID, "rollback takes a component, then in ENV and to VERSION: rollback %s in production to 2.4.0, not %s.", comp, quoteArg(rest[0]))
		}
		rest = rest[2:]
	}
	return c, nil
}

// rollback opens the release that takes r.cmd.Component back, in the
// command's environment (without in: the default one), to the version
// done there before the current one, or to r.cmd.Build.
func (r *cmdRun) rollback() error {
	if !r.s.envConfigured() {
		return Errorf(EINVALID, "There are no versions to roll back to: releases carry a version only with environments configured (docs/configuration.md).")
	}
	env := r.cmdEnv()
	r.cmd.Env = env.Name // authorise in the environment it rolls back
	if err := r.authorize(nil); err != nil {
		return err
	}
	comp := r.cmd.Component
	cur, ok, err := r.deployedNow(env.Name, comp)
	if err != nil {
		return err
	}
	if !ok {
		if !r.knownComponent(comp) {
			return Errorf(ENOTFOUND, "%s is not a known component (known: %s): nothing to roll back.", comp, strings.Join(r.lockable(), ", "))
		}
		return Errorf(ENOTFOUND, "Nothing to roll back: no release of %s is done in %s yet.", comp, env.Name)
	}
	if err := r.noOpenRollback(env.Name, comp); err != nil {
		return err
	}
	target, err := r.rollbackTarget(env.Name, comp, cur)
	if err != nil {
		return err
	}
	if open, err := r.findOpen(target.Ticket, env.Name); err == nil {
		return Errorf(ECONFLICT, "%s, which deployed %s, is open in %s (%s): finish or cancel it first (cancel %s).", target.Ticket, versionText(target.Build), env.Name, open.State, r.s.ref(open))
	} else if ErrorCode(err) != ENOTFOUND {
		return err
	}
	replaced, err := r.tx.Release(cur.Release)
	if err != nil {
		return err
	}
	src := target
	src.Components, src.ComponentsChosen, src.TicketComponents = []string{comp}, false, nil
	src.Hotfix = false // the version's old release may have been one; the rollback asks nothing
	src.Note = fmt.Sprintf("rollback of %s from %s", comp, versionText(cur.Build))
	rel, err := r.openFollowing(src, env, r.m.User, fmt.Sprintf("rollback of %s from %s (%s) to %s (%s)", comp, orNoVersion(cur.Build), cur.Ticket, target.Build, target.Ticket), func(x *Release) { x.RollbackOf = replaced.ID })
	if err != nil {
		return err
	}
	// The release replaced is marked now, when the team decides it failed:
	// that is when a report's time to restore starts.
	replaced.RolledBack = rel.ID
	if replaced, err = r.tx.PutRelease(replaced); err != nil {
		return err
	}
	detail := fmt.Sprintf("%s: rolled back to %s by %s (release %d)", comp, target.Build, target.Ticket, rel.ID)
	if err := r.auditRelease(ActionRolledBack, replaced, replaced.State, replaced.State, detail); err != nil {
		return err
	}
	r.thread(replaced, say("%v asked to roll %s back to %s (%v).", Person(r.m.User), comp, versionText(target.Build), TicketRef(rel)))
	pos, err := r.position(rel.ID)
	if err != nil {
		return err
	}
	msg := say("Rollback of %s in %s from %s to %s: %v, whose release deployed it, is in the queue (#%d). ", comp, env.Name, orNoVersion(cur.Build), versionText(target.Build), TicketRef(rel), pos)
	switch {
	case !env.Approval && rel.NeedAdmin:
		r.askAdmins(rel)
		r.reply(msg.say("Accepted: %s needs no approval. Waiting for an admin to claim it.", env.Name))
		return nil
	case !env.Approval:
		r.reply(msg.say("Accepted: %s needs no approval. You may start: dep start %s.", env.Name, r.s.ref(rel)))
		return nil
	}
	asked := 0
	for _, a := range r.pre.envApprovers[env.Name] {
		if a == rel.Requester {
			continue
		}
		asked++
		text, buttons := r.askText(rel, say("%s asks to roll %s back from %s: ", Person(rel.Requester), comp, orNoVersion(cur.Build)))
		r.dm(a, text, buttons...)
	}
	if asked == 0 {
		r.reply(msg.plain("No approver is configured to ask: tell an admin."))
		return nil
	}
	r.reply(msg.say("Asked %d approver(s).", asked))
	return nil
}

// deployedNow returns what the "what is where" index holds for comp in env.
func (r *cmdRun) deployedNow(env, comp string) (Deployed, bool, error) {
	all, err := r.tx.Deployed()
	if err != nil {
		return Deployed{}, false, err
	}
	for _, d := range all {
		if d.Env == env && d.Component == comp {
			return d, true, nil
		}
	}
	return Deployed{}, false, nil
}

// noOpenRollback refuses a second rollback of comp in env while one is
// open: two would each mark the same release rolled back, and race.
func (r *cmdRun) noOpenRollback(env, comp string) error {
	open, err := r.tx.Open()
	if err != nil {
		return err
	}
	for _, o := range open {
		if o.RollbackOf != 0 && r.s.envName(o) == env && contains(o.Components, comp) {
			return Errorf(ECONFLICT, "%s in %s is being rolled back already: %s %s is %s (cancel %s to choose another version).", comp, env, o.Ticket, versionText(o.Build), o.State, r.s.ref(o))
		}
	}
	return nil
}

// walkBackMax bounds how many releases walkBack reads one by one (a
// round trip each on PostgreSQL) before the history, read at once, is
// cheaper.
const walkBackMax = 200

// walkBack follows Release.Replaced for comp from release id and returns
// the first release before it that want accepts. complete is true when
// the chain was followed to its start (a release done first there): then
// none found means none exists. It is false when the chain ends at a
// release done before Replaced was kept, or is longer than walkBackMax.
func (r *cmdRun) walkBack(id uint64, comp string, want func(Release) bool) (Release, bool, error) {
	for range walkBackMax {
		rel, err := r.tx.Release(id)
		if ErrorCode(err) == ENOTFOUND {
			return Release{}, false, nil
		} else if err != nil {
			return Release{}, false, err
		}
		prev, kept := rel.Replaced[comp]
		switch {
		case !kept:
			return Release{}, false, nil
		case prev == 0:
			return Release{}, true, nil
		}
		x, err := r.tx.Release(prev)
		if ErrorCode(err) == ENOTFOUND {
			return Release{}, false, nil
		} else if err != nil {
			return Release{}, false, err
		}
		if want(x) {
			return x, true, nil
		}
		id = prev
	}
	return Release{}, false, nil
}

// knownComponent reports whether comp is lockable in some environment.
func (r *cmdRun) knownComponent(comp string) bool {
	for _, c := range r.lockable() {
		if c == comp {
			return true
		}
	}
	return false
}

// rollbackTarget returns the done release of comp in env to go back to:
// with a version named, the last one done there with it; else the last
// one done before cur with another version, passing over releases rolled
// back already. It walks back from cur along Release.Replaced; only where
// that chain does not reach (releases done before it was kept, or more
// than walkBackMax back) does it read the release history, where a
// release's done time is its Updated.
func (r *cmdRun) rollbackTarget(env, comp string, cur Deployed) (Release, error) {
	if r.cmd.Build != "" && versionText(r.cmd.Build) == versionText(cur.Build) {
		return Release{}, Errorf(ECONFLICT, "%s in %s is at %s already (%s): nothing to roll back.", comp, env, versionText(cur.Build), cur.Ticket)
	}
	none := func() error {
		if r.cmd.Build != "" {
			return Errorf(ENOTFOUND, "%s was never done for %s in %s: roll back to a version done there (where %s shows the current one).", versionText(r.cmd.Build), comp, env, comp)
		}
		return Errorf(ENOTFOUND, "Nothing to roll back to: %s in %s is at %s (%s), and no earlier version of it is done there.", comp, env, orNoVersion(cur.Build), cur.Ticket)
	}
	// First back along the releases each done one replaced there.
	x, complete, err := r.walkBack(cur.Release, comp, func(x Release) bool {
		if r.cmd.Build != "" {
			return x.Build != "" && versionText(x.Build) == versionText(r.cmd.Build)
		}
		return x.Build != "" && x.Build != cur.Build && x.RolledBack == 0
	})
	switch {
	case err != nil:
		return Release{}, err
	case x.ID != 0:
		return x, nil
	case complete:
		return Release{}, none()
	}
	// The chain ends at a release done before it was kept, or is longer
	// than walkBackMax: the history tells.
	all, err := r.tx.Recent(0)
	if err != nil {
		return Release{}, err
	}
	var best Release
	found := false
	for _, x := range all {
		if x.State != StateDone || x.ID == cur.Release || x.Build == "" || r.s.envName(x) != env || !contains(x.Components, comp) {
			continue
		}
		if r.cmd.Build != "" {
			if versionText(x.Build) != versionText(r.cmd.Build) {
				continue
			}
		} else if x.Build == cur.Build || x.RolledBack != 0 || x.Updated.After(cur.Done) {
			continue
		}
		if !found || x.Updated.After(best.Updated) {
			best, found = x, true
		}
	}
	if !found {
		return Release{}, none()
	}
	return best, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// orNoVersion shows a version, or says there is none.
func orNoVersion(build string) string {
	if build == "" {
		return "no version"
	}
	return versionText(build)
}
