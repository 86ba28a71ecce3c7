package commands

import (
	"fmt"
	"slices"
	"strings"
)

// Approvals: an environment asks for Approvals distinct approvers (never
// the requester); each accept short of the Nth is recorded in
// Release.Approvals and audited as ActionApprove, which keeps the release
// requested; the Nth accepts it (ActionAccept, Approver set to the Nth so
// that old readers and the card keep working). A reject by any approver
// rejects it. An environment with approval none accepts a release as soon
// as it is requested (acceptedByPolicy).

func (r *cmdRun) accept() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	switch {
	case rel.Approver != "" && rel.State != StateRequested:
		r.reply(say("%s is already accepted by %s (%s).", TicketRef(rel), Person(rel.Approver), rel.State))
		return nil
	case rel.State == StateAccepted || rel.State == StateClaimed:
		r.reply(say("%s is already accepted (%s): %s needs no approval.", TicketRef(rel), rel.State, r.s.envOf(rel).Name))
		return nil
	}
	need := r.s.envOf(rel).Approvals
	if slices.Contains(rel.Approvals, r.m.User) {
		r.reply(say("You already approved %v (%d of %d): it needs another approver.", TicketRef(rel), len(rel.Approvals), need))
		return nil
	}
	if rel.State == StateRequested && len(rel.Approvals)+1 < need {
		return r.approve(rel, need)
	}
	if rel, err = r.move(rel, ActionAccept, approvalDetail(len(rel.Approvals)+1, need), func(x *Release) {
		x.Approver = r.m.User
		if need > 1 {
			x.Approvals = append(slices.Clone(x.Approvals), r.m.User)
		}
	}); err != nil {
		return err
	}
	if err := r.expireLater(rel); err != nil {
		return err
	}
	rel, window, err := r.admitted(rel)
	if err != nil {
		return err
	}
	r.card(rel)
	by := Text{Person(rel.Approver)}
	if len(rel.Approvals) > 1 {
		by = peopleText(rel.Approvals)
	}
	r.thread(rel, say("Accepted by %v.", by))
	r.accepted(rel, by, window)
	r.reply(say("You accepted %s.", rel.Ticket))
	return nil
}

// approve records one approval of rel short of the need-th: the release
// stays requested.
func (r *cmdRun) approve(rel Release, need int) error {
	rel, err := r.move(rel, ActionApprove, approvalDetail(len(rel.Approvals)+1, need), func(x *Release) {
		x.Approvals = append(slices.Clone(x.Approvals), r.m.User)
	})
	if err != nil {
		return err
	}
	if rel, err = r.letFirst(rel); err != nil {
		return err
	}
	r.card(rel)
	r.thread(rel, say("Approved by %v (%d of %d).", Person(r.m.User), len(rel.Approvals), need))
	r.reply(say("You approved %s (%d of %d): it needs %d more.", rel.Ticket, len(rel.Approvals), need, need-len(rel.Approvals)))
	return nil
}

// approvalDetail is the audit detail of the n-th of need approvals; none
// when one is enough, as before approvals could be several.
func approvalDetail(n, need int) string {
	if need <= 1 {
		return ""
	}
	return fmt.Sprintf("approval %d of %d", n, need)
}

// accepted tells the requester, and the admins when one must claim it,
// that rel was accepted (by: who accepted it; window: the sentence of its
// claim window when its turn began).
func (r *cmdRun) accepted(rel Release, by Text, window Text) {
	if rel.NeedAdmin {
		for _, a := range r.pre.admins[r.s.envOf(rel).Name] {
			r.dm(a, say("%v%s was accepted and needs an admin: %s — requested by %s.", TicketRef(rel), envVersion(rel), orNone(rel.Summary), Person(rel.Requester)),
				Button{Label: "Claim", Command: "here " + r.s.ref(rel), Style: "primary"})
		}
		r.dm(rel.Requester, say("%v%s was accepted by %v. Waiting for an admin to claim it.", TicketRef(rel), envVersion(rel), by))
		return
	}
	r.dm(rel.Requester, say("%v%s was accepted by %v: you may start.", TicketRef(rel), envVersion(rel), by).add(window...),
		Button{Label: "Start", Command: "dep start " + r.s.ref(rel), Style: "primary"})
}

// acceptedByPolicy accepts rel, just requested (#pos in the queue), in an
// environment with approval none: nobody is asked.
func (r *cmdRun) acceptedByPolicy(rel Release, pos int) error {
	env := r.s.envOf(rel)
	rel, err := r.move(rel, ActionAccept, "approval: none in "+env.Name, nil)
	if err != nil {
		return err
	}
	rel, window, err := r.turnIfNext(rel)
	if err != nil {
		return err
	}
	r.card(rel)
	msg := say("%v%s is in the queue (#%d), accepted: %s needs no approval. ", TicketRef(rel), envVersion(rel), pos, env.Name)
	if rel.NeedAdmin {
		r.askAdmins(rel)
		r.reply(msg.plain("Waiting for an admin to claim it."))
		return nil
	}
	r.reply(msg.say("You may start: dep start %s.", r.s.ref(rel)).add(window...))
	return nil
}

// approvalFacts is approvalFacts with the environment's rule: how many
// approvers must accept, when more than one.
func (r *cmdRun) approvalFacts(rel Release) Text {
	t := approvalFacts(rel)
	if n := r.s.envOf(rel).Approvals; n > 1 {
		t = t.say(" · needs %d approvals", n)
	}
	return t
}

// peopleText names users, comma-separated.
func peopleText(users []string) Text {
	var t Text
	for i, u := range users {
		if i > 0 {
			t = t.plain(", ")
		}
		t = t.add(Person(u))
	}
	return t
}

// envVersion names rel's environment and version after its ticket (" in
// qa, version 2.4.0"): empty for a release that names neither, as every
// release does without environments configured.
func envVersion(rel Release) string {
	var parts []string
	if rel.Env != "" {
		parts = append(parts, "in "+rel.Env)
	}
	if rel.Build != "" {
		parts = append(parts, "version "+rel.Build)
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, ", ")
}

// ref is how a button or a hint names rel's release: its ticket, and "in
// ENV" when environments are configured, so that the command reaches that
// release and no other of the ticket.
func (s *Service) ref(rel Release) string {
	if !s.envConfigured() {
		return rel.Ticket
	}
	return rel.Ticket + " in " + s.envOf(rel).Name
}

// inEnvText is " in ENV" when environments are configured, else empty.
func (s *Service) inEnvText(env string) string {
	if !s.envConfigured() {
		return ""
	}
	return " in " + env
}
