package commands_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// Issue 12, item 1: a command the bot answered "nothing was changed" must
// never run later by itself, and a pending event is replayed after a restart
// only while Slack itself could still have delivered it.

// diskFull is a Store whose disk is full for the transactions that change
// state: a transaction that writes a release, a lock or an audit entry fails
// as a full disk makes a commit fail, and nothing of it stays. The reply
// that tells the user (an outbox effect and the inbox record) still fits,
// as it did in the report. With all set, every transaction fails.
type diskFull struct {
	commands.Store
	full atomic.Bool
	all  atomic.Bool
}

// errDiskFull is what a commit on a full disk returns.
var errDiskFull = commands.Errorf(commands.EUNAVAILABLE, "could not write to the database: no space left on device")

func (s *diskFull) Update(ctx context.Context, fn func(commands.Tx) error) error {
	if !s.full.Load() {
		return s.Store.Update(ctx, fn)
	}
	return s.Store.Update(ctx, func(tx commands.Tx) error {
		w := &writeWatch{Tx: tx}
		if err := fn(w); err != nil {
			return err
		}
		if w.wrote || s.all.Load() {
			return errDiskFull
		}
		return nil
	})
}

// UpdateFirst is Update: the inbox's commits meet the same full disk.
func (s *diskFull) UpdateFirst(ctx context.Context, fn func(commands.Tx) error) error {
	return s.Update(ctx, fn)
}

// writeWatch notes whether a transaction changed any state.
type writeWatch struct {
	commands.Tx
	wrote bool
}

func (w *writeWatch) PutRelease(r commands.Release) (commands.Release, error) {
	w.wrote = true
	return w.Tx.PutRelease(r)
}

func (w *writeWatch) PutLock(l commands.Lock) error {
	w.wrote = true
	return w.Tx.PutLock(l)
}

func (w *writeWatch) DeleteLock(c string, id uint64, env string) error {
	w.wrote = true
	return w.Tx.DeleteLock(c, id, env)
}

func (w *writeWatch) PutDeployed(d commands.Deployed) error {
	w.wrote = true
	return w.Tx.PutDeployed(d)
}

func (w *writeWatch) AppendAudit(e commands.AuditEntry) (commands.AuditEntry, error) {
	w.wrote = true
	return w.Tx.AppendAudit(e)
}

// restart returns a new Service on the harness's store, as a restart makes
// it, whose clock reads h.now.
func (h *harness) restart() *commands.Service {
	svc := commands.NewService(commands.Config{Store: h.db, Tracker: h.cfg.Tracker, Hooks: h.cfg.Hooks, Groups: h.cfg.Groups,
		Policy: h.cfg.Policy, Now: func() time.Time { return h.now }, Log: h.cfg.Log})
	h.svc = svc
	return svc
}

// restartAfter moves the clock on by d, restarts the Service, runs its
// Recover, waits for any hook it started and returns the effects it queued.
func (h *harness) restartAfter(d time.Duration) []commands.Effect {
	h.t.Helper()
	h.now = h.now.Add(d)
	svc := h.restart()
	if err := svc.Recover(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	svc.Wait()
	return h.drain()
}

func (h *harness) event(id string) commands.InboxEvent {
	h.t.Helper()
	var ev commands.InboxEvent
	err := h.db.View(context.Background(), func(tx commands.Tx) error {
		var err error
		var ok bool
		if ev, ok, err = tx.Event(id); err == nil && !ok {
			h.t.Fatalf("event %s is not in the inbox", id)
		}
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return ev
}

// TestAnsweredFailureIsNeverReplayed: with the disk full, dep start and dobro
// are answered "nothing was changed"; after the disk is freed and the bot
// restarts (within Slack's retry window, so the age of the event is not what
// stops it), Recover runs neither: no release starts, no hook runs, no
// release is queued, and the inbox says the event failed.
func TestAnsweredFailureIsNeverReplayed(t *testing.T) {
	for _, tc := range []struct {
		name, text string
	}{
		{"dep start", "dep start PAY-2"},
		{"dobro", "dobro PAY-3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.script([]step{
				{ann, "dobro PAY-2 no_need_admin", nil},
				{approver, "accept PAY-2", nil},
			})
			auditBefore := h.audit()
			store := &diskFull{Store: h.db}
			store.full.Store(true)
			h.rebuild(func(c *commands.Config) { c.Store = store })
			m := commands.Message{EventID: "ev-full", User: ann, Channel: "C0REL", Text: tc.text, Via: commands.ViaMention, Time: h.now}
			if fresh, err := h.svc.Receive(context.Background(), m); err != nil || !fresh {
				t.Fatalf("Receive: %t, %v", fresh, err)
			}
			if err := h.svc.Handle(context.Background(), m); err == nil {
				t.Fatal("Handle succeeded on a full disk: the test proves nothing")
			}
			got := reply(h.drain())
			if !strings.Contains(got, "no space left on device") || !strings.Contains(got, "nothing was changed") {
				t.Fatalf("reply on a full disk = %q, want it to say nothing was changed", got)
			}

			// The disk is freed; the bot restarts a minute later.
			effects := h.restartAfter(time.Minute)
			if n := h.start.count(); n != 0 {
				t.Errorf("%d start hooks ran after the restart", n)
			}
			if rel := h.release("PAY-2"); rel.State != commands.StateAccepted {
				t.Errorf("PAY-2 is %s after the restart, want accepted", rel.State)
			}
			if err := h.db.View(context.Background(), func(tx commands.Tx) error {
				_, err := tx.LastRelease("PAY-3")
				if commands.ErrorCode(err) != commands.ENOTFOUND {
					t.Errorf("PAY-3 after the restart: %v, want no release", err)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(auditBefore, h.audit()); diff != "" {
				t.Errorf("audit changed after the restart (-before +after):\n%s", diff)
			}
			if len(effects) != 0 {
				t.Errorf("the restart told people %+v", effects)
			}
			if ev := h.event("ev-full"); !ev.Processed || !ev.Failed {
				t.Errorf("inbox record %+v, want processed and failed", ev)
			}
		})
	}
}

// TestUnansweredYoungEventIsReplayed: when even the answer could not be
// recorded, nobody was told anything: the event stays pending and a restart
// within Slack's retry window carries it out, as Slack's own retry would.
func TestUnansweredYoungEventIsReplayed(t *testing.T) {
	h := newHarness(t)
	h.script([]step{
		{ann, "dobro PAY-2 no_need_admin", nil},
		{approver, "accept PAY-2", nil},
	})
	store := &diskFull{Store: h.db}
	store.full.Store(true)
	store.all.Store(true)
	m := commands.Message{EventID: "ev-young", User: ann, Channel: "C0REL", Text: "dep start PAY-2", Via: commands.ViaMention, Time: h.now}
	if fresh, err := h.svc.Receive(context.Background(), m); err != nil || !fresh {
		t.Fatalf("Receive: %t, %v", fresh, err)
	}
	// The event is in the inbox; the Service that handles it meets the full
	// disk.
	h.rebuild(func(c *commands.Config) { c.Store = store })
	if err := h.svc.Handle(context.Background(), m); err == nil {
		t.Fatal("Handle succeeded on a full disk: the test proves nothing")
	}
	if effects := h.drain(); len(effects) != 0 {
		t.Fatalf("with every write failing, someone was told %+v", effects)
	}
	if got := reply(h.restartAfter(commands.ReplayWindow - time.Second)); !strings.Contains(got, "Deploy of PAY-2 started.") {
		t.Errorf("reply after the restart = %q, want the deploy started", got)
	}
	if rel := h.release("PAY-2"); rel.State != commands.StateDeploying || h.start.count() != 1 {
		t.Errorf("PAY-2 is %s with %d start hooks, want deploying with 1", rel.State, h.start.count())
	}
	if ev := h.event("ev-young"); !ev.Processed || ev.Failed {
		t.Errorf("inbox record %+v, want processed, not failed", ev)
	}
}

// TestStalePendingEventIsDropped: an event received before a stop and older
// than Slack's retry window when the bot starts again is not carried out;
// its sender is told so by DM, with the command and when it was sent.
func TestStalePendingEventIsDropped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		msg    commands.Message
		quoted string // how the DM names the command
	}{
		{"dep start", commands.Message{EventID: "ev-old", User: ann, Channel: "C0REL", Text: "dep start PAY-2", Via: commands.ViaMention}, "`dep start PAY-2`"},
		{"dobro by DM", commands.Message{EventID: "ev-old", User: ann, Text: "dobro PAY-3 <!here>`x`", Via: commands.ViaDM}, "`dobro PAY-3 &lt;!here&gt;'x'`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.script([]step{
				{ann, "dobro PAY-2 no_need_admin", nil},
				{approver, "accept PAY-2", nil},
			})
			h.now = time.Date(2026, 11, 22, 14, 2, 0, 0, time.UTC)
			auditBefore := h.audit()
			if fresh, err := h.svc.Receive(context.Background(), tc.msg); err != nil || !fresh {
				t.Fatalf("Receive: %t, %v", fresh, err)
			}
			// The bot stops before handling it and starts again later.
			effects := h.restartAfter(commands.ReplayWindow + time.Second)
			if n := h.start.count(); n != 0 {
				t.Errorf("%d start hooks ran for a stale event", n)
			}
			if rel := h.release("PAY-2"); rel.State != commands.StateAccepted {
				t.Errorf("PAY-2 is %s, want accepted", rel.State)
			}
			if diff := cmp.Diff(auditBefore, h.audit()); diff != "" {
				t.Errorf("audit changed (-before +after):\n%s", diff)
			}
			dms := dmsTo(effects, ann)
			if len(dms) != 1 || len(effects) != 1 {
				t.Fatalf("effects %+v, want one DM to the sender", effects)
			}
			for _, want := range []string{"from 14:02 UTC was not carried out", "dobrobot stopped before it could", "Nothing was changed", "send it again"} {
				if !strings.Contains(render(dms[0].Text), want) {
					t.Errorf("DM %q does not say %q", render(dms[0].Text), want)
				}
			}
			if !strings.Contains(render(dms[0].Text), "Your command "+tc.quoted+" from") {
				t.Errorf("DM %q does not name the command as %s", render(dms[0].Text), tc.quoted)
			}
			if p := spanProblems(dms[0].Text, []string{ann}); len(p) > 0 || strings.Count(render(dms[0].Text), "`") != 2 {
				t.Errorf("DM %q echoes the command unsafely: %v", render(dms[0].Text), p)
			}
			if ev := h.event("ev-old"); !ev.Processed || !ev.Failed {
				t.Errorf("inbox record %+v, want processed and failed", ev)
			}
			// A second start has nothing left to do.
			h.now = h.now.Add(time.Minute)
			if err := h.restart().Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			if effects := h.drain(); len(effects) != 0 {
				t.Errorf("a second restart told people %+v", effects)
			}
		})
	}
}
