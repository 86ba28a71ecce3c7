package commands_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestHotfixOvertakes: a hotfix asked with dobro … hotfix waits like any
// release while only approvers agree; once an admin claims it, it goes
// ahead of the two releases waiting for backend (audited), takes their
// place in queue and in dep start's queue rule, and is told "you're next"
// when the deploy holding backend ends.
func TestHotfixOvertakes(t *testing.T) {
	h := newHarness(t)
	h.tracker.tickets["PAY-9"] = readyTicket("PAY-9", "backend")
	h.rebuild(func(c *commands.Config) {
		p := c.Policy
		c.Policy.Envs = []commands.EnvPolicy{{Name: "production", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components,
			Hooks: c.Hooks, Approval: true, Approvals: 1, NeedsAdmin: true}}
	})
	h.script([]step{
		{ann, "dobro PAY-1", nil},
		{approver, "accept PAY-1", nil},
		{admin, "here PAY-1", nil},
		{ann, "dep start PAY-1", []string{"Deploy of PAY-1 started."}},
		{bob, "dobro PAY-2", nil},
		{approver, "accept PAY-2", nil},
		{admin, "here PAY-2", nil},
		{ann, "dobro PAY-3 no_need_admin", nil},
		{approver, "accept PAY-3", nil},
		{bob, "dobro PAY-9 login is down hotfix", []string{"in the queue (#4)"}},
	})
	if rel := h.release("PAY-9"); !rel.Hotfix || rel.Note != "login is down" || rel.FirstBy != "" {
		t.Errorf("hotfix release: hotfix %v note %q first by %q", rel.Hotfix, rel.Note, rel.FirstBy)
	}
	h.script([]step{
		{approver, "accept PAY-9", []string{"You accepted PAY-9."}},
		{guest, "status PAY-9", []string{"hotfix: asks to go first", "position in the queue: 4"}},
		{guest, "queue", []string{"4. <https://jira.example.com/browse/PAY-9|PAY-9> in production — accepted", "#4 for backend (after PAY-1, PAY-2 and 1 more)"}},
	})
	effects := h.say(admin, "here PAY-9")
	h.now = h.now.Add(60e9)
	var thread []string
	for _, e := range effects {
		if e.Kind == commands.EffectThread {
			thread = append(thread, render(e.Text))
		}
	}
	if want := "Hotfix: <@U0ADMIN> lets <https://jira.example.com/browse/PAY-9|PAY-9> go first, ahead of PAY-2 and PAY-3."; !strings.Contains(strings.Join(thread, "\n"), want) {
		t.Errorf("card thread %q lacks %q", thread, want)
	}
	h.script([]step{
		{guest, "queue", []string{
			"1. <https://jira.example.com/browse/PAY-1|PAY-1> in production — deploying",
			"2. <https://jira.example.com/browse/PAY-9|PAY-9> in production — claimed", "#2 for backend (after PAY-1)",
			"3. <https://jira.example.com/browse/PAY-2|PAY-2> in production — claimed", "#3 for backend (after PAY-1 and PAY-9)",
			"4. <https://jira.example.com/browse/PAY-3|PAY-3> in production — accepted",
		}},
		{guest, "status PAY-9", []string{"hotfix: goes first (let by <@U0ADMIN>)", "position in the queue: 2"}},
		{admin, "here PAY-9", []string{"You already claimed"}},
	})
	effects = h.say(ann, "dep finish PAY-1")
	if dms := dmsTo(effects, bob); len(dms) != 1 || !strings.Contains(render(dms[0].Text), "You're next: <https://jira.example.com/browse/PAY-9|PAY-9> can start now.") {
		t.Errorf("bob's DMs after PAY-1 is done: %+v", dms)
	}
	h.script([]step{
		{bob, "dep start PAY-2", []string{"PAY-9 is ahead of PAY-2 in the queue for backend"}},
		{ann, "dep start PAY-3", []string{"PAY-9 is ahead of PAY-3 in the queue for backend"}},
		{bob, "dep start PAY-9", []string{"Deploy of PAY-9 started."}},
	})
	var got []string
	for _, e := range h.auditEntries() {
		if e.Action == commands.ActionHotfix || (e.Ticket == "PAY-9" && e.Action == commands.ActionRequest) {
			got = append(got, string(e.Action)+" "+e.Actor+" "+string(e.From)+">"+string(e.To)+" "+e.Detail)
		}
	}
	want := []string{
		"request U0BOB >requested components: backend; hotfix",
		"hotfix U0ADMIN claimed>claimed goes first in production: ahead of PAY-2,PAY-3",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	if err := replayMatches(h); err != nil {
		t.Error(err)
	}
}

// TestHotfixPromoted: a hotfix done in qa is promoted still asking to go
// first, and production's admin, not qa's claim, lets it.
func TestHotfixPromoted(t *testing.T) {
	h, _ := envHarness(t)
	h.script([]step{
		{ann, "dobro PAY-1 to qa version 2.4.1 hotfix", []string{"accepted"}},
		{ann, "dep start PAY-1", []string{"started"}},
		{ann, "dep finish PAY-1", []string{"done"}},
		{bob, "promote PAY-1", []string{"Promoted"}},
	})
	if rel := h.release("PAY-1"); rel.Env != "production" || !rel.Hotfix || rel.FirstBy != "" {
		t.Errorf("promoted release: env %q hotfix %v first by %q", rel.Env, rel.Hotfix, rel.FirstBy)
	}
	h.script([]step{
		{approver, "accept PAY-1", []string{"(1 of 2)"}},
		{qa, "accept PAY-1", []string{"You accepted PAY-1."}},
		{guest, "status PAY-1", []string{"hotfix: asks to go first"}},
		{admin, "here PAY-1", []string{"You claimed PAY-1."}},
		{guest, "status PAY-1", []string{"hotfix: goes first (let by <@U0ADMIN>)"}},
	})
}

// TestHotfixNeedsAnAdmin: approvals by non-admins, however many, never make
// a hotfix jump; an admin's approval among several does, once the last
// approval accepts it.
func TestHotfixNeedsAnAdmin(t *testing.T) {
	h := newHarness(t)
	h.tracker.tickets["PAY-9"] = readyTicket("PAY-9", "backend")
	h.rebuild(func(c *commands.Config) {
		c.Policy.Approvers = append(c.Policy.Approvers, admin)
		p := c.Policy
		c.Policy.Envs = []commands.EnvPolicy{{Name: "production", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components,
			Hooks: c.Hooks, Approval: true, Approvals: 2, NeedsAdmin: false}}
	})
	h.script([]step{
		{ann, "dobro PAY-2", nil},
		{approver, "accept PAY-2", nil},
		{qa, "accept PAY-2", []string{"You accepted PAY-2."}},
		{bob, "dobro PAY-9 hotfix", nil},
		{admin, "accept PAY-9", []string{"You approved PAY-9 (1 of 2)"}},
		{guest, "queue", []string{"1. <https://jira.example.com/browse/PAY-2|PAY-2>", "2. <https://jira.example.com/browse/PAY-9|PAY-9> in production — requested"}},
		{approver, "accept PAY-9", []string{"You accepted PAY-9."}},
		{guest, "queue", []string{"1. <https://jira.example.com/browse/PAY-9|PAY-9> in production — accepted", "2. <https://jira.example.com/browse/PAY-2|PAY-2>"}},
		{ann, "dep start PAY-2", []string{"PAY-9 is ahead of PAY-2 in the queue for backend"}},
	})
	// Without an admin, two approvals leave it in its place.
	h.script([]step{
		{bob, "dobro PAY-3 hotfix", nil},
		{approver, "accept PAY-3", nil},
		{qa, "accept PAY-3", []string{"You accepted PAY-3."}},
		{guest, "status PAY-3", []string{"hotfix: asks to go first", "position in the queue: 3"}},
	})
	if err := replayMatches(h); err != nil {
		t.Error(err)
	}
}

// TestRetryOfAFailedDeployKeepsItsPlace: a release whose start hook failed
// holds its locks, and dep start again retries it. Neither a hotfix let go
// first (which takes the place of an earlier waiting release, ahead of the
// failed one) nor an earlier release that became ready after it started
// may refuse that retry: they cannot take the locks it holds, so refusing
// left both stuck until someone cancelled or finished the failed deploy.
func TestRetryOfAFailedDeployKeepsItsPlace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		envs  bool
		ahead []step // after PAY-1's start failed, with PAY-2 requested before it
	}{
		{"a hotfix let go first", true, []step{
			{bob, "dobro PAY-9 login is down hotfix", nil},
			{approver, "accept PAY-9", nil},
			{admin, "here PAY-9", []string{"You claimed PAY-9."}},
			{guest, "queue", []string{"1. <https://jira.example.com/browse/PAY-9|PAY-9> in production — claimed", "2. <https://jira.example.com/browse/PAY-1|PAY-1> in production — failed"}},
			{bob, "dep start PAY-9", []string{"by PAY-1 (dep start"}},
		}},
		{"an earlier release ready since", false, []step{
			{approver, "accept PAY-2", nil},
			{admin, "here PAY-2", []string{"You claimed PAY-2."}},
			{bob, "dep start PAY-2", []string{"by PAY-1 (dep start"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.tracker.tickets["PAY-9"] = readyTicket("PAY-9", "backend")
			if tc.envs {
				h.rebuild(func(c *commands.Config) {
					p := c.Policy
					c.Policy.Envs = []commands.EnvPolicy{{Name: "production", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components,
						Hooks: c.Hooks, Approval: true, Approvals: 1, NeedsAdmin: true}}
				})
			}
			h.script([]step{
				{bob, "dobro PAY-2", nil},
				{ann, "dobro PAY-1 no_need_admin", nil},
				{approver, "accept PAY-1", nil},
			})
			h.start.fail = true
			h.say(ann, "dep start PAY-1")
			if rel := h.release("PAY-1"); rel.State != commands.StateFailed {
				t.Fatalf("PAY-1 is %s, want failed", rel.State)
			}
			h.start.fail = false
			h.script(tc.ahead)
			h.script([]step{{ann, "dep start PAY-1", []string{"Deploy of PAY-1 started."}}})
			if rel := h.release("PAY-1"); rel.State != commands.StateDeploying {
				t.Errorf("after the retry PAY-1 is %s, want deploying", rel.State)
			}
		})
	}
}
