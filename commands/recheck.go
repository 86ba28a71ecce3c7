package commands

import (
	"context"
	"slices"
	"strings"
)

// The re-check at dep start (tracker.recheck_on_start; SPEC "Reminders,
// freezes and expiry"). An approval was given for the ticket as it was
// then; before a release's first start (accepted or claimed) dep start asks
// the tracker again, in prepare, outside the transaction. A ticket the
// rules now refuse, or whose fix versions differ from those stored at
// dobro, voids the approval (ActionVoid, by the person who ran dep start)
// and the start is refused with the reason. A tracker that cannot answer
// refuses the start and changes nothing: the approval is not voided on a
// guess. A re-start after a failure or an interrupted hook is not
// re-checked: the approval was used by the first start.

// prepareRecheck asks the tracker for cmd's ticket again, and expands the
// approvers and admins a voided approval tells, when the check is on.
func (s *Service) prepareRecheck(ctx context.Context, cmd Command, p *prepared) {
	if !s.cfg.RecheckOnStart || cmd.Ticket == "" {
		return
	}
	may := false // nobody who may start anything costs the tracker a lookup
	for _, ro := range p.roles {
		may = may || (ro.err == nil && (ro.requester || ro.admin || ro.deployer))
	}
	if !may {
		return // refused in the transaction, before the re-check matters
	}
	p.recheck = true
	p.ticket, p.ticketErr = s.cfg.Tracker.Ticket(ctx, cmd.Ticket)
	if p.ticketErr != nil {
		return // refused: nobody to tell
	}
	p.envApprovers, p.admins = map[string][]string{}, map[string][]string{}
	for _, e := range s.cfg.Policy.Envs {
		p.envApprovers[e.Name] = s.expand(ctx, e.Approvers)
		p.admins[e.Name] = s.expand(ctx, e.Admins)
	}
}

// recheck decides, for rel about to start for the first time, whether the
// ticket read again still carries its approval. It returns an error (a
// refusal that changes nothing) when the tracker did not answer, and true
// when it voided the approval and answered the actor: the start ends there,
// committed, since the void must stay.
func (r *cmdRun) recheck(rel Release) (bool, error) {
	if !r.s.cfg.RecheckOnStart {
		return false, nil
	}
	if !r.pre.recheck {
		return false, Errorf(EUNAVAILABLE, "Could not check %s again in the tracker: not started, try again.", rel.Ticket)
	}
	if err := r.pre.ticketErr; err != nil {
		r.s.cfg.Log.Error().Err(err).Str("ticket", rel.Ticket).Msg("tracker re-check at dep start failed")
		switch ErrorCode(err) {
		case ENOTFOUND, EFORBIDDEN:
			return false, Errorf(ErrorCode(err), "%s Not started; nothing changed.", strings.TrimSpace(ErrorMessage(err)))
		}
		return false, Errorf(EUNAVAILABLE, "Could not reach the tracker to check %s again: not started, nothing changed; try again.", rel.Ticket)
	}
	problems := r.s.cfg.Policy.Rules.Check(r.pre.ticket)
	if rel.FixVersionsRead && !sameVersions(rel.FixVersions, r.pre.ticket.FixVersions) {
		problems = append(problems, "fix version changed from "+versionsText(rel.FixVersions)+" to "+versionsText(r.pre.ticket.FixVersions))
	}
	if len(problems) == 0 {
		return false, nil
	}
	reasons := strings.Join(problems, "; ")
	env := r.s.envName(rel)
	rel, err := r.voidApproval(rel, "ticket changed since the approval: "+reasons,
		say("the ticket changed since the approval (%s)", reasons), r.pre.envApprovers[env], r.pre.admins[env],
		func(x *Release) {
			// The next approval is for the ticket as it is now: without
			// this, a retargeted ticket would be voided at every start.
			x.FixVersions, x.FixVersionsRead = slices.Clone(r.pre.ticket.FixVersions), true
		})
	if err != nil {
		return false, err
	}
	r.reply(say("%v was not started: the ticket changed since the approval (%s). Its approval is void: it is requested again and needs a new approval.", TicketRef(rel), reasons))
	return true, nil
}

// sameVersions reports whether a and b name the same fix versions, in any
// order.
func sameVersions(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// versionsText lists fix versions for people, "none" for none.
func versionsText(vs []string) string {
	if len(vs) == 0 {
		return "none"
	}
	return strings.Join(vs, ", ")
}
