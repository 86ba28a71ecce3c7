package commands

import (
	"strings"
)

// build carries out CI delivery b in environment env, inside the delivery's
// transaction: every refusal is decided before the first write, so that a
// refused delivery changes nothing but its own inbox record.
func (r *cmdRun) build(b Build, env EnvPolicy) (BuildAnswer, error) {
	ci := &CIStatus{Status: b.Status, Build: b.ID, Version: b.Version, Commit: b.Commit, URL: b.URL, At: r.now}
	rel, err := r.findOpen(b.Ticket, env.Name)
	open := err == nil
	if err != nil && ErrorCode(err) != ENOTFOUND {
		return BuildAnswer{}, err
	}
	if b.Status != BuildSuccess {
		if !open {
			// Nothing to show it on; the audit still has it.
			detail := "CI build " + b.ID + " " + string(b.Status) + "; no open release in " + env.Name
			if err := r.auditRelease(ActionBuild, Release{Ticket: b.Ticket, Env: r.envField(env), Build: b.Version}, StateNone, StateNone, detail); err != nil {
				return BuildAnswer{}, err
			}
			return BuildAnswer{Outcome: BuildChanged, Reason: b.Ticket + " has no open release in " + env.Name + ": the build is only audited"}, nil
		}
		return r.buildStatus(rel, ci)
	}
	if err := r.s.ticketRefusal(b.Ticket, r.pre); err != nil {
		return BuildAnswer{Outcome: BuildRefused, Reason: ErrorMessage(err)}, nil
	}
	if open {
		return r.buildVersion(rel, ci, env)
	}
	return r.buildRequest(b, ci, env)
}

// envField is what a release in env stores as Env: nothing without
// configured environments, as dobro.
func (r *cmdRun) envField(env EnvPolicy) string {
	if r.s.envConfigured() {
		return env.Name
	}
	return ""
}

// buildStatus records a failed or pending build on rel: its card shows it,
// and a failure is said in its thread.
func (r *cmdRun) buildStatus(rel Release, ci *CIStatus) (BuildAnswer, error) {
	rel.CI, rel.Updated = ci, r.now
	rel, err := r.tx.PutRelease(rel)
	if err != nil {
		return BuildAnswer{}, err
	}
	if err := r.auditRelease(ActionBuild, rel, rel.State, rel.State, ciDetail(ci)); err != nil {
		return BuildAnswer{}, err
	}
	r.card(rel)
	if ci.Status == BuildFailure {
		r.thread(rel, say("%v CI build %s failed", Icon("x"), ci.Build).add(ciVersionText(ci)...).say(": dep start waits for a successful build."))
	}
	return BuildAnswer{Outcome: BuildChanged, Release: rel.ID, State: rel.State}, nil
}

// buildVersion sets the version of rel, the ticket's open release in env,
// to the successful build's. A release that is deploying keeps its version;
// one accepted by approvers for another version is not changed under them.
func (r *cmdRun) buildVersion(rel Release, ci *CIStatus, env EnvPolicy) (BuildAnswer, error) {
	changes := ci.Version != "" && ci.Version != rel.Build
	if changes && (rel.State.HoldsLocks() || rel.Running != nil) {
		return BuildAnswer{Outcome: BuildRefused, Release: rel.ID, State: rel.State,
			Reason: rel.Ticket + " is " + string(rel.State) + " in " + env.Name + " with " + versionText(rel.Build) + ": a new version waits until it is done or cancelled"}, nil
	}
	if changes && env.Approval && rel.State != StateRequested {
		return BuildAnswer{Outcome: BuildRefused, Release: rel.ID, State: rel.State,
			Reason: rel.Ticket + " was accepted in " + env.Name + " for " + versionText(rel.Build) + ": cancel it to request " + versionText(ci.Version)}, nil
	}
	detail := ciDetail(ci)
	if changes {
		detail += "; version was " + orEmpty(rel.Build)
		rel.Build = ci.Version
		if len(rel.Approvals) > 0 {
			// They approved another version: it is asked afresh.
			detail += "; approvals of the old version dropped: " + strings.Join(rel.Approvals, ",")
			rel.Approvals = nil
		}
	}
	rel.CI, rel.Updated = ci, r.now
	rel, err := r.tx.PutRelease(rel)
	if err != nil {
		return BuildAnswer{}, err
	}
	if err := r.auditRelease(ActionBuild, rel, rel.State, rel.State, detail); err != nil {
		return BuildAnswer{}, err
	}
	r.card(rel)
	r.thread(rel, say("CI build %s succeeded", ci.Build).add(ciVersionText(ci)...).plain("."))
	if changes && env.Approval && rel.State == StateRequested {
		for _, a := range r.pre.approvers {
			if a != rel.Requester {
				text, buttons := r.askText(rel, say("CI build %s changed the version, asked afresh: ", ci.Build))
				r.dm(a, text, buttons...)
			}
		}
	}
	if env.AutoDeploy && ready(rel) {
		return r.autoStart(rel)
	}
	return BuildAnswer{Outcome: BuildChanged, Release: rel.ID, State: rel.State}, nil
}

// buildRequest opens the release of a successful build, as dobro would for
// CI: accepted at once where env needs no approval (and started where it
// deploys by itself), its approvers asked otherwise.
func (r *cmdRun) buildRequest(b Build, ci *CIStatus, env EnvPolicy) (BuildAnswer, error) {
	t := r.pre.ticket
	comps, ticketComps, locks, chosen := releaseComponents(t, b.Components, env)
	rel := Release{
		Ticket: b.Ticket, Env: r.envField(env), Build: b.Version, Summary: Clean(t.Summary), URL: t.URL,
		State: StateRequested, NeedAdmin: env.NeedsAdmin, Requester: ActorCI, Components: comps, Locks: locks,
		ComponentsChosen: chosen, TicketComponents: ticketComps, Created: r.now, Updated: r.now, CI: ci,
	}
	rel, err := r.tx.PutRelease(rel)
	if err != nil {
		return BuildAnswer{}, err
	}
	detail := ciDetail(ci) + "; components: " + strings.Join(comps, ",")
	if ComponentsDiffer(rel) {
		detail += "; the ticket's components: " + strings.Join(rel.TicketComponents, ",")
	}
	if err := r.auditRelease(ActionRequest, rel, StateNone, StateRequested, detail); err != nil {
		return BuildAnswer{}, err
	}
	if env.Approval {
		r.card(rel)
		for _, a := range r.pre.approvers {
			text, buttons := r.askText(rel, say("CI build %s succeeded, release requested by CI: ", ci.Build))
			r.dm(a, text, buttons...)
		}
		if err := r.remindApproval(rel, len(r.pre.approvers)); err != nil {
			return BuildAnswer{}, err
		}
		return BuildAnswer{Outcome: BuildChanged, Release: rel.ID, State: rel.State}, nil
	}
	if rel, err = r.move(rel, ActionAccept, "approval: none in "+env.Name, nil); err != nil {
		return BuildAnswer{}, err
	}
	if rel, _, err = r.turnIfNext(rel); err != nil {
		return BuildAnswer{}, err
	}
	r.card(rel)
	if env.AutoDeploy && ready(rel) {
		return r.autoStart(rel)
	}
	ans := BuildAnswer{Outcome: BuildChanged, Release: rel.ID, State: rel.State}
	if rel.NeedAdmin {
		r.askAdmins(rel)
		if env.AutoDeploy {
			// auto_deploy with an admin to claim it: it starts when one has.
			ans.Reason = "accepted, not started: " + env.Name + " needs an admin to claim it"
		}
	}
	return ans, nil
}

// autoStart is dep start by CI of rel, accepted in an auto_deploy
// environment: bound by locks, freezes and the queue exactly as a person's.
// When it cannot start now it stays accepted in the queue, and the answer
// and the thread say why.
func (r *cmdRun) autoStart(rel Release) (BuildAnswer, error) {
	r.cmd.Verb = VerbStart
	err := r.startRelease(rel)
	if err == nil {
		started, err := r.tx.Release(rel.ID)
		if err != nil {
			return BuildAnswer{}, err
		}
		return BuildAnswer{Outcome: BuildChanged, Release: started.ID, State: started.State}, nil
	}
	e, refused := err.(*Error)
	if !refused || e.Code == EINTERNAL {
		return BuildAnswer{}, err
	}
	if err := r.auditRelease(ActionRefused, rel, StateNone, StateNone, string(VerbStart)+": "+e.Message); err != nil {
		return BuildAnswer{}, err
	}
	r.thread(rel, say("auto_deploy: not started yet: ").add(e.text()...))
	return BuildAnswer{Outcome: BuildChanged, Release: rel.ID, State: rel.State, Reason: "accepted and queued, not started: " + e.Message}, nil
}

// ciDetail is the audit detail of a CI build.
func ciDetail(ci *CIStatus) string {
	d := "CI build " + ci.Build + " " + string(ci.Status)
	if ci.Version != "" {
		d += "; version " + ci.Version
	}
	if ci.Commit != "" {
		d += "; commit " + ci.Commit
	}
	return d
}

// ciVersionText is " (version v, commit c)" for a build, or nothing.
func ciVersionText(ci *CIStatus) Text {
	var parts []string
	if ci.Version != "" {
		parts = append(parts, "version "+ci.Version)
	}
	if ci.Commit != "" {
		parts = append(parts, "commit "+shortCommit(ci.Commit))
	}
	if len(parts) == 0 {
		return nil
	}
	return say(" (%s)", strings.Join(parts, ", "))
}
