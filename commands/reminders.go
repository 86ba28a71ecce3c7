package commands

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Reminders says when the Service follows up by itself on a release that
// waits for people (SPEC "Reminders, freezes and expiry"). A zero duration
// turns its reminder off.
type Reminders struct {
	// Approval is how long a request waits for its approvers before they
	// are asked again.
	Approval time.Duration
	// Repeat is the interval of the reminders after the first, counted
	// from the last one sent; zero: one reminder only.
	Repeat time.Duration
	// Claim, Start and Deploying are the other kinds (reminders_more.go):
	// an accepted release waiting for an admin, one ready to start that
	// nobody started, one deploying this long.
	Claim, Start, Deploying time.Duration
	// EscalateAfter is how many reminders of a kind go by DM only: the
	// ones after them are also said in the card's thread. Zero: never
	// (except a deploy in an environment with after: escalate).
	EscalateAfter int
	// Quiet are the hours no reminder is sent in (quiethours.go).
	Quiet QuietHours
}

// DueRemindApproval reminds the approvers of a requested release that it
// waits for them.
const DueRemindApproval DueKind = "remind-approval"

func init() {
	dueKinds[DueRemindApproval] = dueKind{
		state: StateRequested,
		needs: func(p Policy) [][]string {
			var lists [][]string
			for _, e := range p.Envs {
				lists = append(lists, e.Approvers)
			}
			return lists
		},
		fire: quietly((*firing).remindApproval),
	}
}

// remindApproval is written by dobro: the first approval reminder, unless
// reminders.approval is off or nobody was asked.
func (r *cmdRun) remindApproval(rel Release, asked int) error {
	after := r.s.cfg.Reminders.Approval
	if after <= 0 || asked == 0 {
		return nil
	}
	return r.putDue(Due{At: r.now.Add(after), Kind: DueRemindApproval, Release: rel.ID, Guard: Guard{State: rel.State, Version: rel.Version}})
}

// remindApproval DMs the approvers of rel's environment who have not
// approved it (the requester never counts; with several approvals needed,
// those who gave one are not asked again), audits it and returns the next
// reminder, counted from now, when reminders.repeat is set: after a
// downtime one overdue reminder is sent, not one per missed interval.
func (f *firing) remindApproval(rel Release, d Due) (*Due, error) {
	if f.s.cfg.Reminders.Approval <= 0 {
		return nil, nil // turned off since it was written: dropped unsent
	}
	var to []string
	for _, a := range f.roles[strings.Join(f.s.envOf(rel).Approvers, ",")] {
		if a != rel.Requester && a != rel.Approver && !slices.Contains(rel.Approvals, a) {
			to = append(to, a)
		}
	}
	if len(to) == 0 {
		return nil, nil // nobody left to ask: the policy changed since
	}
	asked := since(f.now, rel.Created)
	for _, a := range to {
		f.dm(a, say("%v Reminder: %s still asks for dobro on %v%s — %s (asked %s).\n%v", Icon("alarm_clock"), Person(rel.Requester), TicketRef(rel), envVersion(rel), orNone(rel.Summary), asked, f.approvalFacts(rel)),
			Button{Label: "Approve", Command: "accept " + f.s.ref(rel), Style: "primary"},
			Button{Label: "Reject", Command: "reject " + f.s.ref(rel), Style: "danger"})
	}
	n := d.Repeat + 1
	if err := f.auditRelease(ActionRemind, rel, StateNone, StateNone, fmt.Sprintf("approval reminder %d to %s", n, strings.Join(to, ","))); err != nil {
		return nil, err
	}
	if err := f.escalate(rel, "approval", n, to, say("dobro on %v waits for approval", TicketRef(rel))); err != nil {
		return nil, err
	}
	every := f.s.cfg.Reminders.Repeat
	if every <= 0 {
		return nil, nil
	}
	return &Due{At: f.now.Add(every), Guard: Guard{State: rel.State, Version: rel.Version}, Repeat: n}, nil
}
