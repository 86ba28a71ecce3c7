package commands_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/hook"
)

// recordHook returns a real hook process (a shell) that appends
// "ENV VERSION TICKET COMPONENTS PHASE" to a file, and a function that
// reads the lines written so far.
func recordHook(t *testing.T) (*hook.Exec, func() []string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "hook.log")
	t.Setenv("ROLLBACK_TEST_HOOK_LOG", file)
	exe := &hook.Exec{
		Argv: []string{"/bin/sh", "-c", `printf '%s %s %s %s %s\n' "$DOBROBOT_ENV" "$DOBROBOT_VERSION" "$DOBROBOT_TICKET" "$DOBROBOT_COMPONENTS" "$DOBROBOT_PHASE" >> "$ROLLBACK_TEST_HOOK_LOG"`},
		Env:  []string{"ROLLBACK_TEST_HOOK_LOG"}, Timeout: time.Minute,
	}
	if err := exe.Validate(); err != nil {
		t.Fatal(err)
	}
	return exe, func() []string {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("hook log: %v", err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
}

// rollbackHarness has qa (no approval) and production (one approval, no
// admin, requesters ann and bob, the real hook).
func rollbackHarness(t *testing.T) (*harness, func() []string) {
	t.Helper()
	exe, lines := recordHook(t)
	h := newHarness(t)
	h.rebuild(func(c *commands.Config) {
		p := c.Policy
		c.Policy.Envs = []commands.EnvPolicy{
			{Name: "qa", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components, Approval: false, Approvals: 1},
			{Name: "production", Requesters: []string{ann, bob}, Approvers: []string{approver}, Admins: p.Admins,
				Components: p.Components, Hooks: commands.Hooks{Start: exe}, Approval: true, Approvals: 1},
		}
	})
	return h, lines
}

// deploy takes ticket through production at version v: requested by ann,
// accepted, started and finished.
func (h *harness) deploy(ticket, v string) {
	h.t.Helper()
	h.script([]step{
		{ann, "dobro " + ticket + " to production version " + v, []string{"is in the queue"}},
		{approver, "accept " + ticket, []string{"You accepted " + ticket + "."}},
		{ann, "dep start " + ticket, []string{"Deploy of " + ticket + " started."}},
		{ann, "dep finish " + ticket, []string{ticket + " is done."}},
	})
}

// TestRollback: done v1, done v2, rollback → a release of the ticket that
// deployed v1, asked of the approvers like any, whose start hook (a real
// process) gets DOBROBOT_VERSION=1.0.0; where then shows v1.0.0. The
// release replaced is marked and audited as rolled back, and a second
// rollback passes over it: there is nothing earlier to go back to.
func TestRollback(t *testing.T) {
	h, lines := rollbackHarness(t)
	h.deploy("PAY-1", "1.0.0")
	h.deploy("PAY-2", "2.0.0")
	h.script([]step{{guest, "where backend", []string{"• backend: v2.0.0 (PAY-2)"}}})

	effects := h.say(bob, "rollback backend in production")
	want := "Rollback of backend in production from v2.0.0 to v1.0.0: <https://jira.example.com/browse/PAY-1|PAY-1>, whose release deployed it, is in the queue (#1). Asked 1 approver(s)."
	if got := reply(effects); got != want {
		t.Errorf("rollback reply:\n got %q\nwant %q", got, want)
	}
	asked := dmsTo(effects, approver)
	if len(asked) != 1 || !strings.HasPrefix(render(asked[0].Text), "<@U0BOB> asks to roll backend back from v2.0.0: ") || asked[0].Buttons[0].Command != "accept PAY-1 in production" {
		t.Errorf("approver's DMs: %+v", asked)
	}
	rel := h.release("PAY-1")
	replaced := h.release("PAY-2")
	got := []any{rel.Env, rel.Build, rel.Requester, rel.State, rel.Components, rel.RollbackOf, replaced.State, replaced.RolledBack}
	wantRel := []any{"production", "1.0.0", bob, commands.StateRequested, []string{"backend"}, replaced.ID, commands.StateDone, rel.ID}
	if diff := cmp.Diff(wantRel, got); diff != "" {
		t.Errorf("rollback release and the one replaced (-want +got):\n%s", diff)
	}

	h.script([]step{
		{approver, "accept PAY-1", []string{"You accepted PAY-1."}},
		{bob, "dep start PAY-1", []string{"Deploy of PAY-1 started."}},
		{bob, "dep finish PAY-1", []string{"PAY-1 is done."}},
		{guest, "where backend", []string{"• backend: v1.0.0 (PAY-1), done by <@U0BOB>"}},
		{guest, "where payments", []string{"• payments: v1.0.0 (PAY-1), done by <@U0ANN>"}},
		// The rolled-back v2.0.0 is passed over, and v1.0.0 is current.
		{bob, "rollback backend", []string{"Nothing to roll back to: backend in production is at v1.0.0 (PAY-1), and no earlier version of it is done there."}},
	})
	wantHooks := []string{
		"production 1.0.0 PAY-1 backend,payments start",
		"production 2.0.0 PAY-2 backend start",
		"production 1.0.0 PAY-1 backend start",
	}
	if diff := cmp.Diff(wantHooks, lines()); diff != "" {
		t.Errorf("hook runs (-want +got):\n%s", diff)
	}
	var marks []commands.AuditEntry
	for _, e := range h.auditEntries() {
		if e.Action == commands.ActionRolledBack {
			marks = append(marks, e)
		}
	}
	wantMark := []commands.AuditEntry{{Actor: bob, Action: commands.ActionRolledBack, Ticket: "PAY-2", Env: "production", Version: "2.0.0",
		From: commands.StateDone, To: commands.StateDone, Detail: fmt.Sprintf("backend: rolled back to 1.0.0 by PAY-1 (release %d)", rel.ID)}}
	if diff := cmp.Diff(wantMark, marks, cmpAuditFacts); diff != "" {
		t.Errorf("rolled_back entries (-want +got):\n%s", diff)
	}
	h.audit()
	if err := replayMatches(h); err != nil {
		t.Error(err)
	}
}

// TestRollbackOldIndexEntry: releases done before they kept the release
// they replaced (Release.Replaced) still roll back, from the history.
func TestRollbackOldIndexEntry(t *testing.T) {
	h, lines := rollbackHarness(t)
	h.deploy("PAY-1", "1.0.0")
	h.deploy("PAY-2", "2.0.0")
	err := h.db.Update(context.Background(), func(tx commands.Tx) error {
		all, err := tx.Recent(0)
		for _, rel := range all {
			if rel.Ticket == "PAY-2" && rel.Replaced["backend"] != 1 {
				return fmt.Errorf("PAY-2 does not say it replaced release 1 on backend: %v", rel.Replaced)
			}
			rel.Replaced = nil
			if _, err := tx.PutRelease(rel); err != nil {
				return err
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h.script([]step{
		{bob, "rollback backend", []string{"from v2.0.0 to v1.0.0: <https://jira.example.com/browse/PAY-1|PAY-1>"}},
		{approver, "accept PAY-1", nil},
		{bob, "dep start PAY-1", []string{"started"}},
	})
	if got := lines(); got[len(got)-1] != "production 1.0.0 PAY-1 backend start" {
		t.Errorf("last hook run %q", got[len(got)-1])
	}
}

// cmpAuditFacts compares audit entries by what they say, not by their
// place in the chain.
var cmpAuditFacts = cmp.Transformer("facts", func(e commands.AuditEntry) []string {
	return []string{e.Actor, string(e.Action), e.Ticket, e.Env, e.Version, string(e.From), string(e.To), e.Detail}
})

// TestRollbackTo: to VERSION goes back to that version, also past the
// one before; every refusal says why and changes nothing.
func TestRollbackTo(t *testing.T) {
	h, _ := rollbackHarness(t)
	h.script([]step{
		{ann, "rollback backend", []string{"Nothing to roll back: no release of backend is done in production yet."}},
		{ann, "rollback nosuch", []string{"nosuch is not a known component (known: backend, payments, ios): nothing to roll back."}},
	})
	h.deploy("PAY-1", "1.0.0")
	h.deploy("PAY-2", "2.0.0")
	h.deploy("PAY-3", "3.0.0")
	before := len(h.auditEntries())
	h.script([]step{
		{ann, "rollback backend to 9.9.9", []string{"v9.9.9 was never done for backend in production"}},
		{ann, "rollback backend to v3.0.0", []string{"backend in production is at v3.0.0 already (PAY-3): nothing to roll back."}},
		{ann, "rollback payments", []string{"Nothing to roll back to: payments in production is at v1.0.0 (PAY-1), and no earlier version of it is done there."}},
		{ann, "rollback ios", []string{"Nothing to roll back: no release of ios is done in production yet."}},
		{guest, "rollback backend", []string{"Only those who may request releases in production, or its admins, can rollback."}},
		{approver, "rollback backend", []string{"Only those who may request releases in production, or its admins, can rollback."}},
		{ann, "rollback backend in staging", []string{`"staging" is not an environment: qa, production.`}},
		{ann, "rollback backend to", []string{"to needs a version like 2.4.0"}},
		{ann, "rollback backend in qa", []string{"Nothing to roll back: no release of backend is done in qa yet."}},
	})
	for _, e := range h.auditEntries()[before:] {
		if e.Action != commands.ActionRefused {
			t.Errorf("a refused rollback wrote %s %s %s>%s", e.Action, e.Ticket, e.From, e.To)
		}
	}
	h.script([]step{
		{admin, "rollback backend to 1.0.0", []string{"Rollback of backend in production from v3.0.0 to v1.0.0: <https://jira.example.com/browse/PAY-1|PAY-1>"}},
		{ann, "rollback backend to 2.0.0", []string{"backend in production is being rolled back already: PAY-1 v1.0.0 is requested (cancel PAY-1 in production to choose another version)."}},
		{ann, "dobro PAY-2 to production version 2.0.0", []string{"is in the queue"}},
		{ann, "cancel PAY-1 in production", []string{"Only the requester (<@U0ADMIN>) or an admin can cancel PAY-1."}},
	})
	if rel := h.release("PAY-1"); rel.Build != "1.0.0" || rel.Requester != admin || rel.State != commands.StateRequested {
		t.Errorf("rollback release: build %q requester %s state %s", rel.Build, rel.Requester, rel.State)
	}
	// Cancelled, the rollback leaves v3.0.0 current: rolling back again
	// still goes to the version before it, v2.0.0.
	h.script([]step{
		{admin, "cancel PAY-1 in production", []string{"PAY-1 is cancelled."}},
		{ann, "rollback backend", []string{"PAY-2, which deployed v2.0.0, is open in production (requested): finish or cancel it first (cancel PAY-2 in production)."}},
		{ann, "cancel PAY-2", []string{"PAY-2 is cancelled."}},
		{ann, "rollback backend", []string{"from v3.0.0 to v2.0.0: <https://jira.example.com/browse/PAY-2|PAY-2>"}},
	})
	if err := replayMatches(h); err != nil {
		t.Error(err)
	}

	plain := newHarness(t)
	plain.script([]step{{ann, "rollback backend", []string{"There are no versions to roll back to"}}})
}

// TestRollbackReplaySeesMark: the audit log's rolled_back entry replays,
// and one that claims a change of state does not.
func TestRollbackReplaySeesMark(t *testing.T) {
	p := commands.NewProjection()
	for _, e := range []commands.AuditEntry{
		{Seq: 1, Action: commands.ActionRequest, Ticket: "PAY-1", To: commands.StateRequested},
		{Seq: 2, Action: commands.ActionCancel, Ticket: "PAY-1", From: commands.StateRequested, To: commands.StateCancelled},
		{Seq: 3, Action: commands.ActionRolledBack, Ticket: "PAY-1", From: commands.StateDone, To: commands.StateDone},
	} {
		if err := p.Add(e); err != nil {
			t.Fatalf("seq %d: %v", e.Seq, err)
		}
	}
	err := p.Add(commands.AuditEntry{Seq: 4, Action: commands.ActionRolledBack, Ticket: "PAY-1", From: commands.StateDone, To: commands.StateRequested})
	if err == nil {
		t.Fatal("a rolled_back entry done>requested replayed")
	}
}
