package commands_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// TestRecoverSparesOwnHooks: Recover runs concurrently with the first
// commands after a start (Slack redelivers at once), so it must not take a
// hook this Service itself started for one interrupted by the restart: the
// hook's result is recorded as usual (found by the crash tests of
// cmd/dobrobot).
func TestRecoverSparesOwnHooks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		command string
		want    commands.Action
	}{
		{"dep start", "dep start PAY-2", commands.ActionStarted},
		{"dep finish", "dep finish PAY-2", commands.ActionFinish},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.script([]step{
				{ann, "dobro PAY-2 no_need_admin", nil},
				{approver, "accept PAY-2", nil},
			})
			if tc.command == "dep finish PAY-2" {
				h.script([]step{{ann, "dep start PAY-2", nil}})
				h.svc.Wait()
			}
			hook := h.start
			if tc.command == "dep finish PAY-2" {
				hook = h.finish
			}
			hook.hold = true
			hook.gate = make(chan commands.HookResult, 1)
			hook.spawn = make(chan commands.Job, 1)
			m := commands.Message{EventID: "ev-" + tc.name, User: ann, Text: tc.command, Via: commands.ViaMention}
			if _, err := h.svc.Receive(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if err := h.svc.Handle(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			<-hook.spawn
			if err := h.svc.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			if rel := h.release("PAY-2"); rel.Running == nil {
				t.Fatalf("Recover took the running hook for an interrupted one: %+v", rel)
			}
			hook.gate <- commands.HookResult{OK: true, Duration: time.Millisecond}
			h.svc.Wait()
			rel := h.release("PAY-2")
			if rel.Running != nil || rel.LastHook == nil || !rel.LastHook.OK {
				t.Errorf("after the hook: running %+v, last hook %+v; want its result recorded", rel.Running, rel.LastHook)
			}
			audit := h.audit()
			if got := audit[len(audit)-1]; !containsAction(got, tc.want) {
				t.Errorf("last audit entry %q, want %s; all: %v", got, tc.want, audit)
			}
		})
	}
}

// containsAction reports whether an audit line of harness.audit is of action a.
func containsAction(line string, a commands.Action) bool {
	return strings.Contains(line, " "+string(a)+" ")
}
