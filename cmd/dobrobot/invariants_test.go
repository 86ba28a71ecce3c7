package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// The invariants every crash test checks after each kill, and the test of
// the checker itself.

// snapshot is what inspect read from a stopped bot's database.
type snapshot struct {
	open    []commands.Release
	last    map[string]commands.Release // the latest release of each ticket
	locks   []commands.Lock
	pending []commands.InboxEvent
	outbox  []commands.Effect
	audit   []commands.AuditEntry
	events  map[string]commands.InboxEvent
	closed  map[uint64]commands.Release // releases no longer open that hold a lock
}

// lockHolders returns component → ticket of the releases' locks.
func (s snapshot) lockHolders() map[string]string {
	out := map[string]string{}
	for _, l := range s.locks {
		if !l.Frozen() {
			out[l.Component] = l.Ticket
		}
	}
	return out
}

var attemptRE = regexp.MustCompile(`attempt ([0-9a-f]{16})`)

// inspect opens the database of a stopped (or killed) bot read-only and
// checks the invariants that must hold after any crash:
//
//	bbolt's consistency check passes and the whole audit chain verifies;
//	I1 at most one release holds each component (deploying or failed);
//	I2 every release lock belongs to a release in a lock-holding state that
//	   lists the component, and such a release holds all of its locks; or
//	   to a cancelled release whose cancel hook runs (it holds all of
//	   them) or was found running after a restart (until an admin frees
//	   them);
//	I3 the queue is in ID order, one open release per ticket;
//	I5 each ticket's newest state-changing audit entry ends in its state;
//	I6 every outbox message about a release names a committed one;
//	hooks: no attempt was spawned twice, and every spawned attempt was
//	   committed first (it is in the audit log or a release's Running).
func (w *world) inspect(tickets ...string) snapshot {
	w.t.Helper()
	return w.check(w.t, tickets...)
}

// reporter is the part of testing.T the invariant checker uses, so that a
// test can check that the checker itself fails.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// check is inspect reporting to t.
func (w *world) check(t reporter, tickets ...string) snapshot {
	t.Helper()
	db, err := storage.Open(w.db, storage.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s after the run: %v", w.db, err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatalf("bbolt check: %v", err)
	}
	// The chain only: the invariants below are this checker's own, and
	// TestInvariantChecker feeds it states no log explains.
	if err := db.Audit(context.Background(), commands.AuditFilter{}, commands.NewVerifier().Add); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	s := snapshot{last: map[string]commands.Release{}, events: map[string]commands.InboxEvent{}, closed: map[uint64]commands.Release{}}
	err = db.View(context.Background(), func(tx commands.Tx) error {
		var err error
		if s.open, err = tx.Open(); err != nil {
			return err
		}
		if s.locks, err = tx.Locks(); err != nil {
			return err
		}
		for _, l := range s.locks {
			if l.Frozen() || slices.ContainsFunc(s.open, func(r commands.Release) bool { return r.ID == l.Release }) {
				continue
			}
			r, err := tx.Release(l.Release)
			if err != nil {
				return err
			}
			s.closed[r.ID] = r
		}
		if s.pending, err = tx.PendingEvents(); err != nil {
			return err
		}
		for _, tk := range tickets {
			r, err := tx.LastRelease(tk)
			if commands.ErrorCode(err) == commands.ENOTFOUND {
				continue
			}
			if err != nil {
				return err
			}
			s.last[tk] = r
		}
		for _, sent := range w.slack.Sent() {
			if sent.EventID == "" {
				continue
			}
			if ev, ok, err := tx.Event(sent.EventID); err != nil {
				return err
			} else if ok {
				s.events[sent.EventID] = ev
			}
		}
		return nil
	})
	if err == nil {
		s.outbox, err = db.Pending(context.Background(), 0)
	}
	if err == nil {
		err = db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
			s.audit = append(s.audit, e)
			return nil
		})
	}
	if err != nil {
		t.Fatalf("read the database: %v", err)
	}

	// I1, I2.
	holders := map[string][]string{}
	openByID := map[uint64]commands.Release{}
	for _, r := range s.open {
		openByID[r.ID] = r
		if r.State.HoldsLocks() {
			for _, c := range r.Locks {
				holders[c] = append(holders[c], r.Ticket)
				if !slices.ContainsFunc(s.locks, func(l commands.Lock) bool { return l.Component == c && l.Release == r.ID }) {
					t.Errorf("I2: %s is %s but does not hold its lock on %s; locks: %+v", r.Ticket, r.State, c, s.locks)
				}
			}
		}
	}
	for c, h := range holders {
		if len(h) > 1 {
			t.Errorf("I1: %s is held by %d releases: %v", c, len(h), h)
		}
	}
	for _, l := range s.locks {
		if l.Frozen() {
			continue
		}
		if r, ok := s.closed[l.Release]; ok {
			cancelling := r.Running != nil && r.Running.Phase == commands.PhaseCancel
			left := r.Running == nil && r.LastHook != nil && r.LastHook.Phase == commands.PhaseCancel && !r.LastHook.OK
			if r.State != commands.StateCancelled || !(cancelling || left) || !slices.Contains(r.Locks, l.Component) || r.Ticket != l.Ticket {
				t.Errorf("I2: lock %s held by release %d (%s), which is %s with running %+v and last hook %+v", l.Component, l.Release, l.Ticket, r.State, r.Running, r.LastHook)
			}
			for _, h := range holders[l.Component] {
				t.Errorf("I1: %s is held by %s and by %s, which is cancelled", l.Component, h, r.Ticket)
			}
			continue
		}
		r, ok := openByID[l.Release]
		if !ok || !r.State.HoldsLocks() || !slices.Contains(r.Locks, l.Component) || r.Ticket != l.Ticket {
			t.Errorf("I2: lock %s held by release %d (%s), which is not an open release holding it (%+v)", l.Component, l.Release, l.Ticket, r)
		}
	}
	// I3.
	seen := map[string]bool{}
	for i, r := range s.open {
		if i > 0 && r.ID <= s.open[i-1].ID {
			t.Errorf("I3: the queue is out of order at %s", r.Ticket)
		}
		if seen[r.Ticket] {
			t.Errorf("I3: %s has two open releases", r.Ticket)
		}
		seen[r.Ticket] = true
	}
	// I5.
	for tk, r := range s.last {
		var lastTo commands.State
		for _, e := range s.audit {
			if e.Ticket == tk && e.To != commands.StateNone {
				lastTo = e.To
			}
		}
		if lastTo != r.State {
			t.Errorf("I5: %s is %s, but its last audit entry says %q", tk, r.State, lastTo)
		}
	}
	// I6.
	for _, e := range s.outbox {
		if e.Release == nil {
			continue
		}
		if err := db.View(context.Background(), func(tx commands.Tx) error {
			_, err := tx.Release(e.Release.ID)
			return err
		}); err != nil {
			t.Errorf("I6: outbox message %d is about release %d, which is not in the database: %v", e.ID, e.Release.ID, err)
		}
	}
	// Hooks: each attempt spawned at most once, and only after its commit.
	committed := map[string]bool{}
	for _, e := range s.audit {
		for _, m := range attemptRE.FindAllStringSubmatch(e.Detail, -1) {
			committed[m[1]] = true
		}
	}
	for _, r := range s.open {
		if r.Running != nil {
			committed[r.Running.Attempt] = true
		}
	}
	for _, r := range s.last {
		if r.Running != nil {
			committed[r.Running.Attempt] = true
		}
	}
	for _, r := range s.closed {
		if r.Running != nil {
			committed[r.Running.Attempt] = true
		}
	}
	spawned := map[string]int{}
	for _, sp := range w.spawns() {
		spawned[sp.attempt]++
		if spawned[sp.attempt] == 2 {
			t.Errorf("hook attempt %s (%s %s) was spawned twice", sp.attempt, sp.ticket, sp.phase)
		}
		if !committed[sp.attempt] {
			t.Errorf("hook attempt %s (%s %s) was spawned but never committed", sp.attempt, sp.ticket, sp.phase)
		}
	}
	// Persist-then-ack: every acknowledged command is in the inbox.
	sentEvent := map[string]string{}
	for _, sent := range w.slack.Sent() {
		sentEvent[sent.EnvelopeID] = sent.EventID
	}
	for _, a := range w.slack.Acks() {
		if ev := sentEvent[a.EnvelopeID]; ev != "" {
			if _, ok := s.events[ev]; !ok {
				t.Errorf("event %s was acknowledged but is not in the inbox: lost", ev)
			}
		}
	}
	return s
}

// recorder is a reporter that keeps what it is told; Fatalf stops the
// check by panicking with the recorder.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(r)
}

// TestInvariantChecker checks that the checker of the crash tests finds
// each kind of broken state it claims to find.
func TestInvariantChecker(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rel := func(ticket string, state commands.State, locks ...string) commands.Release {
		return commands.Release{Ticket: ticket, State: state, Requester: requester, Components: locks, Locks: locks, Created: t0, Updated: t0}
	}
	// put stores releases with an audit entry ending in their state, and locks.
	put := func(rels []commands.Release, locks []commands.Lock) func(commands.Tx) error {
		return func(tx commands.Tx) error {
			for _, r := range rels {
				stored, err := tx.PutRelease(r)
				if err != nil {
					return err
				}
				if _, err := tx.AppendAudit(commands.AuditEntry{Time: t0, Actor: requester, Action: commands.ActionRequest, Ticket: r.Ticket, To: r.State,
					Detail: "start hook attempt 00000000000000aa"}); err != nil {
					return err
				}
				for i := range locks {
					if locks[i].Ticket == r.Ticket {
						locks[i].Release = stored.ID
					}
				}
			}
			for _, l := range locks {
				if err := tx.PutLock(l); err != nil {
					return err
				}
			}
			return nil
		}
	}
	lock := func(comp, ticket string) commands.Lock {
		return commands.Lock{Component: comp, Ticket: ticket, By: requester, Since: t0}
	}
	spawnLine := func(attempt string) string {
		return `{"argv":["hook"],"env":["DOBROBOT_TICKET=PAY-1","DOBROBOT_PHASE=start","DOBROBOT_ATTEMPT=` + attempt + `"]}` + "\n"
	}
	for _, tc := range []struct {
		name   string
		update func(commands.Tx) error
		raw    func(*bolt.Tx) error
		spawns string
		want   string // "" for no error
	}{
		{name: "a sound state", update: put([]commands.Release{rel("PAY-1", commands.StateDeploying, "backend"), rel("PAY-2", commands.StateRequested, "backend")},
			[]commands.Lock{lock("backend", "PAY-1")}), spawns: spawnLine("00000000000000aa")},
		{name: "a lock of a release that does not hold it", update: put([]commands.Release{rel("PAY-1", commands.StateRequested, "backend")},
			[]commands.Lock{lock("backend", "PAY-1")}), want: "I2: lock backend"},
		{name: "a deploying release without its lock", update: put([]commands.Release{rel("PAY-1", commands.StateDeploying, "backend")}, nil),
			want: "I2: PAY-1 is deploying but does not hold its lock"},
		{name: "two holders of one component", update: put([]commands.Release{rel("PAY-1", commands.StateDeploying, "backend"), rel("PAY-2", commands.StateFailed, "backend")},
			[]commands.Lock{lock("backend", "PAY-1"), lock("backend", "PAY-2")}), want: "I1: backend is held by 2 releases"},
		{name: "a state the audit log does not explain", update: func(tx commands.Tx) error {
			if err := put([]commands.Release{rel("PAY-1", commands.StateRequested)}, nil)(tx); err != nil {
				return err
			}
			r, err := onlyOpen(tx, "PAY-1")
			if err != nil {
				return err
			}
			r.State = commands.StateAccepted
			_, err = tx.PutRelease(r)
			return err
		}, want: "I5: PAY-1 is accepted"},
		{name: "an edited audit entry", update: put([]commands.Release{rel("PAY-1", commands.StateRequested)}, nil),
			raw: func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("audit"))
				k, v := b.Cursor().First()
				return b.Put(k, bytes.Replace(v, []byte(requester), []byte("U0MALLORY"), 1))
			}, want: "audit chain"},
		{name: "a hook spawned twice", update: put([]commands.Release{rel("PAY-1", commands.StateRequested)}, nil),
			spawns: spawnLine("00000000000000aa") + spawnLine("00000000000000aa"), want: "was spawned twice"},
		{name: "a hook spawned without a commit", update: put([]commands.Release{rel("PAY-1", commands.StateRequested)}, nil),
			spawns: spawnLine("00000000000000bb"), want: "was spawned but never committed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			db, err := storage.Open(w.db)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(context.Background(), tc.update); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if tc.raw != nil {
				b, err := bolt.Open(w.db, 0o600, &bolt.Options{Timeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				if err := b.Update(tc.raw); err != nil {
					t.Fatal(err)
				}
				b.Close()
			}
			if err := os.WriteFile(w.record, []byte(tc.spawns), 0o600); err != nil {
				t.Fatal(err)
			}
			r := &recorder{}
			func() {
				defer func() {
					if p := recover(); p != nil && p != r {
						panic(p)
					}
				}()
				w.check(r, "PAY-1", "PAY-2")
			}()
			got := strings.Join(r.errs, "\n")
			switch {
			case tc.want == "" && got != "":
				t.Errorf("the checker found problems in a sound state:\n%s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("the checker said %q, want it to report %q", got, tc.want)
			}
		})
	}
}
