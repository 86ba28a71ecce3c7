package commands_test

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dobrobot/dobrobot/commands"
)

// snapshot is everything the invariants of RELIABILITY.md (I1–I5) are
// stated over, read from a Store in one consistent transaction.
type snapshot struct {
	releases []commands.Release // every release, ascending ID
	open     []commands.Release // the open index, in queue order
	locks    []commands.Lock
	audit    []commands.AuditEntry // the whole chain, verified
}

// takeSnapshot reads s and verifies the audit chain (I4).
func takeSnapshot(ctx context.Context, s commands.Store) (snapshot, error) {
	var snap snapshot
	err := s.View(ctx, func(tx commands.Tx) error {
		var err error
		if snap.releases, err = tx.Recent(0); err != nil {
			return err
		}
		slices.Reverse(snap.releases)
		if snap.open, err = tx.Open(); err != nil {
			return err
		}
		snap.locks, err = tx.Locks()
		return err
	})
	if err != nil {
		return snap, fmt.Errorf("snapshot: %w", err)
	}
	v := commands.NewVerifier()
	err = s.Audit(ctx, commands.AuditFilter{}, func(e commands.AuditEntry) error {
		snap.audit = append(snap.audit, e)
		return v.Add(e)
	})
	if err != nil {
		return snap, fmt.Errorf("I4 audit chain: %w", err)
	}
	return snap, nil
}

// openIDs returns the IDs of the open releases, in queue order.
func (s snapshot) openIDs() []uint64 {
	ids := make([]uint64, 0, len(s.open))
	for _, r := range s.open {
		ids = append(ids, r.ID)
	}
	return ids
}

// violations checks I1–I3 and I5 (I4 was checked when the snapshot was
// taken). prevOpen is the queue of the previous snapshot, for stability; a
// hook may be running only when running is true.
func (s snapshot) violations(prevOpen []uint64, running bool) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	// I1: at most one release holds (deploys) each component in each
	// environment (one without environments: "").
	holders := map[string][]string{}
	for _, r := range s.releases {
		if r.State.HoldsLocks() {
			for _, c := range r.Locks {
				holders[inEnv(c, r.Env)] = append(holders[inEnv(c, r.Env)], r.Ticket)
			}
		}
		if r.Running != nil && !running {
			bad("%s (release %d) has a hook marked running after every hook ended", r.Ticket, r.ID)
		}
		if r.Running != nil && !r.State.Open() && !cancelling(r) {
			bad("%s (release %d) is %s with a hook running", r.Ticket, r.ID, r.State)
		}
	}
	for c, ts := range holders {
		if len(ts) > 1 {
			bad("I1: %s is held by %d releases: %v", c, len(ts), ts)
		}
	}

	// I2: lock ⇔ lock-holding state, both ways. A cancelled release whose
	// cancel hook runs holds its locks too (issue 12, item 3); one whose
	// cancel hook's outcome is unknown after a restart keeps those an admin
	// has not freed yet.
	byID := map[uint64]commands.Release{}
	for _, r := range s.releases {
		byID[r.ID] = r
	}
	var table, want []string
	for _, l := range s.locks {
		if l.Frozen() {
			continue
		}
		table = append(table, fmt.Sprintf("%s=%d/%s", l.Component, l.Release, l.Ticket))
		r, ok := byID[l.Release]
		switch {
		case !ok:
			bad("I2: lock %s references release %d, which does not exist", l.Component, l.Release)
		case !r.State.HoldsLocks() && !cancelling(r) && !leftByCancel(r):
			bad("I2: lock %s references %s, which is %s", l.Component, r.Ticket, r.State)
		case !slices.Contains(r.Locks, l.Component):
			bad("I2: lock %s references %s, whose locks are %v", l.Component, r.Ticket, r.Locks)
		}
		if ok && leftByCancel(r) {
			want = append(want, fmt.Sprintf("%s=%d/%s", l.Component, l.Release, l.Ticket))
		}
	}
	for _, r := range s.releases {
		if r.State.HoldsLocks() || cancelling(r) {
			for _, c := range r.Locks {
				want = append(want, fmt.Sprintf("%s=%d/%s", c, r.ID, r.Ticket))
			}
		}
	}
	slices.Sort(table)
	slices.Sort(want)
	if !slices.Equal(table, want) {
		bad("I2: lock table %v, but the releases in lock-holding states hold %v", table, want)
	}
	for c, ts := range holders {
		for _, r := range s.releases {
			if cancelling(r) && slices.ContainsFunc(r.Locks, func(l string) bool { return inEnv(l, r.Env) == c }) {
				bad("I1: %s is held by %v while the cancel hook of %s runs", c, ts, r.Ticket)
			}
		}
	}

	// I3: the queue is the open releases, unique, in ID order, and stable:
	// releases queued before keep their relative order.
	ids := s.openIDs()
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			bad("I3: queue order %v is not strictly increasing", ids)
			break
		}
	}
	var openWant []uint64
	tickets := map[string]int{}
	for _, r := range s.releases {
		if r.State.Open() {
			openWant = append(openWant, r.ID)
			tickets[inEnv(r.Ticket, r.Env)]++
			if tickets[inEnv(r.Ticket, r.Env)] == 2 {
				bad("I3: %s has more than one open release", inEnv(r.Ticket, r.Env))
			}
		}
	}
	if !slices.Equal(ids, openWant) {
		bad("I3: open index %v, but the open releases are %v", ids, openWant)
	}
	var kept []uint64
	for _, id := range prevOpen {
		if slices.Contains(ids, id) {
			kept = append(kept, id)
		}
	}
	var now []uint64
	for _, id := range ids {
		if slices.Contains(prevOpen, id) {
			now = append(now, id)
		}
	}
	if !slices.Equal(kept, now) {
		bad("I3: queue order changed: %v before, %v now", prevOpen, ids)
	}
	for i := 1; i < len(s.releases); i++ {
		if s.releases[i].ID != s.releases[i-1].ID+1 || s.releases[0].ID != 1 {
			bad("I3: release IDs %d, %d are not contiguous from 1", s.releases[i-1].ID, s.releases[i].ID)
			break
		}
	}

	// I5: the audit log is a faithful log of every committed change:
	// replaying it through the transition table gives every release's
	// state and every freeze, and refusals change nothing.
	out = append(out, s.replay()...)
	return out
}

// inEnv names a ticket or component in an environment, for the invariants'
// keys: as it is without environments (env "").
func inEnv(name, env string) string {
	if env == "" {
		return name
	}
	return name + " in " + env
}

// cancelling reports whether r is a cancelled release whose cancel hook
// runs: it keeps its locks until the hook's result is recorded.
func cancelling(r commands.Release) bool {
	return r.State == commands.StateCancelled && r.Running != nil && r.Running.Phase == commands.PhaseCancel
}

// leftByCancel reports whether r is a cancelled release whose cancel hook
// was found running after a restart: it keeps its locks until an admin
// frees them.
func leftByCancel(r commands.Release) bool {
	return r.State == commands.StateCancelled && r.Running == nil && r.LastHook != nil &&
		r.LastHook.Phase == commands.PhaseCancel && strings.HasPrefix(r.LastHook.Error, "outcome unknown")
}

// replay replays the audit log with the production replay (commands.Projection,
// which dobrobot run and audit verify use) and compares it with the store;
// then it checks what only a test can afford, over the whole history: every
// ticket's latest release (in each environment) has the state the log
// leaves it in, and each has as many releases stored as requests audited.
func (s snapshot) replay() []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	p := commands.NewProjection()
	state := map[string]commands.State{} // ticket → state of its latest release
	requests := map[string]int{}
	for _, e := range s.audit {
		if err := p.Add(e); err != nil {
			bad("I5: %v", err)
			return out
		}
		k := inEnv(e.Ticket, e.Env)
		switch {
		case e.Action == commands.ActionRequest:
			requests[k]++
			state[k] = e.To
		case e.Ticket != "" && e.Action != commands.ActionRefused && e.From == state[k]:
			state[k] = e.To
		}
	}
	if err := p.Compare(s.open, s.locks); err != nil {
		bad("I5: %v", err)
	}
	latest := map[string]commands.Release{}
	count := map[string]int{}
	for _, r := range s.releases {
		latest[inEnv(r.Ticket, r.Env)] = r
		count[inEnv(r.Ticket, r.Env)]++
	}
	for t, r := range latest {
		if state[t] != r.State {
			bad("I5: the audit log leaves %s %s, the store has it %s", t, state[t], r.State)
		}
		if requests[t] != count[t] {
			bad("I5: %d requests of %s audited, %d releases stored", requests[t], t, count[t])
		}
	}
	for t := range state {
		if _, ok := latest[t]; !ok {
			bad("I5: the audit log has releases of %s, the store none", t)
		}
	}
	return out
}
