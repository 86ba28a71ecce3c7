package commands

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The pipeline's moves between environments: what a release done in one
// environment leaves behind (done: the "what is where" index, and the next
// environment's release with request: auto), the rule a release must meet
// before dep start in an environment with after (checkPromotion), and the
// promote verb.

// done records rel, just marked done, as what runs in its environment for
// each of its components, and opens the release of every environment that
// follows it with request: auto.
func (r *cmdRun) done(rel Release) error {
	env := r.s.envName(rel)
	var was []Deployed
	if len(rel.Components) > 0 {
		var err error
		if was, err = r.tx.Deployed(); err != nil {
			return err
		}
	}
	replaced := make(map[string]uint64, len(rel.Components))
	for _, c := range rel.Components {
		replaced[c] = 0
		for _, d := range was {
			if d.Env == env && d.Component == c {
				replaced[c] = d.Release
			}
		}
		d := Deployed{Env: env, Component: c, Release: rel.ID, Ticket: rel.Ticket, Build: rel.Build, By: r.m.User, Done: r.now}
		if err := r.tx.PutDeployed(d); err != nil {
			return err
		}
	}
	if len(replaced) > 0 {
		rel.Replaced = replaced
		if _, err := r.tx.PutRelease(rel); err != nil {
			return err
		}
	}
	for _, next := range r.s.cfg.Policy.Envs {
		if next.After != env || !next.RequestAuto {
			continue
		}
		if _, err := r.findOpen(rel.Ticket, next.Name); err == nil {
			continue // already requested there
		} else if ErrorCode(err) != ENOTFOUND {
			return err
		}
		opened, err := r.openFollowing(rel, next, rel.Requester, "request: auto after "+env)
		if err != nil {
			return err
		}
		r.thread(rel, say("Requested %v%s by itself (request: auto), for %v.", TicketRef(opened), envVersion(opened), Person(opened.Requester)))
		r.dm(opened.Requester, r.followingText(opened, env))
		if opened.State == StateRequested || opened.NeedAdmin {
			// Who to ask is looked up outside this transaction.
			r.after = append(r.after, r.s.askLater(opened.ID, env))
		}
	}
	return nil
}

// openFollowing opens src's release in environment next, for the same
// version and components, requested by requester, and accepts it at once
// where next needs no approval. detail is the request's audit detail;
// change, if any, sets more of the release before it is first stored.
func (r *cmdRun) openFollowing(src Release, next EnvPolicy, requester, detail string, change ...func(*Release)) (Release, error) {
	var locks []string
	for _, c := range src.Components {
		if next.Lockable(c) {
			locks = append(locks, c)
		}
	}
	rel := Release{
		Ticket: src.Ticket, Env: next.Name, Build: src.Build, Summary: src.Summary, URL: src.URL, Note: src.Note,
		State: StateRequested, NeedAdmin: next.NeedsAdmin, Requester: requester,
		Components: slices.Clone(src.Components), Locks: locks,
		ComponentsChosen: src.ComponentsChosen, TicketComponents: slices.Clone(src.TicketComponents),
		Created: r.now, Updated: r.now,
		Hotfix: src.Hotfix, // still asks to go first; an admin of next lets it

	}
	for _, f := range change {
		f(&rel)
	}
	rel, err := r.tx.PutRelease(rel)
	if err != nil {
		return rel, err
	}
	detail += "; components: " + strings.Join(rel.Components, ",")
	if err := r.auditRelease(ActionRequest, rel, StateNone, StateRequested, detail); err != nil {
		return rel, err
	}
	if !next.Approval {
		if rel, err = r.move(rel, ActionAccept, "approval: none in "+next.Name, nil); err != nil {
			return rel, err
		}
		if rel, _, err = r.turnIfNext(rel); err != nil {
			return rel, err
		}
	}
	r.card(rel)
	return rel, nil
}

// followingText tells the requester of rel, opened after its release was
// done in env, what happens next.
func (r *cmdRun) followingText(rel Release, env string) Text {
	t := say("%v was done in %s: I requested %v%s for you.", TicketRef(rel), env, TicketRef(rel), envVersion(rel))
	switch {
	case rel.State == StateRequested:
		return t.plain(" Its approvers are asked.")
	case rel.NeedAdmin:
		return t.plain(" Waiting for an admin to claim it.")
	}
	return t.say(" You may start: dep start %s.", r.s.ref(rel)).add(r.s.turnText(rel)...)
}

// askAdmins DMs the admins of rel's environment to claim it.
func (r *cmdRun) askAdmins(rel Release) {
	for _, a := range r.pre.admins[r.s.envName(rel)] {
		r.dm(a, say("%v%s needs an admin: %s — requested by %s.", TicketRef(rel), envVersion(rel), orNone(rel.Summary), Person(rel.Requester)),
			Button{Label: "Claim", Command: "here " + r.s.ref(rel), Style: "primary"})
	}
}

// askText is the approvers' DM for rel, with its buttons.
func (r *cmdRun) askText(rel Release, why Text) (Text, []Button) {
	t := say("%v%s — %s.", TicketRef(rel), envVersion(rel), orNone(rel.Summary))
	t = append(why, t...)
	return t.say("\n%v", r.approvalFacts(rel)), []Button{
		{Label: "Approve", Command: "accept " + r.s.ref(rel), Style: "primary"},
		{Label: "Reject", Command: "reject " + r.s.ref(rel), Style: "danger"},
	}
}

// checkPromotion refuses dep start of rel while its environment's after
// rule does not hold: the same version (without one, the same ticket) must
// be done in the after environment, at least bake ago. It reads the
// ticket's releases, not the "what is where" index: another ticket done
// there since does not undo this one's promotion.
func (r *cmdRun) checkPromotion(rel Release) error {
	env := r.s.envOf(rel)
	if env.After == "" {
		return nil
	}
	what := rel.Ticket
	if rel.Build != "" {
		what += " " + versionText(rel.Build)
	}
	all, err := r.tx.Releases(rel.Ticket, 0)
	if err != nil {
		return err
	}
	for _, d := range all { // newest first
		if d.State != StateDone || r.s.envName(d) != env.After || (rel.Build != "" && d.Build != rel.Build) {
			continue
		}
		until := d.Updated.Add(env.Bake)
		if r.now.Before(until) {
			// The second too, unless the bake ends on a whole minute: "until
			// 15:30" would name a moment already past while it still holds.
			layout := layoutClock
			if !until.Truncate(time.Minute).Equal(until) {
				layout = layoutClockSeconds
			}
			return Errorf(ECONFLICT, "%s was done in %s %s: bake until %s.", what, env.After, since(r.now, d.Updated), r.s.clockAt(until, layout))
		}
		return nil
	}
	return Errorf(ECONFLICT, "%s is not done in %s yet: %s needs it done there first (promote it when it is).", what, env.After, env.Name)
}

// versionText shows a version as people write it: v2.4.0 for 2.4.0, and
// a version that starts with a letter as it is.
func versionText(build string) string {
	if build != "" && build[0] >= '0' && build[0] <= '9' {
		return "v" + build
	}
	return build
}

// overrideWord names why someone other than the release's requester and
// admin starts or ends it, for the audit detail.
func (r *cmdRun) overrideWord(rel Release) string {
	if env := r.s.envOf(rel); len(env.Deployers) > 0 && r.rolesIn(env.Name).deployer {
		return "deployer"
	}
	return "admin override"
}

// promote opens the ticket's release in the next environment (or the one
// named) for the version and components of its last release, which must
// be done.
func (r *cmdRun) promote() error {
	if !r.s.envConfigured() {
		return Errorf(EINVALID, "There are no environments to promote between: configure environments (docs/configuration.md).")
	}
	src, err := r.tx.LastRelease(r.cmd.Ticket)
	if ErrorCode(err) == ENOTFOUND {
		return Errorf(ENOTFOUND, "%s has never been requested: dobro %s first.", r.cmd.Ticket, r.cmd.Ticket)
	} else if err != nil {
		return err
	}
	from := r.s.envName(src)
	if r.cmd.Env != "" {
		if open, err := r.findOpen(r.cmd.Ticket, r.cmd.Env); err == nil {
			r.reply(say("%v%s is already in the queue: %s.", TicketRef(open), envVersion(open), open.State))
			return nil
		}
	}
	if src.State != StateDone {
		return Errorf(ECONFLICT, "%s is %s in %s: promote it once it is done there.", r.cmd.Ticket, src.State, from)
	}
	target := r.cmd.Env
	if target == "" {
		names := r.s.cfg.Policy.EnvNames()
		i := slices.Index(names, from)
		if i < 0 || i+1 >= len(names) {
			return Errorf(ECONFLICT, "%s was done in %s, the last environment: there is nothing to promote it to.", r.cmd.Ticket, from)
		}
		target = names[i+1]
	}
	if target == from {
		return Errorf(EINVALID, "%s was done in %s already: promote it to another environment, or dobro %s to %s to deploy it again.", r.cmd.Ticket, from, r.cmd.Ticket, from)
	}
	r.cmd.Env = target // authorise in the environment it goes to
	if err := r.authorize(nil); err != nil {
		return err
	}
	if open, err := r.findOpen(r.cmd.Ticket, target); err == nil {
		r.reply(say("%v%s is already in the queue: %s.", TicketRef(open), envVersion(open), open.State))
		return nil
	} else if ErrorCode(err) != ENOTFOUND {
		return err
	}
	next := r.s.env(target)
	rel, err := r.openFollowing(src, next, r.m.User, fmt.Sprintf("promote from %s", from))
	if err != nil {
		return err
	}
	pos, err := r.position(rel.ID)
	if err != nil {
		return err
	}
	msg := say("Promoted %v%s from %s: in the queue (#%d). ", TicketRef(rel), envVersion(rel), from, pos)
	switch {
	case !next.Approval && rel.NeedAdmin:
		r.askAdmins(rel)
		r.reply(msg.say("Accepted: %s needs no approval. Waiting for an admin to claim it.", target))
		return nil
	case !next.Approval:
		r.reply(msg.say("Accepted: %s needs no approval. You may start: dep start %s.", target, r.s.ref(rel)).add(r.s.turnText(rel)...))
		return nil
	}
	asked := 0
	for _, a := range r.pre.envApprovers[target] {
		if a == rel.Requester {
			continue
		}
		asked++
		text, buttons := r.askText(rel, say("%s asks to promote from %s: ", Person(rel.Requester), from))
		r.dm(a, text, buttons...)
	}
	r.reply(askedText(msg, asked))
	return nil
}

// askLater returns work for after the commit that opened release id by
// itself (request: auto, after it was done in env): it looks up who to ask
// (user groups are never expanded inside a transaction) and, in a
// transaction of its own, asks the approvers of a release still waiting
// for them, or the admins of one that needs an admin to claim it. Should
// the process stop between the two transactions, the release is in the
// queue and on its card, and its requester was told; only the DMs are
// lost.
func (s *Service) askLater(id uint64, env string) func() {
	return func() {
		ctx := s.hookContext()
		var rel Release
		err := s.cfg.Store.View(ctx, func(tx Tx) error {
			var err error
			rel, err = tx.Release(id)
			return err
		})
		if err != nil {
			s.cfg.Log.Error().Err(err).Uint64("release", id).Msg("could not read a release opened by request: auto to ask for it")
			return
		}
		e := s.envOf(rel)
		approvers, admins := s.expand(ctx, e.Approvers), s.expand(ctx, e.Admins)
		err = s.cfg.Store.Update(ctx, func(tx Tx) error {
			rel, err := tx.Release(id)
			if err != nil {
				return err
			}
			r := &cmdRun{s: s, tx: tx, now: s.now(), src: SourceDobrobot, pre: prepared{admins: map[string][]string{e.Name: admins}}}
			switch {
			case rel.State == StateRequested:
				for _, a := range approvers {
					if a == rel.Requester || slices.Contains(rel.Approvals, a) {
						continue
					}
					text, buttons := r.askText(rel, say("Done in %s, requested by itself for %s (request: auto): ", env, Person(rel.Requester)))
					r.dm(a, text, buttons...)
				}
			case rel.State == StateAccepted && rel.NeedAdmin && rel.Admin == "":
				r.askAdmins(rel)
			}
			return r.flush()
		})
		if err != nil {
			s.cfg.Log.Error().Err(err).Uint64("release", id).Msg("could not ask for a release opened by request: auto")
			return
		}
		s.notify()
	}
}
