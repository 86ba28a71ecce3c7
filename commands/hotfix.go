package commands

import (
	"cmp"
	"slices"
	"strings"
)

// Hotfixes: dobro … hotfix asks for a release to go first. It does once an
// admin of its environment agreed, by accepting it (an admin who is also
// an approver; with approvals: N, an admin's approval among the N) or by
// claiming it with here, and it is accepted: from then on it stands ahead
// of every waiting release in the queue's order — which queue, position,
// dep start's "no jumping the queue" and "you're next" all read — behind
// only the hotfixes let go first before it. Approvals by non-admins never
// make it jump. Letting it go first is audited (ActionHotfix).

// HotfixWord is the dobro flag for a release that asks to go first.
const HotfixWord = "hotfix"

// ActionHotfix is audited when an admin lets a hotfix go first; from = to =
// the release's state (the state does not change).
const ActionHotfix Action = "hotfix"

// first reports whether rel goes ahead of the waiting releases: a hotfix
// an admin let go first, once it is accepted.
func first(rel Release) bool {
	return rel.Hotfix && rel.FirstBy != "" && rel.State != StateRequested
}

// queueOrder returns open (in ID order) in the queue's order: the waiting
// releases with the hotfixes that go first ahead, in the order they were
// let go, then the others in the order turns give them (turnOrder: by ID,
// a release whose claim window passed behind the one that took its turn). A release that holds its locks (deploying,
// failed) keeps its place: a hotfix overtakes the waiting, it does not
// stop a deploy.
func queueOrder(open []Release) []Release {
	open = turnOrder(open)
	if !slices.ContainsFunc(open, first) {
		return open // nothing jumps: no copy, as before hotfixes
	}
	out := slices.Clone(open)
	var slots []int
	var waiting []Release
	for i, o := range out {
		if !o.State.HoldsLocks() {
			slots, waiting = append(slots, i), append(waiting, o)
		}
	}
	slices.SortStableFunc(waiting, func(a, b Release) int {
		switch fa, fb := first(a), first(b); {
		case fa && fb:
			return cmp.Or(a.FirstSince.Compare(b.FirstSince), cmp.Compare(a.ID, b.ID))
		case fa:
			return -1
		case fb:
			return 1
		}
		return 0
	})
	for k, i := range slots {
		out[i] = waiting[k]
	}
	return out
}

// queued returns the open releases in the queue's order.
func (r *cmdRun) queued() ([]Release, error) {
	open, err := r.tx.Open()
	if err != nil {
		return nil, err
	}
	return queueOrder(open), nil
}

// letFirst records that the admin running this command (accept, here)
// lets rel, a hotfix, go first, and audits it naming the waiting releases
// of its environment it goes ahead of. Anyone else's command, or a
// release that is no hotfix or was let go already, leaves rel as it is.
func (r *cmdRun) letFirst(rel Release) (Release, error) {
	env := r.s.envName(rel)
	if !rel.Hotfix || rel.FirstBy != "" || !r.rolesIn(env).admin {
		return rel, nil
	}
	open, err := r.queued()
	if err != nil {
		return rel, err
	}
	var overtaken []string
	for _, o := range open {
		if o.ID == rel.ID {
			break
		}
		if r.s.envName(o) == env && !o.State.HoldsLocks() && !first(o) {
			overtaken = append(overtaken, o.Ticket)
		}
	}
	rel.FirstBy, rel.FirstSince = r.m.User, r.now
	if rel, err = r.tx.PutRelease(rel); err != nil {
		return rel, err
	}
	detail := "goes first in " + env
	if len(overtaken) > 0 {
		detail += ": ahead of " + strings.Join(overtaken, ",")
	}
	if rel.State == StateRequested {
		detail += "; once accepted"
	}
	if err := r.auditRelease(ActionHotfix, rel, rel.State, rel.State, detail); err != nil {
		return rel, err
	}
	msg := say("Hotfix: %v lets %v go first", Person(r.m.User), TicketRef(rel))
	if len(overtaken) > 0 {
		msg = msg.say(", ahead of %s", joinTickets(overtaken))
	}
	if rel.State == StateRequested {
		msg = msg.plain(", once it is accepted")
	}
	r.thread(rel, msg.plain("."))
	return rel, nil
}

// hotfixText says where a hotfix stands, for the card and the approvers;
// nil for a release that is no hotfix.
func hotfixText(rel Release) Text {
	switch {
	case !rel.Hotfix:
		return nil
	case rel.FirstBy == "":
		return say("hotfix: asks to go first (an admin's accept or here lets it)")
	}
	return say("hotfix: goes first (let by %v)", Person(rel.FirstBy))
}

// cutHotfix removes the hotfix flag from the end of dobro's note words.
func cutHotfix(note []string) ([]string, bool) {
	if n := len(note); n > 0 && strings.EqualFold(note[n-1], HotfixWord) {
		return note[:n-1], true
	}
	return note, false
}
