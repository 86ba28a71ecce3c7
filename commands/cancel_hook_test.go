package commands_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// Issue 12, item 3: a cancel hook rolls a deploy back, so the cancelled
// release keeps its locks until the hook has ended, whatever its result; the
// next release is told "you're next" only then, and cannot dep start on the
// same component meanwhile.

// cancelHarness is a harness with a cancel hook that the test holds, PAY-2
// (backend) deploying and PAY-3 (backend, web) accepted behind it.
func cancelHarness(t *testing.T) (*harness, *fakeExec) {
	t.Helper()
	h := newHarness(t)
	cancel := &fakeExec{hold: true, gate: make(chan commands.HookResult, 1), spawn: make(chan commands.Job, 1)}
	h.rebuild(func(c *commands.Config) { c.Hooks.Cancel = cancel })
	h.script([]step{
		{ann, "dobro PAY-2 no_need_admin", nil},
		{approver, "accept PAY-2", nil},
		{ann, "dep start PAY-2", []string{"started"}},
		{bob, "dobro PAY-3 no_need_admin", nil},
		{approver, "accept PAY-3", nil},
		{bob, "dep start PAY-3", []string{"Backend is locked by PAY-2"}},
	})
	return h, cancel
}

// auditEntries returns every audit entry of the harness's store.
func (h *harness) auditEntries() []commands.AuditEntry {
	h.t.Helper()
	var out []commands.AuditEntry
	err := h.db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// youreNext returns the "You're next" DMs to user among effects.
func youreNext(effects []commands.Effect, user string) []string {
	var out []string
	for _, e := range dmsTo(effects, user) {
		if strings.Contains(render(e.Text), "You're next") {
			out = append(out, render(e.Text))
		}
	}
	return out
}

func TestCancelHookKeepsLocksUntilItEnds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		result commands.HookResult
		action commands.Action
	}{
		{"hook succeeds", commands.HookResult{OK: true, Duration: time.Second}, commands.ActionHook},
		{"hook fails", commands.HookResult{ExitCode: 1, Error: "exited with status 1"}, commands.ActionHookFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, cancel := cancelHarness(t)
			effects := h.sayNoWait(ann, "cancel PAY-2 wrong build")
			job := <-cancel.spawn
			if got := reply(effects); !strings.Contains(got, "PAY-2 is cancelled.") || !strings.Contains(got, "backend stay locked until it ends") {
				t.Errorf("cancel reply = %q", got)
			}
			if got := youreNext(effects, bob); len(got) != 0 {
				t.Errorf("bob was told he is next while the cancel hook runs: %v", got)
			}
			// While the cancel hook runs: the lock stays, another release
			// on backend is refused with the reason, and people see why.
			if got, want := h.locks(), []string{"backend=PAY-2"}; !cmp.Equal(got, want) {
				t.Errorf("locks while the cancel hook runs = %v, want %v", got, want)
			}
			rel := h.release("PAY-2")
			if rel.State != commands.StateCancelled || rel.Running == nil || rel.Running.Attempt != job.Attempt || rel.Running.Phase != commands.PhaseCancel {
				t.Errorf("PAY-2 while its cancel hook runs: %s, running %+v; want cancelled, running attempt %s", rel.State, rel.Running, job.Attempt)
			}
			for _, s := range []struct{ user, text, want string }{
				{bob, "dep start PAY-3", "Backend is locked by PAY-2"},
				{bob, "dep start PAY-3", "whose cancel hook is running"},
				{guest, "queue", "backend is locked by PAY-2"},
				{guest, "queue", "whose cancel hook is running"},
				{guest, "status PAY-2", "still locks backend, which is cancelled and whose cancel hook is running"},
				{admin, "unlock backend", "whose cancel hook is running"},
			} {
				if got := reply(h.sayNoWait(s.user, s.text)); !strings.Contains(got, s.want) {
					t.Errorf("%s while the cancel hook runs: %q, want %q in it", s.text, got, s.want)
				}
			}
			if rel := h.release("PAY-3"); rel.State != commands.StateAccepted {
				t.Errorf("PAY-3 is %s while PAY-2's cancel hook runs, want accepted", rel.State)
			}
			entries := h.auditEntries()
			var cancelEntry commands.AuditEntry
			for _, e := range entries {
				if e.Action == commands.ActionCancel {
					cancelEntry = e
				}
			}
			if want := "cancel hook attempt " + job.Attempt; !strings.Contains(cancelEntry.Detail, want) || cancelEntry.From != commands.StateDeploying || cancelEntry.To != commands.StateCancelled {
				t.Errorf("cancel entry %+v, want deploying>cancelled with %q in its detail", cancelEntry, want)
			}

			cancel.gate <- tc.result
			h.svc.Wait()
			effects = h.drain()
			if got := youreNext(effects, bob); len(got) != 1 || !strings.Contains(got[0], "PAY-3") {
				t.Errorf("after the cancel hook, bob's you're-next DMs = %v, want one for PAY-3", got)
			}
			if got := h.locks(); len(got) != 0 {
				t.Errorf("locks after the cancel hook = %v, want none", got)
			}
			rel = h.release("PAY-2")
			if rel.Running != nil || rel.LastHook == nil || rel.LastHook.OK != tc.result.OK {
				t.Errorf("PAY-2 after its cancel hook: running %+v, last hook %+v", rel.Running, rel.LastHook)
			}
			last := h.auditEntries()
			if got := last[len(last)-1]; got.Action != tc.action || got.Ticket != "PAY-2" || got.From != commands.StateCancelled || got.To != commands.StateCancelled || got.Actor != ann {
				t.Errorf("last audit entry %+v, want %s PAY-2 cancelled>cancelled by %s", got, tc.action, ann)
			}
			checkInvariants(t, h.db)
			h.script([]step{{bob, "dep start PAY-3", []string{"Deploy of PAY-3 started."}}})
			h.svc.Wait()
		})
	}
}

// TestRecoverCancelHookKeepsLocks: a restart while a cancel hook runs finds
// it through the locks it holds (a cancelled release is not in the open
// index), calls its outcome unknown and keeps the locks; only an admin's
// unlock frees them, one component at a time, audited on the release.
func TestRecoverCancelHookKeepsLocks(t *testing.T) {
	h, cancel := cancelHarness(t)
	h.sayNoWait(ann, "cancel PAY-2")
	<-cancel.spawn
	old := h.svc
	svc := commands.NewService(commands.Config{Store: h.cfg.Store, Tracker: h.cfg.Tracker, Hooks: commands.Hooks{Start: h.start, Finish: h.finish, Cancel: &fakeExec{}},
		Groups: h.cfg.Groups, Policy: h.cfg.Policy, Now: h.cfg.Now, Log: h.cfg.Log})
	if err := svc.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	effects := h.drain()
	rel := h.release("PAY-2")
	if rel.State != commands.StateCancelled || rel.Running != nil || rel.LastHook == nil || !strings.Contains(rel.LastHook.Error, "outcome unknown") {
		t.Errorf("after recover: %s, running %+v, last hook %+v", rel.State, rel.Running, rel.LastHook)
	}
	if got, want := h.locks(), []string{"backend=PAY-2"}; !cmp.Equal(got, want) {
		t.Errorf("locks after recover = %v, want %v", got, want)
	}
	if dms := dmsTo(effects, ann); len(dms) != 1 || !strings.Contains(render(dms[0].Text), "outcome is unknown") || !strings.Contains(render(dms[0].Text), "unlock backend") {
		t.Errorf("requester DMs = %+v, want one saying the outcome is unknown and how to free backend", dms)
	}
	if got := youreNext(effects, bob); len(got) != 0 {
		t.Errorf("bob told he is next after the restart: %v", got)
	}
	entries := h.auditEntries()
	if got := entries[len(entries)-1]; got.Action != commands.ActionInterrupt || got.Ticket != "PAY-2" || got.From != commands.StateCancelled || got.To != commands.StateCancelled {
		t.Errorf("last audit entry %+v, want interrupted PAY-2 cancelled>cancelled", got)
	}
	// The old hook's late result is not recorded over the decision.
	cancel.gate <- commands.HookResult{OK: true}
	old.Wait()
	h.svc = svc
	if got, want := h.locks(), []string{"backend=PAY-2"}; !cmp.Equal(got, want) {
		t.Errorf("locks after the old hook's late result = %v, want %v", got, want)
	}
	h.script([]step{
		{bob, "dep start PAY-3", []string{"Backend is locked by PAY-2", "outcome is unknown", "unlock backend"}},
		{ann, "unlock backend", []string{"Only admins"}},
		{admin, "unlock payments", []string{"payments is not frozen."}},
	})
	effects = h.say(admin, "unlock backend")
	if got := reply(effects); !strings.Contains(got, "Freed backend") {
		t.Errorf("admin unlock reply = %q", got)
	}
	if got := youreNext(effects, bob); len(got) != 1 {
		t.Errorf("bob's you're-next DMs after the unlock = %v, want one", got)
	}
	entries = h.auditEntries()
	if got := entries[len(entries)-1]; got.Action != commands.ActionUnlock || got.Ticket != "PAY-2" || got.From != commands.StateCancelled ||
		got.To != commands.StateCancelled || !strings.HasPrefix(got.Detail, "backend: ") || got.Actor != admin {
		t.Errorf("unlock entry %+v, want unlock PAY-2 cancelled>cancelled by the admin, detail starting \"backend: \"", got)
	}
	if got := h.locks(); len(got) != 0 {
		t.Errorf("locks after the admin's unlock = %v", got)
	}
	checkInvariants(t, h.db)
	h.script([]step{
		{bob, "dep start PAY-3", []string{"Deploy of PAY-3 started."}},
		{admin, "unlock backend", []string{"backend is not frozen; it is locked by PAY-3"}},
	})
	checkInvariants(t, h.db)
}
