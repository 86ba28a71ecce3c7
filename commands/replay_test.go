package commands_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/bolttest"
)

// ent builds an audit entry of a replay sequence: "action ticket from>to"
// and a detail.
func ent(spec, detail string) commands.AuditEntry {
	f := strings.Fields(spec)
	e := commands.AuditEntry{Action: commands.Action(f[0]), Detail: detail}
	rest := f[1:]
	if len(rest) == 2 {
		e.Ticket, rest = rest[0], rest[1:]
	}
	if len(rest) == 1 {
		from, to, _ := strings.Cut(rest[0], ">")
		e.From, e.To = commands.State(from), commands.State(to)
	}
	return e
}

// The way to a deploying PAY-1 that locks backend and payments.
var toDeploying = []commands.AuditEntry{
	ent("request PAY-1 >requested", "components: backend,payments"),
	ent("accept PAY-1 requested>accepted", ""),
	ent("start PAY-1 accepted>deploying", "locks: backend,payments; start hook attempt 00000000000000aa"),
}

func seq(parts ...[]commands.AuditEntry) []commands.AuditEntry {
	var out []commands.AuditEntry
	for _, p := range parts {
		out = append(out, p...)
	}
	for i := range out {
		out[i].Seq = uint64(i + 1)
	}
	return out
}

func entries(es ...commands.AuditEntry) []commands.AuditEntry { return es }

func open(ticket string, state commands.State) commands.Release {
	return commands.Release{ID: 1, Ticket: ticket, State: state}
}

func held(ticket string, comps ...string) []commands.Lock {
	var out []commands.Lock
	for _, c := range comps {
		out = append(out, commands.Lock{Component: c, Release: 1, Ticket: ticket})
	}
	return out
}

func frozen(comps ...string) []commands.Lock {
	var out []commands.Lock
	for _, c := range comps {
		out = append(out, commands.Lock{Component: c})
	}
	return out
}

// TestProjection replays hand-built logs, by the lock rules of contract A
// (docs/audit.md), and compares them with stored states: each difference is
// named, and a log that does not follow from itself stops at its entry.
func TestProjection(t *testing.T) {
	deploying := []commands.Release{open("PAY-1", commands.StateDeploying)}
	cancelHooked := entries(ent("cancel PAY-1 deploying>cancelled", "rollback; cancel hook attempt 00000000000000cc"))
	for _, tc := range []struct {
		name  string
		log   []commands.AuditEntry
		open  []commands.Release
		locks []commands.Lock
		want  []string // the differences, or the replay's error; nil: none
		seq   uint64   // the entry the replay stops at, 0 when it replays
	}{
		{name: "deploying with its locks", log: seq(toDeploying), open: deploying,
			locks: held("PAY-1", "backend", "payments")},
		{name: "a lock deleted", log: seq(toDeploying), open: deploying, locks: held("PAY-1", "payments"),
			want: []string{"backend: the audit log says PAY-1 holds it, the store has no lock"}},
		{name: "a lock added", log: seq(toDeploying), open: deploying, locks: append(held("PAY-1", "backend", "payments"), held("PAY-2", "ios")...),
			want: []string{"ios: the store has a lock of PAY-2, the audit log says PAY-2 does not hold it"}},
		{name: "finish frees the locks", log: seq(toDeploying, entries(ent("finish PAY-1 deploying>done", "finish hook ok"))),
			locks: held("PAY-1", "backend"),
			want:  []string{"backend: the store has a lock of PAY-1, the audit log says PAY-1 does not hold it"}},
		{name: "a finished release edited back to deploying", log: seq(toDeploying, entries(ent("finish PAY-1 deploying>done", ""))),
			open: deploying, locks: held("PAY-1", "backend", "payments"),
			want: []string{
				"PAY-1: the store has it deploying (release 1), the audit log says it is not open",
				"backend: the store has a lock of PAY-1, the audit log says PAY-1 does not hold it",
				"payments: the store has a lock of PAY-1, the audit log says PAY-1 does not hold it",
			}},
		{name: "a state edited", log: seq(toDeploying[:2]), open: deploying,
			want: []string{"PAY-1: the audit log says it is accepted, the store has it deploying (release 1)"}},
		{name: "an open release deleted", log: seq(toDeploying[:1]),
			want: []string{"PAY-1: the audit log says it is requested, the store has no open release of it"}},
		{name: "two open releases of a ticket", log: seq(toDeploying[:1]),
			open: []commands.Release{open("PAY-1", commands.StateRequested), {ID: 2, Ticket: "PAY-1", State: commands.StateRequested}},
			want: []string{"PAY-1: the store has 2 open releases, the audit log one at most"}},
		{name: "a failed start keeps the locks", log: seq(toDeploying, entries(ent("fail PAY-1 deploying>failed", "start hook failed"))),
			open: []commands.Release{open("PAY-1", commands.StateFailed)}, locks: held("PAY-1", "backend", "payments")},
		{name: "a re-run start takes its locks again", log: seq(toDeploying, entries(
			ent("fail PAY-1 deploying>failed", ""), ent("start PAY-1 failed>deploying", "locks: backend,payments; admin override"))),
			open: deploying, locks: held("PAY-1", "backend", "payments")},
		{name: "a finish hook's failure keeps the locks", log: seq(toDeploying, entries(ent("hook_failed PAY-1 deploying>deploying", "finish hook failed: exit 1 (attempt 00000000000000bb)"))),
			open: deploying, locks: held("PAY-1", "backend", "payments")},
		{name: "cancel without a cancel hook frees the locks", log: seq(toDeploying, entries(ent("cancel PAY-1 deploying>cancelled", "rollback"))),
			locks: nil},
		{name: "cancel with a cancel hook keeps the locks", log: seq(toDeploying, cancelHooked),
			locks: held("PAY-1", "backend", "payments")},
		{name: "cancel with a cancel hook, its lock deleted", log: seq(toDeploying, cancelHooked),
			locks: held("PAY-1", "payments"),
			want:  []string{"backend: the audit log says PAY-1 holds it, the store has no lock"}},
		{name: "the cancel hook's result frees the locks", log: seq(toDeploying, cancelHooked,
			entries(ent("hook PAY-1 cancelled>cancelled", "cancel hook ok in 2s (attempt 00000000000000cc)")))},
		{name: "the cancel hook's failure frees the locks too", log: seq(toDeploying, cancelHooked,
			entries(ent("hook_failed PAY-1 cancelled>cancelled", "cancel hook failed: exit 3 (attempt 00000000000000cc)"))),
			locks: held("PAY-1", "backend"),
			want:  []string{"backend: the store has a lock of PAY-1, the audit log says PAY-1 does not hold it"}},
		{name: "an interrupted cancel hook keeps the locks", log: seq(toDeploying, cancelHooked,
			entries(ent("interrupted PAY-1 cancelled>cancelled", "cancel hook attempt 00000000000000cc: outcome unknown"))),
			locks: held("PAY-1", "backend", "payments")},
		{name: "an admin unlocks one lock of a cancelled release", log: seq(toDeploying, cancelHooked, entries(
			ent("interrupted PAY-1 cancelled>cancelled", ""),
			ent("unlock PAY-1 cancelled>cancelled", "backend: its cancel hook was interrupted"))),
			locks: held("PAY-1", "payments")},
		{name: "a new release of a ticket whose cancel hook runs", log: seq(toDeploying, cancelHooked,
			entries(ent("request PAY-1 >requested", "components: backend,payments"))),
			open: []commands.Release{{ID: 2, Ticket: "PAY-1", State: commands.StateRequested}}, locks: held("PAY-1", "backend", "payments")},
		{name: "freezes", log: seq(entries(ent("lock", "ios: quarter end"), ent("lock", "backend"), ent("unlock", "backend"))),
			locks: frozen("ios")},
		{name: "a freeze deleted", log: seq(entries(ent("lock", "ios: quarter end"))),
			want: []string{"ios: the audit log says it is frozen, the store has no freeze"}},
		{name: "a freeze added", log: nil, locks: frozen("all"),
			want: []string{"all: the store has a freeze, the audit log has none"}},
		{name: "refusals and later versions' entries change nothing", log: seq(entries(
			ent("refused PAY-1 >", "dep start: no"), ent("checkpoint", "42")))},
		{name: "a start whose lock list was cut short", log: seq(toDeploying[:2], entries(
			ent("start PAY-1 accepted>deploying", commands.Clean("locks: backend,"+strings.Repeat("component-x,", 90)+"payments,web")))),
			open: deploying, locks: held("PAY-1", "backend", "component-x", "payments", "web")},
		{name: "a start whose lock list was cut short, a listed lock deleted", log: seq(toDeploying[:2], entries(
			ent("start PAY-1 accepted>deploying", commands.Clean("locks: backend,"+strings.Repeat("component-x,", 90)+"payments,web")))),
			open: deploying, locks: held("PAY-1", "component-x", "payments", "web"),
			want: []string{"backend: the audit log says PAY-1 holds it, the store has no lock"}},

		{name: "a request of an open release", log: seq(toDeploying[:1], toDeploying[:1]), seq: 2,
			want: []string{"PAY-1: requested while its release is requested"}},
		{name: "a change from the wrong state", log: seq(toDeploying[:1], entries(ent("claim PAY-1 accepted>claimed", ""))), seq: 2,
			want: []string{"PAY-1: claim from accepted, but the release is requested"}},
		{name: "a change the table does not allow", log: seq(toDeploying[:1], entries(ent("start PAY-1 requested>deploying", "locks: "))), seq: 2,
			want: []string{"PAY-1: start requested>deploying is not in the transition table"}},
		{name: "a refusal that changes something", log: seq(entries(ent("refused PAY-1 >requested", ""))), seq: 1,
			want: []string{"PAY-1: a refusal claims a change >requested"}},
		{name: "a freeze of a frozen component", log: seq(entries(ent("lock", "ios"), ent("lock", "ios: again"))), seq: 2,
			want: []string{"ios: frozen again, but it is frozen already"}},
		{name: "an unfreeze of a component not frozen", log: seq(entries(ent("unlock", "ios"))), seq: 1,
			want: []string{"ios: unfrozen, but it is not frozen"}},
		{name: "an unlock of a lock no closed release holds", log: seq(toDeploying, entries(ent("unlock PAY-1 deploying>deploying", "backend: x"))), seq: 4,
			want: []string{"backend: unlocked for PAY-1, but no closed release of PAY-1 holds it"}},
		{name: "an unknown action that changes a state", log: seq(toDeploying[:1], entries(ent("teleport PAY-1 requested>done", ""))), seq: 2,
			want: []string{`PAY-1: unknown action "teleport" changes requested>done`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := commands.NewProjection()
			var err error
			for _, e := range tc.log {
				if err = p.Add(e); err != nil {
					break
				}
			}
			if err == nil {
				err = p.Compare(tc.open, tc.locks)
			}
			var pe *commands.ProjectionError
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("got %v, want no difference", err)
			case tc.want == nil:
				return
			case !errors.As(err, &pe):
				t.Fatalf("got %v, want a *ProjectionError", err)
			}
			if diff := cmp.Diff(tc.want, pe.Differences); diff != "" || pe.Seq != tc.seq {
				t.Errorf("at seq %d (want %d), differences (-want +got):\n%s", pe.Seq, tc.seq, diff)
			}
		})
	}
}

// TestVerifyStore runs the whole check on a bbolt store: a state written
// with its entries passes and reports its head; a lock deleted without an
// entry, a broken chain and a checkpoint the chain does not hold are each
// reported with their own error type.
func TestVerifyStore(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	build := func(t *testing.T) (*commands.Checkpoint, commands.Store) {
		db := bolttest.Open(t)
		var head commands.Checkpoint
		err := db.Update(ctx, func(tx commands.Tx) error {
			r, err := tx.PutRelease(commands.Release{Ticket: "PAY-1", State: commands.StateDeploying, Locks: []string{"backend"}, Created: at, Updated: at})
			if err != nil {
				return err
			}
			if err := tx.PutLock(commands.Lock{Component: "backend", Release: r.ID, Ticket: "PAY-1", Since: at}); err != nil {
				return err
			}
			for _, e := range seq(toDeploying) {
				e.Time = at
				if e, err = tx.AppendAudit(e); err != nil {
					return err
				}
				if e.Seq == 2 {
					head = commands.Checkpoint{Seq: e.Seq, Hash: e.Hash}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return &head, db
	}
	// toDeploying locks backend and payments: store both.
	addPayments := func(tx commands.Tx) error {
		r, err := commands.OpenRelease(tx, "PAY-1", "")
		if err != nil {
			return err
		}
		return tx.PutLock(commands.Lock{Component: "payments", Release: r.ID, Ticket: "PAY-1", Since: at})
	}
	for _, tc := range []struct {
		name    string
		edit    func(tx commands.Tx) error
		against func(cp commands.Checkpoint) commands.Checkpoint
		want    any // nil, or a pointer to the error type expected
		text    string
	}{
		{name: "sound"},
		{name: "sound, with its checkpoint", against: func(cp commands.Checkpoint) commands.Checkpoint { return cp }},
		{name: "a lock deleted", edit: func(tx commands.Tx) error {
			r, _ := commands.OpenRelease(tx, "PAY-1", "")
			return tx.DeleteLock("backend", r.ID, "")
		}, want: new(*commands.ProjectionError), text: "backend: the audit log says PAY-1 holds it, the store has no lock"},
		{name: "an entry without its change", edit: func(tx commands.Tx) error {
			// A freeze the store does not have.
			_, err := tx.AppendAudit(commands.AuditEntry{Time: at, Actor: "U0ADMIN", Action: commands.ActionLock, Detail: "ios"})
			return err
		}, want: new(*commands.ProjectionError), text: "ios: the audit log says it is frozen, the store has no freeze"},
		{name: "another hash at the checkpoint's seq", against: func(cp commands.Checkpoint) commands.Checkpoint {
			cp.Hash = strings.Repeat("0", 64)
			return cp
		}, want: new(*commands.CheckpointError), text: "the entry at seq 2 has hash"},
		{name: "a checkpoint past the head", against: func(cp commands.Checkpoint) commands.Checkpoint {
			cp.Seq = 9
			return cp
		}, want: new(*commands.CheckpointError), text: "the chain has only 3 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp, db := build(t)
			edits := []func(commands.Tx) error{addPayments}
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			for _, fn := range edits {
				if err := db.Update(ctx, fn); err != nil {
					t.Fatal(err)
				}
			}
			var against *commands.Checkpoint
			if tc.against != nil {
				c := tc.against(*cp)
				against = &c
			}
			head, err := commands.VerifyStore(ctx, db, against)
			if tc.want == nil {
				if err != nil || head.Seq != 3 || len(head.Hash) != 64 {
					t.Errorf("VerifyStore = %v, %v; want head seq 3, no error", head, err)
				}
				return
			}
			if !errors.As(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("VerifyStore = %v; want %T saying %q", err, tc.want, tc.text)
			}
		})
	}
}

// TestParseCheckpoint: SEQ:HASH with a seq from 1 and 64 hex digits.
func TestParseCheckpoint(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in   string
		want commands.Checkpoint
		ok   bool
	}{
		{"42:" + h, commands.Checkpoint{Seq: 42, Hash: h}, true},
		{" 42:" + strings.ToUpper(h) + "\n", commands.Checkpoint{Seq: 42, Hash: h}, true},
		{"0:" + h, commands.Checkpoint{}, false},
		{"-1:" + h, commands.Checkpoint{}, false},
		{"42", commands.Checkpoint{}, false},
		{"42:" + h[:62], commands.Checkpoint{}, false},
		{"42:" + h[:62] + "zz", commands.Checkpoint{}, false},
		{"x:" + h, commands.Checkpoint{}, false},
	} {
		got, err := commands.ParseCheckpoint(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseCheckpoint(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err == nil && got.String() != strings.TrimSpace(strings.ToLower(tc.in)) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

// TestCheckpointPostsTheHead: Service.Checkpoint puts the chain's head in
// the outbox as a post to the release channel and writes nothing else (no
// audit entry); an empty log posts nothing.
func TestCheckpointPostsTheHead(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if cp, err := h.svc.Checkpoint(ctx); err != nil || cp != (commands.Checkpoint{}) {
		t.Fatalf("Checkpoint of an empty log = %v, %v", cp, err)
	}
	if got := h.drain(); len(got) != 0 {
		t.Errorf("an empty log posted %+v", got)
	}
	h.say(ann, "dobro PAY-1")
	before := h.audit()
	var head commands.Checkpoint
	if err := h.db.View(ctx, func(tx commands.Tx) error {
		var err error
		head.Seq, head.Hash, err = tx.AuditHead()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	cp, err := h.svc.Checkpoint(ctx)
	if err != nil || cp != head {
		t.Fatalf("Checkpoint = %v, %v; want the head %v", cp, err, head)
	}
	var got []commands.Effect
	for _, e := range h.drain() {
		got = append(got, commands.Effect{Kind: e.Kind, Text: e.Text})
	}
	want := []commands.Effect{{Kind: commands.EffectPost, Text: commands.Text{commands.Plain(fmt.Sprintf(
		"Audit checkpoint: seq %d, hash %s (check a copy with: dobrobot audit verify --checkpoint %d:%s)", head.Seq, head.Hash, head.Seq, head.Hash))}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, h.audit()); diff != "" {
		t.Errorf("Checkpoint wrote to the audit log (-before +after):\n%s", diff)
	}
}
