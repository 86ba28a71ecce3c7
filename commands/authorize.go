package commands

import (
	"errors"
)

// authorize is the one authorisation check for every command and path: it
// applies the rule of the command's verb (verbs' Who) to the actor's roles
// in the environment of rel (without rel: the command's) and, for the rules
// that depend on it, to rel.
func (r *cmdRun) authorize(rel *Release) error {
	env := r.cmdEnv()
	if rel != nil {
		env = r.s.envOf(*rel)
	}
	ro := r.rolesIn(env.Name)
	if rel == nil && r.cmd.Env == "" && r.cmd.Verb != VerbDobro {
		// lock and unlock without "in" act in every environment: the
		// actor must hold the role in every one.
		ro = r.rolesEverywhere()
	}
	if ro.err != nil {
		return Errorf(EUNAVAILABLE, "Could not check your roles right now (%s): nothing was changed, try again in a minute.", ErrorMessage(ro.err))
	}
	user := r.m.User
	spec, _ := lookup(r.cmd.Verb)
	switch spec.Who {
	case whoRequester:
		if ro.notInChannel {
			return Errorf(EFORBIDDEN, "Only members of the release channel can request releases: join %s and ask there.", ChannelRef(r.s.cfg.Policy.Channel))
		}
		if !ro.requester {
			return Errorf(EFORBIDDEN, "You are not allowed to request releases: ask an admin to add you to the requesters.")
		}
	case whoApprover, whoOtherApprover:
		if !ro.approver {
			return Errorf(EFORBIDDEN, "Only approvers can %s releases: ask one of them.", r.cmd.Verb)
		}
		if spec.Who == whoOtherApprover && rel != nil && rel.Requester == user {
			return Errorf(EFORBIDDEN, "You requested %s, so you cannot approve it yourself: ask another approver.", rel.Ticket)
		}
	case whoAdmin:
		if !ro.admin {
			return Errorf(EFORBIDDEN, "Only admins can %s: ask one of them.", spec.Does)
		}
	case whoRequesterOrEnvAdmin:
		if ro.requester || ro.admin {
			return nil
		}
		if ro.notInChannel {
			return Errorf(EFORBIDDEN, "Only members of the release channel (or an admin) can %s: join %s and ask there.", r.cmd.Verb, ChannelRef(r.s.cfg.Policy.Channel))
		}
		return Errorf(EFORBIDDEN, "Only those who may request releases in %s, or its admins, can %s.", env.Name, r.cmd.Verb)
	case whoRequesterOrAdmin:
		if rel != nil && (rel.Requester == user || rel.Admin == user || ro.admin) {
			return nil
		}
		return Errorf(EFORBIDDEN, "Only the requester (%s) or an admin can %s %s.", Person(rel.Requester), r.cmd.Verb, rel.Ticket)
	case whoDeployer:
		if len(env.Deployers) == 0 {
			if rel != nil && (rel.Requester == user || rel.Admin == user || ro.admin) {
				return nil
			}
			return Errorf(EFORBIDDEN, "Only the requester (%s) or an admin can %s %s.", Person(rel.Requester), r.cmd.Verb, rel.Ticket)
		}
		if ro.deployer || ro.admin {
			return nil
		}
		return Errorf(EFORBIDDEN, "Only the deployers of %s (or an admin) can %s %s: ask one of them.", env.Name, r.cmd.Verb, rel.Ticket)
	}
	return nil
}

// cmdEnv is the policy of the environment the command names (in ENV, to
// ENV), else the default environment's.
func (r *cmdRun) cmdEnv() EnvPolicy { return r.s.env(r.cmd.Env) }

// rolesIn returns the actor's roles in environment env, as prepared.
func (r *cmdRun) rolesIn(env string) roles { return r.pre.roles[env] }

// rolesEverywhere returns the roles the actor holds in every environment.
func (r *cmdRun) rolesEverywhere() roles {
	var all roles
	for i, e := range r.s.cfg.Policy.Envs {
		ro := r.pre.roles[e.Name]
		if i == 0 {
			all = ro
			continue
		}
		all.requester = all.requester && ro.requester
		all.approver = all.approver && ro.approver
		all.admin = all.admin && ro.admin
		all.deployer = all.deployer && ro.deployer
		all.notInChannel = all.notInChannel || ro.notInChannel
		if ro.err != nil {
			all.err = ro.err
		}
	}
	return all
}

// authorizedRelease returns the open release of the command's ticket, once
// the sender may run the command on it.
func (r *cmdRun) authorizedRelease() (Release, error) {
	rel, err := r.openRelease()
	if err != nil {
		return Release{}, err
	}
	if err := r.authorize(&rel); err != nil {
		return Release{}, err
	}
	return rel, nil
}

// openRelease returns the ticket's open release, or a refusal saying how to
// request it.
func (r *cmdRun) openRelease() (Release, error) {
	rel, err := r.findOpen(r.cmd.Ticket, r.cmd.Env)
	if ErrorCode(err) == ENOTFOUND && r.cmd.Env == "" {
		if last, lerr := r.tx.LastRelease(r.cmd.Ticket); lerr == nil {
			return Release{}, Errorf(ECONFLICT, "%s is already %s (%s): request it again with dobro %s.", r.cmd.Ticket, last.State, Ago(r.now.Sub(last.Updated))+" ago", r.cmd.Ticket)
		}
		return Release{}, Errorf(ENOTFOUND, "%s is not in the queue: request it with dobro %s.", r.cmd.Ticket, r.cmd.Ticket)
	}
	if err != nil {
		return Release{}, err
	}
	if rel.Running != nil {
		p, held := r.s.heldResult(rel.Running.Attempt)
		switch {
		case !held:
			return Release{}, Errorf(ECONFLICT, "The %s hook of %s is running (since %s): wait for its result.", rel.Running.Phase, rel.Ticket, since(r.now, rel.Running.Since))
		case !r.rolesIn(r.s.envOf(rel).Name).admin:
			return Release{}, Errorf(ECONFLICT, "%s Wait, or ask an admin: an admin's command on %s records it first.", p.text(rel.Ticket, r.now), rel.Ticket)
		}
		if rel, err = r.settle(rel, p); err != nil {
			return Release{}, err
		}
		if !rel.State.Open() {
			return Release{}, errSettled
		}
	}
	return rel, nil
}

// errSettled ends an admin's command whose release was closed by the held
// hook result the command recorded first: there is nothing left to do, and
// the reply said what happened.
var errSettled = errors.New("the held hook result closed the release")

// settle records p, the held result of rel's running hook, in this
// command's transaction: an admin resolves a release whose result could not
// be saved. It returns the release as it is then. The retries stop once
// this transaction has committed.
func (r *cmdRun) settle(rel Release, p *heldResult) (Release, error) {
	after, err := r.s.applyHook(r.tx, rel.ID, p.hr, p.res, true)
	if err != nil {
		return rel, err
	}
	r.after = append(r.after, after...)
	r.after = append(r.after, func() { r.s.settled(p) })
	if rel, err = r.tx.Release(rel.ID); err != nil {
		return rel, err
	}
	r.reply(say("Recorded the held result of the %s hook of %s first (%s); %s is %s.", p.hr.Phase, rel.Ticket, p.outcome(), rel.Ticket, rel.State))
	return rel, nil
}
