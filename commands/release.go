package commands

import (
	"fmt"
	"slices"
	"strings"
)

func (r *cmdRun) dobro() error {
	c := r.cmd
	if err := r.authorize(nil); err != nil {
		return err
	}
	env := r.cmdEnv()
	for _, comp := range c.Components {
		if !containsFold(env.Components, comp) {
			return Errorf(EINVALID, "%s is not a lockable component%s (known: %s): not queued.", comp, r.s.inEnvText(env.Name), strings.Join(env.Components, ", "))
		}
	}
	if rel, err := r.findOpen(c.Ticket, env.Name); err == nil {
		r.reply(say("%s is already in the queue: %s, requested by %s %s.", TicketRef(rel), rel.State, Person(rel.Requester), since(r.now, rel.Created)))
		return nil
	} else if ErrorCode(err) != ENOTFOUND {
		return err
	}
	if err := r.s.ticketRefusal(c.Ticket, r.pre); err != nil {
		if ErrorCode(err) == EUNAVAILABLE {
			r.s.cfg.Log.Error().Err(r.pre.ticketErr).Str("ticket", c.Ticket).Msg("tracker lookup failed")
		}
		return err
	}
	t := r.pre.ticket
	comps, ticketComps, locks, chosen := releaseComponents(t, c.Components, env)
	rel := Release{
		Ticket: c.Ticket, Summary: Clean(t.Summary), URL: t.URL, Note: c.Text, State: StateRequested,
		NeedAdmin: env.NeedsAdmin && !c.NoNeedAdmin, Requester: r.m.User, Components: comps, Locks: locks,
		ComponentsChosen: chosen, TicketComponents: ticketComps,
		Created: r.now, Updated: r.now, Build: c.Build, Hotfix: c.Hotfix,
		FixVersions: slices.Clone(t.FixVersions), FixVersionsRead: true,
	}
	if r.s.envConfigured() {
		rel.Env = env.Name // without environments a release names none, as before
	}
	rel, err := r.tx.PutRelease(rel)
	if err != nil {
		return err
	}
	detail := "components: " + strings.Join(comps, ",")
	if c.NoNeedAdmin && env.NeedsAdmin {
		detail += "; no admin needed"
	}
	if rel.Hotfix {
		detail += "; hotfix"
	}
	if ComponentsDiffer(rel) {
		detail += "; the ticket's components: " + strings.Join(rel.TicketComponents, ",")
	}
	if err := r.auditRelease(ActionRequest, rel, StateNone, StateRequested, detail); err != nil {
		return err
	}
	pos, err := r.position(rel.ID)
	if err != nil {
		return err
	}
	if !env.Approval {
		return r.acceptedByPolicy(rel, pos)
	}
	r.card(rel)
	asked := 0
	for _, a := range r.pre.approvers {
		if a == rel.Requester {
			continue
		}
		asked++
		r.dm(a, say("%s asks for dobro: %v%s — %s.\n%v", Person(rel.Requester), TicketRef(rel), envVersion(rel), orNone(rel.Summary), r.approvalFacts(rel)),
			Button{Label: "Approve", Command: "accept " + r.s.ref(rel), Style: "primary"},
			Button{Label: "Reject", Command: "reject " + r.s.ref(rel), Style: "danger"})
	}
	if err := r.remindApproval(rel, asked); err != nil {
		return err
	}
	r.reply(askedText(say("%v%s is in the queue (#%d). ", TicketRef(rel), envVersion(rel), pos), asked))
	return nil
}

// askedText ends msg with how many approvers were asked, or that none is
// configured.
func askedText(msg Text, asked int) Text {
	if asked == 0 {
		return msg.plain("No approver is configured to ask: tell an admin.")
	}
	return msg.say("Asked %d approver(s).", asked)
}

func orNone(s string) string {
	if s == "" {
		return "(no summary)"
	}
	return s
}

// position is the 1-based place of a release in the queue, 0 when it is
// not in it.
func (r *cmdRun) position(id uint64) (int, error) {
	open, err := r.queued()
	if err != nil {
		return 0, err
	}
	return slices.IndexFunc(open, func(o Release) bool { return o.ID == id }) + 1, nil
}

// Check returns what keeps ticket t from being released, one phrase each.
func (rules Rules) Check(t Ticket) []string {
	var out []string
	project := t.Project
	if project == "" {
		project = ProjectOf(t.Key)
	}
	if len(rules.Projects) > 0 && !containsFold(rules.Projects, project) {
		out = append(out, fmt.Sprintf("project %s is not allowed (allowed: %s)", project, strings.Join(rules.Projects, ", ")))
	}
	if len(rules.ReadyStatuses) > 0 && !containsFold(rules.ReadyStatuses, t.Status) {
		out = append(out, fmt.Sprintf("status is %s, needs %s", orEmpty(t.Status), strings.Join(rules.ReadyStatuses, " or ")))
	}
	if rules.RequireAssignee && strings.TrimSpace(t.Assignee) == "" {
		out = append(out, "no assignee")
	}
	if rules.RequireFixVersion && len(t.FixVersions) == 0 {
		out = append(out, "no fix version")
	}
	for _, f := range rules.RequiredFields {
		if strings.TrimSpace(t.Fields[f]) == "" {
			out = append(out, fmt.Sprintf("field %s is empty", f))
		}
	}
	return out
}

func orEmpty(s string) string {
	if s == "" {
		return "empty"
	}
	return s
}

func (r *cmdRun) reject() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	if rel.State != StateRequested {
		return Errorf(ECONFLICT, "%s is already %s: only a requested release can be rejected; use cancel %s instead.", rel.Ticket, rel.State, r.s.ref(rel))
	}
	if rel, err = r.move(rel, ActionReject, r.cmd.Text, func(x *Release) { x.Approver, x.Reason = r.m.User, r.cmd.Text }); err != nil {
		return err
	}
	r.card(rel)
	why := ""
	if rel.Reason != "" {
		why = ": " + rel.Reason
	}
	r.thread(rel, say("Rejected by %s%s.", Person(r.m.User), why))
	r.dm(rel.Requester, say("%s was rejected by %s%s.", TicketRef(rel), Person(r.m.User), why))
	r.reply(say("You rejected %s.", rel.Ticket))
	return nil
}

func (r *cmdRun) here() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	switch {
	case rel.Admin == r.m.User:
		r.reply(say("You already claimed %s.", TicketRef(rel)))
		return nil
	case rel.Admin != "":
		return Errorf(ECONFLICT, "%s is already claimed by %s.", rel.Ticket, Person(rel.Admin))
	case rel.State == StateRequested:
		return Errorf(ECONFLICT, "%s is not accepted yet: ask an approver.", rel.Ticket)
	case rel.State != StateAccepted:
		return Errorf(ECONFLICT, "%s is %s: only an accepted release can be claimed.", rel.Ticket, rel.State)
	}
	if rel, err = r.move(rel, ActionClaim, "", func(x *Release) { x.Admin = r.m.User }); err != nil {
		return err
	}
	rel, window, err := r.admitted(rel)
	if err != nil {
		return err
	}
	r.card(rel)
	r.thread(rel, say("Claimed by %s.", Person(rel.Admin)))
	r.dm(rel.Requester, say("%s claimed %s: you may start.", Person(rel.Admin), TicketRef(rel)).add(window...),
		Button{Label: "Start", Command: "dep start " + r.s.ref(rel), Style: "primary"})
	r.reply(say("You claimed %s.", rel.Ticket))
	return nil
}

func (r *cmdRun) cancel() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	hook := r.s.envOf(rel).Hooks.Cancel
	if hook == nil || !rel.State.HoldsLocks() {
		return r.close(rel, ActionCancel, r.cmd.Text, r.cmd.Text, nil)
	}
	// The cancel hook rolls the deploy back: the release keeps its locks
	// until the hook's result is recorded.
	hookRun := HookRun{Phase: PhaseCancel, Attempt: r.s.attempt(), Actor: r.m.User, Since: r.now}
	if err := r.close(rel, ActionCancel, r.cmd.Text, r.cmd.Text, &hookRun); err != nil {
		return err
	}
	if rel, err = r.tx.Release(rel.ID); err != nil {
		return err
	}
	r.after = append(r.after, r.s.spawn(rel, hookRun, hook))
	return nil
}
