package commands_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/dobrobot/dobrobot/commands"
)

// Issue 12, item 4: when the commit that records a hook's result fails (a
// full disk), the result is kept in memory and recorded again, with backoff,
// until it lands; meanwhile commands on the release say so, and an admin's
// command records it first.

// fullDiskStore fails the commits that record a hook's result, as a full
// disk fails them: nothing is written and the error says why. Other
// transactions (commands, refusals) go through.
type fullDiskStore struct {
	commands.Store
	mu       sync.Mutex
	failures int // how many more to fail; negative: every one
	failed   int // how many were failed
}

func (s *fullDiskStore) Update(ctx context.Context, fn func(commands.Tx) error) error {
	return s.Store.Update(ctx, func(tx commands.Tx) error {
		rt := &resultTx{Tx: tx}
		if err := fn(rt); err != nil {
			return err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !rt.result || s.failures == 0 {
			return nil
		}
		if s.failures > 0 {
			s.failures--
		}
		s.failed++
		return commands.Errorf(commands.EUNAVAILABLE, "write /var/lib/dobrobot/dobrobot.db: no space left on device")
	})
}

// UpdateFirst is Update: the inbox's commits meet the same full disk.
func (s *fullDiskStore) UpdateFirst(ctx context.Context, fn func(commands.Tx) error) error {
	return s.Update(ctx, fn)
}

// set makes the next n hook-result commits fail (negative: all of them).
func (s *fullDiskStore) set(n int) {
	s.mu.Lock()
	s.failures = n
	s.mu.Unlock()
}

func (s *fullDiskStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// resultTx notes whether a transaction records a hook's result (its audit
// detail, see hookDetail).
type resultTx struct {
	commands.Tx
	result bool
}

func (t *resultTx) AppendAudit(e commands.AuditEntry) (commands.AuditEntry, error) {
	if strings.Contains(e.Detail, " hook ok in ") || strings.Contains(e.Detail, " hook failed: ") {
		t.result = true
	}
	return t.Tx.AppendAudit(e)
}

// TestHookResultLandsAfterFailedCommits: the start hook succeeds, the first
// two commits of its result fail; the result lands by itself, with no
// restart, and people are told as usual.
func TestHookResultLandsAfterFailedCommits(t *testing.T) {
	h := newHarness(t)
	store := &fullDiskStore{Store: h.db}
	h.rebuild(func(c *commands.Config) { c.Store = store })
	h.script([]step{
		{ann, "dobro PAY-2 no_need_admin", nil},
		{approver, "accept PAY-2", nil},
	})
	store.set(2)
	began := time.Now()
	effects := h.say(ann, "dep start PAY-2") // waits for the hook and its result
	took := time.Since(began)
	rel := h.release("PAY-2")
	if rel.State != commands.StateDeploying || rel.Running != nil || rel.LastHook == nil || !rel.LastHook.OK {
		t.Fatalf("after two failed commits of the result: %s, running %+v, last hook %+v; want deploying, the result recorded", rel.State, rel.Running, rel.LastHook)
	}
	if n := store.count(); n != 2 {
		t.Errorf("failed commits = %d, want 2", n)
	}
	told := false
	for _, e := range effects {
		told = told || (e.Kind == commands.EffectThread && strings.Contains(render(e.Text), "start hook succeeded"))
	}
	if !told {
		t.Errorf("the thread was not told the hook's result: %+v", effects)
	}
	audit := h.audit()
	if got := audit[len(audit)-1]; got != ann+" started PAY-2 deploying>deploying" {
		t.Errorf("last audit entry %q, want the start hook's result", got)
	}
	t.Logf("FIGURE hook result: landed after %d failed commits, %v after dep start (default backoff from 100 ms)", store.count(), took.Round(time.Millisecond))
	h.script([]step{{ann, "dep finish PAY-2", []string{"Finishing PAY-2"}}})
	if rel := h.release("PAY-2"); rel.State != commands.StateDone {
		t.Errorf("after dep finish: %s", rel.State)
	}
	checkInvariants(t, h.db)
}

// signalBackOff is a retry policy that tells the test each time a commit
// failed and then waits an hour: only an admin's command or the end of the
// Service's HookContext ends the wait.
type signalBackOff struct{ failed chan<- struct{} }

func (b signalBackOff) NextBackOff() time.Duration {
	b.failed <- struct{}{}
	return time.Hour
}

func (signalBackOff) Reset() {}

// holdResults makes h's store fail as told (store.set) and its hook-result
// retries wait on signalBackOff, signalling each failed commit on failed.
// cancel ends the Service's HookContext, and so the retries; it also runs
// when the test ends.
func holdResults(t *testing.T, h *harness) (store *fullDiskStore, failed <-chan struct{}, cancel context.CancelFunc) {
	t.Helper()
	store = &fullDiskStore{Store: h.db}
	signals := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h.rebuild(func(c *commands.Config) {
		c.Store = store
		c.ResultBackOff = func() backoff.BackOff { return signalBackOff{failed: signals} }
		c.HookContext = ctx
	})
	return store, signals, cancel
}

// TestAdminResolvesAHeldHookResult: the result of a start hook keeps
// failing to commit. Commands on the release say that the hook ended and
// that its result is being retried; an admin's dep finish, once the store
// works again, records the held result first and then finishes.
func TestAdminResolvesAHeldHookResult(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fail   bool
		ended  string // what a refused command says of the hook
		action commands.Action
	}{
		{"start hook succeeded", false, "ended and succeeded", commands.ActionStarted},
		{"start hook failed", true, "ended and failed (exited with status 3)", commands.ActionFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			store, failed, _ := holdResults(t, h)
			h.script([]step{
				{ann, "dobro PAY-2 no_need_admin", nil},
				{approver, "accept PAY-2", nil},
			})
			store.set(-1)
			h.start.setFail(tc.fail)
			h.sayNoWait(ann, "dep start PAY-2")
			<-failed // the first commit of the result failed; the next waits
			for _, s := range []struct{ user, text string }{
				{ann, "dep finish PAY-2"},
				{ann, "cancel PAY-2"},
				{ann, "dep start PAY-2"},
			} {
				got := reply(h.sayNoWait(s.user, s.text))
				for _, want := range []string{"The start hook of PAY-2 " + tc.ended, "could not be recorded yet", "no space left on device", "retr"} {
					if !strings.Contains(got, want) {
						t.Errorf("%s while the result is held: %q, want %q in it", s.text, got, want)
					}
				}
			}
			if rel := h.release("PAY-2"); rel.Running == nil || rel.State != commands.StateDeploying {
				t.Errorf("while the result is held: %s, running %+v", rel.State, rel.Running)
			}
			// With the disk still full, the admin's command cannot record it either.
			m := commands.Message{EventID: "admin-disk-full", User: admin, Channel: "C0REL", Text: "dep finish PAY-2", Via: commands.ViaMention}
			if _, err := h.svc.Receive(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if err := h.svc.Handle(context.Background(), m); commands.ErrorCode(err) != commands.EUNAVAILABLE {
				t.Errorf("admin's dep finish with the disk full: Handle = %v, want the store's error", err)
			}
			if got := reply(h.drain()); !strings.Contains(got, "Could not record that") {
				t.Errorf("admin's dep finish with the disk full: %q", got)
			}
			if rel := h.release("PAY-2"); rel.Running == nil {
				t.Errorf("a failed admin command recorded the result: %+v", rel)
			}
			store.set(0)
			n := len(h.audit())
			effects := h.say(admin, "dep finish PAY-2") // waits for the retry loop and the finish hook
			got := reply(effects)
			if !strings.Contains(got, "Recorded the held result of the start hook of PAY-2") || !strings.Contains(got, "PAY-2 is done") && !strings.Contains(got, "Finishing PAY-2") {
				t.Errorf("admin's dep finish once the store works: %q", got)
			}
			rel := h.release("PAY-2")
			if rel.State != commands.StateDone || rel.Running != nil {
				t.Errorf("after the admin's dep finish: %s, running %+v; want done", rel.State, rel.Running)
			}
			audit := h.audit()[n:]
			if len(audit) < 2 || audit[0] != ann+" "+string(tc.action)+" PAY-2 deploying>"+map[bool]string{false: "deploying", true: "failed"}[tc.fail] {
				t.Errorf("audit after the admin's dep finish = %v, want the held %s result first", audit, tc.action)
			}
			if last := audit[len(audit)-1]; !strings.HasSuffix(last, " finish PAY-2 "+map[bool]string{false: "deploying", true: "failed"}[tc.fail]+">done") {
				t.Errorf("last audit entry %q, want the finish", last)
			}
			if n := h.start.count(); n != 1 {
				t.Errorf("start hook ran %d times, want 1", n)
			}
			checkInvariants(t, h.db)
		})
	}
}

// TestAdminUnlockRecordsAHeldCancelResult: the cancel hook of a cancelled
// release ended, but its result (which frees the release's locks) keeps
// failing to commit. The locks stay held and say why; an admin's unlock,
// once the store works again, records the held result, which frees them
// and tells the next in line.
func TestAdminUnlockRecordsAHeldCancelResult(t *testing.T) {
	h, _ := cancelHarness(t)
	h.rebuild(func(c *commands.Config) { c.Hooks.Cancel = &fakeExec{} })
	store, failed, _ := holdResults(t, h)
	store.set(-1)
	h.sayNoWait(ann, "cancel PAY-2")
	<-failed
	for _, s := range []struct{ user, text, want string }{
		{bob, "dep start PAY-3", "Backend is locked by PAY-2"},
		{guest, "status PAY-2", "The cancel hook of PAY-2 ended and succeeded just now, but its result could not be recorded yet (write /var/lib/dobrobot/dobrobot.db: no space left on device): dobrobot keeps retrying."},
	} {
		if got := reply(h.sayNoWait(s.user, s.text)); !strings.Contains(got, s.want) {
			t.Errorf("%s while the cancel hook's result is held: %q, want %q in it", s.text, got, s.want)
		}
	}
	store.set(0)
	effects := h.say(admin, "unlock backend")
	if got := reply(effects); !strings.Contains(got, "Recorded the held result of the cancel hook of PAY-2 first (it succeeded)") {
		t.Errorf("admin's unlock: %q", got)
	}
	if got := youreNext(effects, bob); len(got) != 1 {
		t.Errorf("bob's you're-next DMs = %v, want one", got)
	}
	if got := h.locks(); len(got) != 0 {
		t.Errorf("locks after the admin's unlock = %v", got)
	}
	audit := h.audit()
	if got := audit[len(audit)-1]; got != ann+" hook PAY-2 cancelled>cancelled" {
		t.Errorf("last audit entry %q, want the cancel hook's result", got)
	}
	checkInvariants(t, h.db)
	h.script([]step{{bob, "dep start PAY-3", []string{"Deploy of PAY-3 started."}}})
}

// TestHeldResultEndsWithHookContext: a result that never lands does not
// keep a shutdown waiting: the retries end with the Service's HookContext,
// Wait returns, and the next start calls the hook's outcome unknown.
func TestHeldResultEndsWithHookContext(t *testing.T) {
	h := newHarness(t)
	store, failed, cancel := holdResults(t, h)
	h.script([]step{
		{ann, "dobro PAY-2 no_need_admin", nil},
		{approver, "accept PAY-2", nil},
	})
	store.set(-1)
	h.sayNoWait(ann, "dep start PAY-2")
	<-failed
	cancel() // the shutdown's grace ran out
	h.waitAfterHookContext("")
	h.svc = commands.NewService(commands.Config{Store: h.db, Tracker: h.cfg.Tracker, Hooks: h.cfg.Hooks, Groups: h.cfg.Groups, Policy: h.cfg.Policy, Now: h.cfg.Now, Log: h.cfg.Log})
	if err := h.svc.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rel := h.release("PAY-2"); rel.Running != nil || rel.LastHook == nil || !strings.Contains(rel.LastHook.Error, "outcome unknown") {
		t.Errorf("after the restart: running %+v, last hook %+v; want the outcome unknown", rel.Running, rel.LastHook)
	}
}
