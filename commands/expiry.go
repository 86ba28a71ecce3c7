package commands

import (
	"slices"
	"strings"
	"time"
)

// Approval expiry (SPEC "Reminders, freezes and expiry", approval_ttl): an
// approval is given for the ticket as it was then. A release accepted but
// not started within Config.ApprovalTTL goes back to requested, its
// approvals void, and its approvers are asked again. The TTL counts from
// the acceptance: a claim by an admin (needs-admin environments) does not
// restart it, since the approval is no younger for it, so a claimed
// release that nobody starts expires too. An environment with approval
// none has nothing to void and no expiry. In an environment with After
// (production) nothing is expired silently: the expiry is said in the
// card's thread naming the requester, the approvers and the admins.

// DueExpireApproval voids the approval of an accepted (or claimed) release
// that was not started within approval_ttl.
const DueExpireApproval DueKind = "expire-approval"

// ActionVoid records an approval made void: the release goes back from
// accepted or claimed to requested, its approvals cleared (approval_ttl
// passed, or dep start found the ticket changed: recheck.go).
const ActionVoid Action = "void"

func init() {
	dueKinds[DueExpireApproval] = dueKind{
		state: StateAccepted,
		more:  []State{StateClaimed},
		anyOf: true,
		needs: func(p Policy) [][]string {
			var lists [][]string
			for _, e := range p.Envs {
				lists = append(lists, e.Approvers, e.Admins)
			}
			return lists
		},
		fire: (*firing).expireApproval,
	}
}

// expireLater is written by accept: the approval's expiry, unless
// approval_ttl is off. dep start and cancel delete it (leave).
func (r *cmdRun) expireLater(rel Release) error {
	ttl := r.s.cfg.ApprovalTTL
	if ttl <= 0 {
		return nil
	}
	return r.putDue(Due{At: r.now.Add(ttl), Kind: DueExpireApproval, Release: rel.ID, Guard: Guard{State: rel.State, Version: rel.Version}})
}

// expireApproval voids rel's approval at its due time. A TTL turned off
// since the record was written drops it: nothing expires.
func (f *firing) expireApproval(rel Release, d Due) (*Due, error) {
	ttl := f.s.cfg.ApprovalTTL
	if ttl <= 0 {
		return nil, nil
	}
	env := f.s.envOf(rel)
	_, err := f.voidApproval(rel, "approval_ttl "+ShortDuration(ttl)+" passed without dep start",
		say("its approval expired (not started within %s of the acceptance)", ShortDuration(ttl)),
		f.roles[strings.Join(env.Approvers, ",")], f.roles[strings.Join(env.Admins, ",")], nil)
	return nil, err
}

// voidApproval moves rel, accepted or claimed, back to requested with its
// approvals (and its admin's claim, and its turn) void, audited as
// ActionVoid with detail; why is the reason as people read it. It updates
// the card, tells the requester, the admin who had claimed it and the
// approvers (who are asked again, with the approval reminder), says it in
// the card's thread (in an environment with After naming the requester,
// the approvers and the admins: nothing there changes silently), and
// passes the turn on if rel had it. change, if set, also changes the
// release (the re-check stores the ticket's new fix versions, which the
// next approval is for).
func (r *cmdRun) voidApproval(rel Release, detail string, why Text, approvers, admins []string, change func(*Release)) (Release, error) {
	old := rel
	rel, err := r.move(rel, ActionVoid, detail, func(x *Release) {
		x.Approver, x.Approvals, x.Admin, x.Turn = "", nil, "", time.Time{}
		if change != nil {
			change(x)
		}
	})
	if err != nil {
		return rel, err
	}
	r.card(rel)
	text := say("%v%s is back to requested: %v. It needs approval again.", TicketRef(rel), envVersion(rel), why)
	if r.s.envOf(rel).After != "" {
		people := []string{rel.Requester}
		for _, u := range slices.Concat(old.Approvals, []string{old.Approver, old.Admin}, approvers, admins) {
			if u != "" && !slices.Contains(people, u) {
				people = append(people, u)
			}
		}
		r.thread(rel, text.plain(" ").add(peopleText(people)...))
	} else {
		r.thread(rel, text)
	}
	r.dm(rel.Requester, text)
	if old.Admin != "" && old.Admin != rel.Requester {
		r.dm(old.Admin, text)
	}
	asked := 0
	for _, a := range approvers {
		if a == rel.Requester {
			continue
		}
		asked++
		t, buttons := r.askText(rel, say("%v asks for dobro again — %v: ", Person(rel.Requester), why))
		r.dm(a, t, buttons...)
	}
	if err := r.remindApproval(rel, asked); err != nil {
		return rel, err
	}
	if !old.Turn.IsZero() {
		return rel, r.tellNext(r.s.envName(rel), rel.Locks) // its turn is given up
	}
	return rel, nil
}
