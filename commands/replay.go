package commands

import (
	"fmt"
	"slices"
	"strings"
)

// Projection replays the audit log, entry by entry in seq order, into the
// state it describes: the open release of each ticket, the locks releases
// hold and the freezes. Every committed change of a release's state or of a
// lock is written in the same transaction as its audit entry, so the stored
// state must equal the replay; a difference means the database was edited
// outside dobrobot (or the code wrote a change without its entry).
//
// Its memory grows with the open releases, the locks and the freezes, not
// with history: a ticket's release is forgotten once it is closed and holds
// no lock.
//
// The lock rules are those of docs/audit.md (contract A of issue 12): `start`
// takes the locks its detail lists ("locks: a,b"); `finish` frees them;
// `cancel` from a lock-holding state frees them, unless its detail names a
// "cancel hook attempt": then they stay with the cancelled release until
// that hook's `hook` or `hook_failed` entry, or an admin's `unlock` of each
// component naming the ticket.
type Projection struct {
	open      map[string]*replayed   // ticket → its open release
	lingering map[string][]*replayed // ticket → closed releases that still hold locks
	frozen    map[string]bool
}

// replayed is a release as the audit log describes it.
type replayed struct {
	state State
	locks []string // held while state holds locks, or while lingering
	// unsure: the start entry's lock list was cut short (Clean bounds a
	// detail's length), so its locks cannot be compared.
	unsure  bool
	attempt string // a lingering release's cancel hook attempt
}

// NewProjection returns a Projection of an empty log.
func NewProjection() *Projection {
	return &Projection{open: map[string]*replayed{}, lingering: map[string][]*replayed{}, frozen: map[string]bool{}}
}

// ProjectionError says how the stored state differs from the replay of the
// audit log, or where the log itself describes an impossible change.
// Callers treat it like a *ChainError: the database was changed outside
// dobrobot or is damaged.
type ProjectionError struct {
	// Seq is the entry that could not be replayed, or 0 when the log
	// replays and the store differs from it.
	Seq uint64
	// Differences are sentences naming a component or ticket first, e.g.
	// "backend: the audit log says PAY-3 holds it, the store has no lock".
	Differences []string
}

func (e *ProjectionError) Error() string {
	if e.Seq != 0 {
		return fmt.Sprintf("the audit log does not replay at seq %d: %s", e.Seq, strings.Join(e.Differences, "; "))
	}
	return "the stored state differs from the audit log's replay: " + strings.Join(e.Differences, "; ")
}

// cancelHookWords mark a cancel entry whose release keeps its locks until
// its cancel hook has ended (contract A).
const cancelHookWords = "cancel hook attempt "

// Add replays the next entry. It returns a *ProjectionError when the entry
// does not follow from the entries before it (a change from a state the
// ticket is not in, a freeze of a frozen component, …); the Projection is
// then left as it was before e.
func (p *Projection) Add(e AuditEntry) error {
	bad := func(format string, args ...any) error {
		return &ProjectionError{Seq: e.Seq, Differences: []string{fmt.Sprintf(format, args...)}}
	}
	key := releaseKey(e.Ticket, e.Env)
	cur := p.open[key]
	state := StateNone
	if cur != nil {
		state = cur.state
	}
	switch e.Action {
	case ActionRefused:
		if e.From != StateNone || e.To != StateNone {
			return bad("%s: a refusal claims a change %s>%s", e.Ticket, e.From, e.To)
		}
	case ActionLock:
		if e.Ticket != "" {
			return bad("%s: a lock entry names a ticket; only an admin's freeze (no ticket) is a lock entry", e.Ticket)
		}
		c, _, _ := strings.Cut(e.Detail, ": ")
		if p.frozen[freezeKey(c, e.Env)] {
			return bad("%s: frozen again, but it is frozen already", freezeName(c, e.Env))
		}
		p.frozen[freezeKey(c, e.Env)] = true
	case ActionUnlock:
		if e.Ticket == "" {
			if !p.frozen[freezeKey(e.Detail, e.Env)] {
				return bad("%s: unfrozen, but it is not frozen", freezeName(e.Detail, e.Env))
			}
			delete(p.frozen, freezeKey(e.Detail, e.Env))
			break
		}
		// An admin frees one lock of a release that is no longer open.
		c, _, _ := strings.Cut(e.Detail, ": ")
		for i, l := range p.lingering[key] {
			if j := slices.Index(l.locks, c); j >= 0 {
				l.locks = slices.Delete(slices.Clone(l.locks), j, j+1)
				if len(l.locks) == 0 && !l.unsure {
					p.dropLingering(key, i)
				}
				return nil
			}
			if l.unsure {
				return nil // it may have held c: nothing to check against
			}
		}
		return bad("%s: unlocked for %s, but no closed release of %s holds it", c, e.Ticket, e.Ticket)
	case ActionHotfix:
		// An admin let a hotfix go first: its state does not change.
		if cur == nil || e.From != state || e.To != state {
			return bad("%s: a hotfix entry %s>%s, but the release is %s", e.Ticket, e.From, e.To, stateName(state))
		}
		return nil
	case ActionBuild:
		// A build CI reported: on the ticket's open release, whose state
		// it keeps, or on none (from = to = empty).
		if e.From != state || e.To != state {
			return bad("%s: a build entry %s>%s, but the release is %s", e.Ticket, e.From, e.To, stateName(state))
		}
		return nil
	case ActionRolledBack:
		// A done release that a rollback replaces: closed, and it stays so.
		if e.From != StateDone || e.To != StateDone {
			return bad("%s: a rolled_back entry %s>%s; only a done release is rolled back", e.Ticket, e.From, e.To)
		}
		return nil
	case ActionIncident:
		// A done release marked as an incident's cause: its state stays.
		if e.From != StateDone || e.To != StateDone {
			return bad("%s: an incident entry %s>%s; only a done release is marked", e.Ticket, e.From, e.To)
		}
		return nil
	case ActionRequest:
		if cur != nil {
			return bad("%s: requested while its release is %s", e.Ticket, state)
		}
		if e.From != StateNone || e.To != StateRequested {
			return bad("%s: a request %s>%s", e.Ticket, e.From, e.To)
		}
		p.open[key] = &replayed{state: StateRequested}
	case ActionHook, ActionHookFailed, ActionInterrupt:
		if e.From != e.To {
			if e.Action == ActionInterrupt {
				break // checked below, through the transition table
			}
			return bad("%s: a %s entry changes the state %s>%s", e.Ticket, e.Action, e.From, e.To)
		}
		if e.From == StateCancelled {
			// A cancel hook's result (or its interruption) is recorded on
			// the cancelled release, which may be followed by a new one.
			ls := p.lingering[key]
			if e.Action != ActionInterrupt && len(ls) > 0 {
				i := 0
				for k, l := range ls {
					if l.attempt != "" && strings.HasSuffix(e.Detail, "(attempt "+l.attempt+")") {
						i = k
					}
				}
				p.dropLingering(key, i)
			}
			return nil
		}
		if e.From != state {
			return bad("%s: %s from %s, but the release is %s", e.Ticket, e.Action, e.From, stateName(state))
		}
		if e.Action != ActionInterrupt && e.Action != ActionHookFailed {
			return nil // hook: a result that changes no state
		}
	}
	switch e.Action {
	case ActionRefused, ActionLock, ActionUnlock, ActionRequest, ActionHook:
		return nil
	}
	if !slices.Contains(Actions, e.Action) {
		if e.From == StateNone && e.To == StateNone {
			return nil // an entry of a later version that changes nothing
		}
		return bad("%s: unknown action %q changes %s>%s", e.Ticket, e.Action, e.From, e.To)
	}
	if e.From != state {
		return bad("%s: %s from %s, but the release is %s", e.Ticket, e.Action, e.From, stateName(state))
	}
	if to, ok := Next(e.From, e.Action); !ok || to != e.To {
		return bad("%s: %s %s>%s is not in the transition table", e.Ticket, e.Action, e.From, e.To)
	}
	next := *cur
	next.state = e.To
	switch {
	case e.Action == ActionStart:
		next.locks, next.unsure = startLocks(e.Detail)
	case e.From.HoldsLocks() && !e.To.HoldsLocks() && e.Action == ActionCancel && strings.Contains(e.Detail, cancelHookWords):
		_, attempt, _ := strings.Cut(e.Detail, cancelHookWords)
		attempt, _, _ = strings.Cut(attempt, ";")
		next.attempt = strings.TrimSpace(attempt)
		p.lingering[key] = append(p.lingering[key], &next)
	}
	if e.To.Open() {
		p.open[key] = &next
	} else {
		delete(p.open, key)
	}
	return nil
}

func (p *Projection) dropLingering(ticket string, i int) {
	ls := slices.Delete(slices.Clone(p.lingering[ticket]), i, i+1)
	if len(ls) == 0 {
		delete(p.lingering, ticket)
		return
	}
	p.lingering[ticket] = ls
}

// releaseKey identifies a release being replayed: its ticket and its
// environment as its entries name it (a release's entries all carry its
// Env, "" for one without), since a ticket may be open in several.
func releaseKey(ticket, env string) string {
	if env == "" {
		return ticket
	}
	return ticket + "\x00" + env
}

// freezeKey identifies a freeze: its component, and its environment ("":
// every environment).
func freezeKey(comp, env string) string { return releaseKey(comp, env) }

// keyName renders a releaseKey or freezeKey for people: "PAY-1", "PAY-1 in
// qa".
func keyName(k string) string {
	name, env, ok := strings.Cut(k, "\x00")
	if !ok {
		return name
	}
	return name + " in " + env
}

// freezeName is keyName of freezeKey(comp, env).
func freezeName(comp, env string) string { return keyName(freezeKey(comp, env)) }

// ticketOfKey is the ticket of a releaseKey.
func ticketOfKey(k string) string {
	t, _, _ := strings.Cut(k, "\x00")
	return t
}

func stateName(s State) string {
	if s == StateNone {
		return "not open"
	}
	return string(s)
}

// startLocks reads the components a start entry locks from its detail
// ("locks: a,b", maybe followed by "; …"), and reports whether the list was
// cut short by Clean's bound on a detail's length.
func startLocks(detail string) ([]string, bool) {
	list, ok := strings.CutPrefix(detail, "locks: ")
	if !ok {
		return nil, true
	}
	list, _, _ = strings.Cut(list, "; ")
	var locks []string
	for _, c := range strings.Split(list, ",") {
		if c = strings.TrimSpace(c); c != "" {
			locks = append(locks, c)
		}
	}
	if len(detail) > cleanMax && strings.HasSuffix(list, "…") {
		// Cut short: the last name is partial, and more may have followed.
		return locks[:len(locks)-1], true
	}
	return locks, false
}

// Compare checks the replayed state against the stored one: open is the
// store's open index (Tx.Open), locks its lock table (Tx.Locks). It returns
// nil when they agree, else a *ProjectionError listing every difference,
// sorted.
func (p *Projection) Compare(open []Release, locks []Lock) error {
	var diffs []string
	bad := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }

	stored := map[string][]Release{}
	for _, r := range open {
		k := releaseKey(r.Ticket, r.Env)
		stored[k] = append(stored[k], r)
	}
	for k, rs := range stored {
		r, t := rs[0], keyName(k)
		if len(rs) > 1 {
			bad("%s: the store has %d open releases, the audit log one at most", t, len(rs))
		}
		want := p.open[k]
		switch {
		case want == nil:
			bad("%s: the store has it %s (release %d), the audit log says it is not open", t, r.State, r.ID)
		case want.state != r.State:
			bad("%s: the audit log says it is %s, the store has it %s (release %d)", t, want.state, r.State, r.ID)
		}
	}
	for k, want := range p.open {
		if _, ok := stored[k]; !ok {
			bad("%s: the audit log says it is %s, the store has no open release of it", keyName(k), want.state)
		}
	}

	// Locks, as component → tickets, both ways. (A ticket deploying one
	// component in two environments at once counts once on both sides.)
	type hold struct{ comp, ticket string }
	held := map[hold]bool{}
	unsure := map[string]bool{} // tickets whose locks cannot be known
	add := func(k string, r *replayed) {
		t := ticketOfKey(k)
		if r.unsure {
			unsure[t] = true
		}
		for _, c := range r.locks {
			held[hold{c, t}] = true
		}
	}
	for t, r := range p.open {
		if r.state.HoldsLocks() {
			add(t, r)
		}
	}
	for t, ls := range p.lingering {
		for _, r := range ls {
			add(t, r)
		}
	}
	have := map[hold]bool{}
	frozen := map[string]bool{}
	for _, l := range locks {
		if l.Frozen() {
			frozen[freezeKey(l.Component, l.Env)] = true
			continue
		}
		have[hold{l.Component, l.Ticket}] = true
	}
	for h := range held {
		if !have[h] {
			bad("%s: the audit log says %s holds it, the store has no lock", h.comp, h.ticket)
		}
	}
	for h := range have {
		if !held[h] && !unsure[h.ticket] {
			bad("%s: the store has a lock of %s, the audit log says %s does not hold it", h.comp, h.ticket, h.ticket)
		}
	}
	for k := range p.frozen {
		if !frozen[k] {
			bad("%s: the audit log says it is frozen, the store has no freeze", keyName(k))
		}
	}
	for k := range frozen {
		if !p.frozen[k] {
			bad("%s: the store has a freeze, the audit log has none", keyName(k))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	slices.Sort(diffs)
	return &ProjectionError{Differences: diffs}
}
