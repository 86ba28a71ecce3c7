package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/failpoint"
)

// seedCrash builds the database the dep start crash tests start from: PAY-1
// requested, accepted and claimed; PAY-2 waiting behind it. With started, PAY-1's
// start hook has also run: the start for the dep finish tests.
func seedCrash(t *testing.T, started bool) string {
	w := newWorld(t, worldOptions{})
	p := w.start("")
	w.claimFirstOfTwo()
	if started {
		w.send(requester, "dep start PAY-1")
		w.waitAudit("PAY-1", commands.ActionStarted, 0)
	}
	p.kill() // a crash is as good a stop as any
	w.inspect("PAY-1", "PAY-2")
	return w.copyDB()
}

// claimFirstOfTwo requests PAY-1 and PAY-2, then has PAY-1 accepted and
// claimed: the start of the seeds of the crash and tamper tests.
func (w *world) claimFirstOfTwo() {
	w.send(requester, "dobro PAY-1")
	w.waitReply(requester, "PAY-1> is in the queue")
	w.send(requester, "dobro PAY-2")
	w.waitReply(requester, "PAY-2> is in the queue")
	w.send(approver, "accept PAY-1")
	w.waitReply(approver, "You accepted PAY-1.")
	w.send(admin, "here PAY-1")
	w.waitReply(admin, "You claimed PAY-1.")
}

// copyDB returns a copy of the world's database file, for seeding other
// worlds; the bot must be stopped.
func (w *world) copyDB() string {
	w.t.Helper()
	seed := filepath.Join(w.t.TempDir(), "seed.db")
	data, err := os.ReadFile(w.db)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(seed, data, 0o600); err != nil {
		w.t.Fatal(err)
	}
	return seed
}

// crashCase is one kill -9 at a failpoint of dep start or dep finish.
type crashCase struct {
	failpoint string // as armed, with its delay
	// committed: the command's transaction committed before the kill (the
	// release is deploying with its hook attempt recorded); otherwise it
	// is still to be handled after the restart.
	committed bool
	spawned   int  // hooks of the phase spawned before the kill
	noAck     bool // the bot dies before it acks the command
}

// TestCrashDepStart kills the bot at each failpoint of dep start, starts it
// again, and checks that the hook was spawned at most once, that a release
// whose hook may have run is reported and keeps its locks rather than being
// re-run, that nothing acknowledged was lost, and that an admin can resolve
// it (docs/reliability.md, T14, R3).
func TestCrashDepStart(t *testing.T) {
	t.Parallel()
	seed := seedCrash(t, false)
	cases := []crashCase{
		{failpoint: failpoint.AfterInboxCommitBeforeAck, noAck: true},
		{failpoint: failpoint.BeforeTransitionCommit},
		{failpoint: failpoint.AfterTransitionCommitBeforeOutboxSend, committed: true},
		{failpoint: failpoint.AfterDeployIntentCommitBeforeSpawn, committed: true},
		{failpoint: failpoint.HookRunning + "=150ms", committed: true, spawned: 1},
		{failpoint: failpoint.AfterHookExitBeforeResultCommit, committed: true, spawned: 1},
	}
	for i, tc := range cases {
		t.Run(tc.failpoint, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, worldOptions{seed: seed})
			name, _, _ := strings.Cut(tc.failpoint, "=")
			p := w.start(tc.failpoint)
			env := w.send(requester, "dep start PAY-1")
			p.waitCrash(name)
			// A hook spawned before the kill records itself as it starts,
			// maybe just after: wait for that record rather than a pause.
			// With spawned 0 the failpoint precedes the spawn, so none can
			// come.
			if tc.spawned > 0 {
				waitFor(20*time.Second, func() bool { return countSpawns(w.spawns(), "PAY-1", "start") >= tc.spawned })
			}
			s := w.inspect("PAY-1", "PAY-2")
			rel := s.last["PAY-1"]
			// The ack is written by the Socket Mode client's own goroutine,
			// so one sent just before the kill may never leave: only its
			// absence is certain.
			if got := w.acked(env.EventID()); got && tc.noAck {
				t.Errorf("acked before the kill, though the bot died before acking")
			}
			if got := countSpawns(w.spawns(), "PAY-1", "start"); got != tc.spawned {
				t.Errorf("start hooks spawned before the kill = %d, want %d", got, tc.spawned)
			}
			if tc.committed {
				if rel.State != commands.StateDeploying || rel.Running == nil || s.lockHolders()["backend"] != "PAY-1" {
					t.Errorf("after the kill: PAY-1 %s, running %v, locks %v; want deploying with its hook attempt recorded and its locks", rel.State, rel.Running, s.lockHolders())
				}
			} else {
				if rel.State != commands.StateClaimed || len(s.lockHolders()) != 0 || len(s.pending) != 1 {
					t.Errorf("after the kill: PAY-1 %s, locks %v, %d unprocessed events; want claimed, no locks, the dep start in the inbox", rel.State, s.lockHolders(), len(s.pending))
				}
			}

			// Restart: what was acknowledged is done, what may have run is
			// reported and not run again.
			p = w.start("")
			// Slack redelivers an envelope whose ack did not reach it.
			if !waitFor(15*time.Second, func() bool { return w.acked(env.EventID()) }) {
				t.Errorf("the dep start was never acked")
			}
			if !tc.committed {
				w.waitAudit("PAY-1", commands.ActionStarted, 0)
				// Not a pause: a clean stop returns once the commands in
				// flight are handled and every hook the bot started has
				// ended, so a second spawn would be recorded by then.
				p.stop()
				if got := countSpawns(w.spawns(), "PAY-1", "start"); got != 1 {
					t.Errorf("start hooks spawned = %d, want 1", got)
				}
				s := w.inspect("PAY-1", "PAY-2")
				if rel := s.last["PAY-1"]; rel.State != commands.StateDeploying || rel.LastHook == nil || !rel.LastHook.OK || len(s.pending) != 0 {
					t.Errorf("after the restart: PAY-1 %s, last hook %+v, %d unprocessed; want deploying, start hook ok", rel.State, rel.LastHook, len(s.pending))
				}
				return
			}
			w.waitAudit("PAY-1", commands.ActionInterrupt, 0)
			w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(channel) }, "restarted while the start hook of", "an alert in the release channel")
			w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(fakeslack.DMChannel(requester)) }, "restarted while the start hook", "an alert to the requester")
			w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(fakeslack.DMChannel(admin)) }, "restarted while the start hook", "an alert to the admin")
			w.send(requester, "queue")
			w.waitReply(requester, "backend is locked by")
			if got := countSpawns(w.spawns(), "PAY-1", "start"); got != tc.spawned {
				t.Errorf("start hooks spawned after the restart = %d, want %d (no automatic re-run)", got, tc.spawned)
			}
			p.kill()
			s = w.inspect("PAY-1", "PAY-2")
			rel = s.last["PAY-1"]
			if rel.State != commands.StateDeploying || rel.Running != nil || rel.LastHook == nil || rel.LastHook.OK || s.lockHolders()["payments"] != "PAY-1" {
				t.Errorf("after the restart: PAY-1 %s, running %v, last hook %+v, locks %v; want deploying, outcome unknown, locks held", rel.State, rel.Running, rel.LastHook, s.lockHolders())
			}

			// An admin resolves it: half the cases finish, half start again.
			p = w.start("")
			n := len(w.audit("PAY-1"))
			if i%2 == 0 {
				w.send(admin, "dep finish PAY-1")
				w.waitAudit("PAY-1", commands.ActionFinish, n)
			} else {
				w.send(admin, "dep start PAY-1")
				w.waitAudit("PAY-1", commands.ActionStarted, n)
			}
			p.kill()
			s = w.inspect("PAY-1", "PAY-2")
			want := map[string]string{}
			if i%2 == 1 {
				want = map[string]string{"backend": "PAY-1", "payments": "PAY-1"}
			}
			if got := s.lockHolders(); !maps.Equal(got, want) {
				t.Errorf("locks after the admin's resolution = %v, want %v", got, want)
			}
		})
	}
}

// TestCrashDepFinish kills the bot at each failpoint of dep finish, starts
// it again, and checks the same things: a finish hook that may have run is
// reported, not re-run, and the locks stay until an admin finishes again.
func TestCrashDepFinish(t *testing.T) {
	t.Parallel()
	seed := seedCrash(t, true)
	cases := []crashCase{
		{failpoint: failpoint.BeforeTransitionCommit},
		{failpoint: failpoint.AfterTransitionCommitBeforeOutboxSend, committed: true},
		{failpoint: failpoint.AfterFinishIntentCommitBeforeSpawn, committed: true},
		{failpoint: failpoint.HookRunning + "=150ms", committed: true, spawned: 1},
		{failpoint: failpoint.AfterHookExitBeforeResultCommit, committed: true, spawned: 1},
	}
	for _, tc := range cases {
		t.Run(tc.failpoint, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, worldOptions{seed: seed})
			name, _, _ := strings.Cut(tc.failpoint, "=")
			p := w.start(tc.failpoint)
			env := w.send(requester, "dep finish PAY-1")
			p.waitCrash(name)
			if tc.spawned > 0 { // as in the start case: wait for the hook's own record
				waitFor(20*time.Second, func() bool { return countSpawns(w.spawns(), "PAY-1", "finish") >= tc.spawned })
			}
			s := w.inspect("PAY-1", "PAY-2")
			rel := s.last["PAY-1"]
			// The ack is written by the Socket Mode client's own goroutine,
			// so one sent just before the kill may never leave: only its
			// absence is certain.
			if got := w.acked(env.EventID()); got && tc.noAck {
				t.Errorf("acked before the kill, though the bot died before acking")
			}
			if got := countSpawns(w.spawns(), "PAY-1", "finish"); got != tc.spawned {
				t.Errorf("finish hooks spawned before the kill = %d, want %d", got, tc.spawned)
			}
			if rel.State != commands.StateDeploying || s.lockHolders()["backend"] != "PAY-1" || (rel.Running != nil) != tc.committed {
				t.Errorf("after the kill: PAY-1 %s, running %v, locks %v; want deploying, locks held, finish attempt recorded: %v\n%s", rel.State, rel.Running, s.lockHolders(), tc.committed, p.logs)
			}

			p = w.start("")
			if !waitFor(15*time.Second, func() bool { return w.acked(env.EventID()) }) {
				t.Errorf("the dep finish was never acked")
			}
			if !tc.committed {
				w.waitAudit("PAY-1", commands.ActionFinish, 0)
				p.stop() // as in the start case: every hook has ended when it returns
				if got := countSpawns(w.spawns(), "PAY-1", "finish"); got != 1 {
					t.Errorf("finish hooks spawned = %d, want 1", got)
				}
				s := w.inspect("PAY-1", "PAY-2")
				if rel := s.last["PAY-1"]; rel.State != commands.StateDone || len(s.lockHolders()) != 0 {
					t.Errorf("after the restart: PAY-1 %s, locks %v; want done, no locks", rel.State, s.lockHolders())
				}
				return
			}
			w.waitAudit("PAY-1", commands.ActionInterrupt, 0)
			w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(channel) }, "restarted while the finish hook of", "an alert in the release channel")
			if got := countSpawns(w.spawns(), "PAY-1", "finish"); got != tc.spawned {
				t.Errorf("finish hooks spawned after the restart = %d, want %d (no automatic re-run)", got, tc.spawned)
			}
			p.kill()
			s = w.inspect("PAY-1", "PAY-2")
			if rel := s.last["PAY-1"]; rel.State != commands.StateDeploying || rel.Running != nil || s.lockHolders()["payments"] != "PAY-1" {
				t.Errorf("after the restart: PAY-1 %s, running %v, locks %v; want deploying, outcome unknown, locks held", rel.State, rel.Running, s.lockHolders())
			}

			p = w.start("")
			n := len(w.audit("PAY-1"))
			w.send(admin, "dep finish PAY-1")
			w.waitAudit("PAY-1", commands.ActionFinish, n)
			p.kill()
			s = w.inspect("PAY-1", "PAY-2")
			if got := s.lockHolders(); len(got) != 0 || s.last["PAY-1"].State != commands.StateDone {
				t.Errorf("after the admin's dep finish: PAY-1 %s, locks %v; want done, none", s.last["PAY-1"].State, got)
			}
			if got := countSpawns(w.spawns(), "PAY-1", "finish"); got != tc.spawned+1 {
				t.Errorf("finish hooks spawned in all = %d, want %d", got, tc.spawned+1)
			}
		})
	}
}

// TestCrashCancelHook kills the bot while the cancel hook of a deploying
// release runs, and after it ended but before its result was recorded
// (issue 12, item 3): after the restart the cancelled release still holds
// its locks, its hook is reported and not run again, another release on the
// same component cannot start until an admin frees the component, and then
// it can.
func TestCrashCancelHook(t *testing.T) {
	t.Parallel()
	seed := seedCrash(t, true)
	for _, fp := range []string{failpoint.HookRunning + "=150ms", failpoint.AfterHookExitBeforeResultCommit} {
		t.Run(fp, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, worldOptions{seed: seed, cancel: true})
			name, _, _ := strings.Cut(fp, "=")
			p := w.start(fp)
			w.send(requester, "cancel PAY-1 rollback")
			p.waitCrash(name)
			s := w.inspect("PAY-1", "PAY-2")
			rel := s.last["PAY-1"]
			if rel.State != commands.StateCancelled || rel.Running == nil || rel.Running.Phase != commands.PhaseCancel ||
				!maps.Equal(s.lockHolders(), map[string]string{"backend": "PAY-1", "payments": "PAY-1"}) {
				t.Errorf("after the kill: PAY-1 %s, running %+v, locks %v; want cancelled, its cancel hook running, its locks held", rel.State, rel.Running, s.lockHolders())
			}
			if got := countSpawns(w.spawns(), "PAY-1", "cancel"); got != 1 {
				t.Errorf("cancel hooks spawned before the kill = %d, want 1", got)
			}

			p = w.start("")
			w.waitAudit("PAY-1", commands.ActionInterrupt, 0)
			w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(fakeslack.DMChannel(requester)) }, "restarted while the cancel hook", "an alert to the requester")
			w.send(approver, "accept PAY-2")
			w.waitReply(approver, "You accepted PAY-2.")
			w.send(admin, "here PAY-2")
			w.waitReply(admin, "You claimed PAY-2.")
			w.send(requester, "dep start PAY-2")
			w.waitReply(requester, "Backend is locked by PAY-1")
			w.send(admin, "unlock backend")
			w.waitReply(admin, "Freed backend")
			w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(fakeslack.DMChannel(requester)) }, "You're next", "you're next for PAY-2")
			n := len(w.audit("PAY-2"))
			w.send(requester, "dep start PAY-2")
			w.waitAudit("PAY-2", commands.ActionStarted, n)
			p.kill()
			s = w.inspect("PAY-1", "PAY-2")
			if got, want := s.lockHolders(), map[string]string{"backend": "PAY-2", "payments": "PAY-1"}; !maps.Equal(got, want) {
				t.Errorf("locks after the admin's unlock and PAY-2's start = %v, want %v", got, want)
			}
			if got := countSpawns(w.spawns(), "PAY-1", "cancel"); got != 1 {
				t.Errorf("cancel hooks spawned in all = %d, want 1 (no automatic re-run)", got)
			}
		})
	}
}
