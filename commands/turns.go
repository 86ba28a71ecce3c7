package commands

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Turns: the queue is a hand-off, not a wall (SPEC "Environments and
// versions"). When a release becomes the next ready one for its components
// in its environment it is told "you're next" and has the claim window
// (Config.ClaimWindow) to dep start. Release.Turn holds when that window
// ends and a DueClaimTurn record, written in the same transaction, ends it:
// if the release has not started by then, the turn passes to the releases
// that are next once it steps aside (passTurn), and it moves right behind
// the last of them (Release.Behind). A dep start deletes the record (the
// release leaves accepted or claimed). Locks are what truly bind: a release
// whose turn passed may start whenever no lock and no release ahead of it
// in queueOrder wants its components.

// DueClaimTurn ends a release's claim window: the turn passes on unless it
// has started.
const DueClaimTurn DueKind = "claim-turn"

// ActionPassTurn records that a release's claim window ended without a dep
// start and its turn passed to the next in line. It changes no state (From
// and To are StateNone), so the audit log's replay passes over it.
const ActionPassTurn Action = "pass_turn"

func init() {
	dueKinds[DueClaimTurn] = dueKind{
		state: StateAccepted,
		more:  []State{StateClaimed},
		fire:  (*firing).passTurn,
	}
}

// turnOrder returns open (ordered by ID, as Tx.Open returns it) in the
// order turns give it: by ID, except that a release whose turn passed
// (Behind set) stands right behind the release that took it, as long as
// that one is in open; several behind the same one keep their ID order.
// queueOrder (hotfix.go), the one place that decides the order in which
// waiting releases take a component, applies it first, then lets the
// hotfixes go ahead: checkLocks, nextUp, queue and the hand-off estimates
// all read queueOrder.
func turnOrder(open []Release) []Release {
	if !slices.ContainsFunc(open, func(o Release) bool { return o.Behind != 0 }) {
		return open // the usual case: no turn ever passed, no map built
	}
	in := make(map[uint64]bool, len(open))
	for _, o := range open {
		in[o.ID] = true
	}
	behind := map[uint64][]int{}
	for i, o := range open {
		if o.Behind != 0 && o.Behind != o.ID && in[o.Behind] {
			behind[o.Behind] = append(behind[o.Behind], i)
		}
	}
	if len(behind) == 0 {
		return open
	}
	out := make([]Release, 0, len(open))
	placed := make([]bool, len(open))
	var put func(i int)
	put = func(i int) {
		if placed[i] {
			return
		}
		placed[i] = true
		out = append(out, open[i])
		for _, j := range behind[open[i].ID] {
			put(j)
		}
	}
	for i, o := range open {
		if o.Behind == 0 || o.Behind == o.ID || !in[o.Behind] {
			put(i)
		}
	}
	// A cycle of Behind (never written, but a store may be edited) must not
	// lose a release: what is left goes last, by ID.
	for i := range open {
		put(i)
	}
	return out
}

// nextUp returns the releases of environment env in order (queue order)
// that may start now: ready, not holding their locks, none of their
// components locked or frozen there, and none wanted by a ready release
// ahead of them (whether or not that one can start).
func (s *Service) nextUp(order []Release, locks []Lock, env string) []Release {
	busy := map[string]bool{}
	for _, l := range locks {
		if s.lockIn(l, env) {
			busy[l.Component] = true
		}
	}
	if busy[AllComponents] {
		return nil
	}
	var out []Release
	claimed := map[string]bool{} // components a ready release ahead will take first
	for _, o := range order {
		if !ready(o) || o.State.HoldsLocks() || s.envName(o) != env {
			continue
		}
		if !slices.ContainsFunc(o.Locks, func(c string) bool { return busy[c] || claimed[c] }) {
			out = append(out, o)
		}
		for _, c := range o.Locks {
			claimed[c] = true
		}
	}
	return out
}

// hasTurn reports whether rel is in its claim window at now.
func hasTurn(rel Release, now time.Time) bool { return !rel.Turn.IsZero() && rel.Turn.After(now) }

// giveTurn makes it o's turn: with a claim window (and components to
// wait for) it stores when the window ends and writes the due time that
// ends it, in r's transaction. It returns o as stored and the sentence that
// tells its people, empty when there is no window.
func (r *cmdRun) giveTurn(o Release) (Release, Text, error) {
	w := r.s.cfg.ClaimWindow
	if w <= 0 || len(o.Locks) == 0 || !ready(o) {
		return o, nil, nil
	}
	if !hasTurn(o, r.now) {
		o.Turn = r.now.Add(w)
	}
	o, err := r.tx.PutRelease(o)
	if err != nil {
		return o, nil, err
	}
	if err := r.putDue(Due{At: o.Turn, Kind: DueClaimTurn, Release: o.ID, Guard: Guard{State: o.State, Version: o.Version}}); err != nil {
		return o, nil, err
	}
	return o, r.s.turnText(o), nil
}

// turnText is the sentence that tells rel's people its claim window, empty
// when rel has none.
func (s *Service) turnText(rel Release) Text {
	if rel.Turn.IsZero() {
		return nil
	}
	return say(" It is your turn until %s: dep start by then, or the turn passes to the next in line.", s.clockAt(rel.Turn, layoutClock))
}

// tellYoureNext tells o's requester, and with a claim window its claiming
// admin, that o may start now (after a finish, a cancel hook's end, an
// unlock, a turn passed): its turn begins.
func (r *cmdRun) tellYoureNext(o Release) error {
	if hasTurn(o, r.now) {
		return nil // already told, its window runs
	}
	o, window, err := r.giveTurn(o)
	if err != nil {
		return err
	}
	text := say("You're next: %s can start now.", TicketRef(o)).add(window...)
	start := Button{Label: "Start", Command: "dep start " + r.s.ref(o), Style: "primary"}
	if o.Requester == ActorCI {
		// CI reads no DM: the release's thread tells whoever starts it.
		r.thread(o, say("Next in line: %v can start now (CI requested it): dep start %s.", TicketRef(o), r.s.ref(o)).add(window...))
	}
	r.dm(o.Requester, text, start)
	if len(window) > 0 && o.Admin != "" && o.Admin != o.Requester {
		r.dm(o.Admin, text, start)
	}
	return nil
}

// admitted follows an accept or a claim by the admin running the command
// (here): a hotfix it lets go first jumps the queue (letFirst), then rel is
// given its turn if it is next (turnIfNext), in that order, since the jump
// decides who is next.
func (r *cmdRun) admitted(rel Release) (Release, Text, error) {
	rel, err := r.letFirst(rel)
	if err != nil {
		return rel, nil, err
	}
	return r.turnIfNext(rel)
}

// turnIfNext gives rel its turn when it has just become ready (accepted
// without an admin, or claimed) and nothing is ahead of it: it returns rel
// as stored and the window's sentence to add to what its requester is
// told (empty: no turn, or no window).
func (r *cmdRun) turnIfNext(rel Release) (Release, Text, error) {
	if r.s.cfg.ClaimWindow <= 0 || len(rel.Locks) == 0 || !ready(rel) {
		return rel, nil, nil
	}
	open, locks, err := r.openAndLocks()
	if err != nil {
		return rel, nil, err
	}
	if !slices.ContainsFunc(r.s.nextUp(queueOrder(open), locks, r.s.envName(rel)), func(o Release) bool { return o.ID == rel.ID }) {
		return rel, nil, nil
	}
	return r.giveTurn(rel)
}

// passTurn fires at the end of rel's claim window. Unless rel is no longer
// the one whose turn it is, the turn passes to the releases that become
// next once rel (and those that already stand behind it) steps aside; rel,
// with those behind it, moves right behind the last of them, and its
// people are told. When only releases whose turn passed before wait, the
// turn goes round to them in their order. When nobody else is ready for its
// components the window starts again: a turn passes only to someone.
func (f *firing) passTurn(rel Release, d Due) (*Due, error) {
	w := f.s.cfg.ClaimWindow
	if rel.Turn.IsZero() || w <= 0 || !ready(rel) {
		return nil, f.clearTurn(rel)
	}
	env := f.s.envName(rel)
	open, locks, err := f.openAndLocks()
	if err != nil {
		return nil, err
	}
	order := queueOrder(open)
	before := f.s.nextUp(order, locks, env)
	isID := func(id uint64) func(Release) bool { return func(o Release) bool { return o.ID == id } }
	if !slices.ContainsFunc(before, isID(rel.ID)) {
		return nil, f.clearTurn(rel) // a lock or a freeze came first
	}
	// The turn goes first to those that have not let rel ahead of them;
	// when only those behind rel wait, to them in their order: a round.
	takersIn := func(skip func(Release) bool) []Release {
		var rest, takers []Release
		for _, o := range order {
			if o.ID != rel.ID && !skip(o) {
				rest = append(rest, o)
			}
		}
		for _, o := range f.s.nextUp(rest, locks, env) {
			if !slices.ContainsFunc(before, isID(o.ID)) && slices.ContainsFunc(o.Locks, func(c string) bool { return slices.Contains(rel.Locks, c) }) {
				takers = append(takers, o)
			}
		}
		return takers
	}
	takers := takersIn(func(o Release) bool { return o.Behind == rel.ID })
	if len(takers) == 0 {
		takers = takersIn(func(Release) bool { return false })
	}
	if len(takers) == 0 {
		rel.Turn = f.now.Add(w)
		if rel, err = f.tx.PutRelease(rel); err != nil {
			return nil, err
		}
		return &Due{At: rel.Turn, Guard: Guard{State: rel.State, Version: rel.Version}}, nil
	}
	last := takers[len(takers)-1]
	for _, o := range open {
		if o.Behind == rel.ID {
			o.Behind = last.ID
			if slices.ContainsFunc(takers, isID(o.ID)) {
				o.Behind = 0 // its turn came round: its own place
			}
			if _, err := f.tx.PutRelease(o); err != nil {
				return nil, err
			}
		}
	}
	rel.Turn, rel.Behind = time.Time{}, last.ID
	if rel, err = f.tx.PutRelease(rel); err != nil {
		return nil, err
	}
	names := make([]string, len(takers))
	for i, t := range takers {
		names[i] = t.Ticket
	}
	if err := f.auditRelease(ActionPassTurn, rel, StateNone, StateNone, fmt.Sprintf("claim window ended without dep start; turn passed to %s; now behind %s", strings.Join(names, ","), last.Ticket)); err != nil {
		return nil, err
	}
	text := say("Your turn for %v passed to %s: nobody started it within the claim window. It keeps its place, right behind %s; you will be told when it is your turn again.", TicketRef(rel), joinTickets(names), last.Ticket)
	f.dm(rel.Requester, text)
	if rel.Admin != "" && rel.Admin != rel.Requester {
		f.dm(rel.Admin, text)
	}
	for _, t := range takers {
		t, err := f.tx.Release(t.ID) // as just stored: Behind may have changed
		if err != nil {
			return nil, err
		}
		if err := f.tellYoureNext(t); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// clearTurn forgets rel's claim window: it is no longer its turn.
func (f *firing) clearTurn(rel Release) error {
	if rel.Turn.IsZero() {
		return nil
	}
	rel.Turn = time.Time{}
	_, err := f.tx.PutRelease(rel)
	return err
}
