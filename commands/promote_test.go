package commands_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// TestEnvPipelineAuto is the seed's flow: a build goes to qa with no
// approval, is done there, production's release opens by itself for the
// same requester and version and its approvers are asked naming both; it
// needs two approvals and an admin; the owner's dep start is refused until
// the bake has passed; where shows what runs where and what deploys now.
func TestEnvPipelineAuto(t *testing.T) {
	h, _ := envHarness(t)
	h.rebuild(func(c *commands.Config) {
		c.Policy.Envs[1].Bake = 30 * time.Minute
		c.Policy.Envs[1].RequestAuto = true
	})
	h.script([]step{
		{ann, "dobro PAY-1 to qa version 2.4.0", []string{"accepted: qa needs no approval"}},
		{ann, "dep start PAY-1", []string{"Deploy of PAY-1 started."}},
	})
	finished := h.now
	effects := h.say(ann, "dep finish PAY-1")
	if got := reply(effects); !strings.Contains(got, "PAY-1 is done.") {
		t.Fatalf("dep finish: %q", got)
	}
	if dms := dmsTo(effects, ann); len(dms) != 1 || !strings.Contains(render(dms[0].Text), "was done in qa: I requested <https://jira.example.com/browse/PAY-1|PAY-1> in production, version 2.4.0 for you. Its approvers are asked.") {
		t.Errorf("requester's DMs: %v", dms)
	}
	asked := dmsTo(effects, approver)
	if len(asked) != 1 {
		t.Fatalf("approver got %d DMs, want 1", len(asked))
	}
	if got, want := render(asked[0].Text), "Done in qa, requested by itself for <@U0ANN> (request: auto): <https://jira.example.com/browse/PAY-1|PAY-1> in production, version 2.4.0 — Summary of PAY-1."; !strings.HasPrefix(got, want) {
		t.Errorf("approver's DM %q does not start with %q", got, want)
	}
	if got := asked[0].Buttons[0].Command; got != "accept PAY-1 in production" {
		t.Errorf("Approve button %q", got)
	}
	if len(dmsTo(effects, qa)) != 1 || len(dmsTo(effects, ann)) != 1 {
		t.Errorf("the group's approver and the requester (not asked to approve) got %d and %d DMs", len(dmsTo(effects, qa)), len(dmsTo(effects, ann)))
	}
	rel := h.release("PAY-1")
	if rel.Env != "production" || rel.Build != "2.4.0" || rel.Requester != ann || rel.State != commands.StateRequested {
		t.Errorf("production release: env %q build %q requester %s state %s", rel.Env, rel.Build, rel.Requester, rel.State)
	}
	h.now = finished.Add(2 * time.Minute)
	h.script([]step{
		{approver, "accept PAY-1", []string{"(1 of 2)"}},
		{qa, "accept PAY-1", []string{"You accepted PAY-1."}},
		{admin, "here PAY-1", []string{"You claimed PAY-1."}},
		{deployer, "dep start PAY-1", []string{"PAY-1 v2.4.0 was done in qa 5 min ago: bake until " + finished.Add(30*time.Minute).UTC().Format("15:04") + " UTC."}},
		{admin, "where", []string{"What runs where:\nqa:\n• backend: v2.4.0 (PAY-1), done by <@U0ANN> 6 min ago\n• payments: v2.4.0 (PAY-1), done by <@U0ANN> 6 min ago"}},
	})
	h.now = finished.Add(30 * time.Minute)
	h.script([]step{
		{deployer, "dep start PAY-1", []string{"Deploy of PAY-1 started."}},
		{guest, "where backend", []string{"qa:\n• backend: v2.4.0 (PAY-1)", "Deploying now:\n• <https://jira.example.com/browse/PAY-1|PAY-1> in production, v2.4.0 (deploying, dep start 1 min ago)"}},
		{deployer, "dep finish PAY-1", []string{"PAY-1 is done."}},
		{guest, "where payments", []string{"qa:\n• payments: v2.4.0 (PAY-1), done by <@U0ANN>", "production:\n• payments: v2.4.0 (PAY-1), done by <@U0OWNER> 1 min ago"}},
		{guest, "where ios", []string{"Nothing is recorded as done yet for ios."}},
	})
	h.audit()
	if err := replayMatches(h); err != nil {
		t.Error(err)
	}
}

// TestEnvPromote: promote opens the next environment's release for the
// version done in the last one, only once that is done; an early dep
// start in production is refused naming what is missing; promote without
// environments says they are needed.
func TestEnvPromote(t *testing.T) {
	h, _ := envHarness(t)
	h.script([]step{
		{ann, "promote PAY-1", []string{"PAY-1 has never been requested: dobro PAY-1 first."}},
		{ann, "dobro PAY-1 to qa version 2.4.0", []string{"accepted"}},
		{ann, "dep start PAY-1", []string{"started"}},
		{ann, "promote PAY-1", []string{"PAY-1 is deploying in qa: promote it once it is done there."}},
		{ann, "dep finish PAY-1", []string{"done"}},
		{bob, "promote PAY-1 to prod", []string{`"prod" is not an environment: qa, production.`}},
		{bob, "promote PAY-1", []string{"Promoted <https://jira.example.com/browse/PAY-1|PAY-1> in production, version 2.4.0 from qa: in the queue (#1). Asked 3 approver(s)."}},
		{bob, "promote PAY-1 to production", []string{"PAY-1> in production, version 2.4.0 is already in the queue: requested."}},
		// A version never done in qa may be requested in production, but
		// not started there.
		{ann, "dobro PAY-2 version 9.9.9", []string{"in production, version 9.9.9 is in the queue"}},
		{approver, "accept PAY-2", []string{"(1 of 2)"}},
		{qa, "accept PAY-2", []string{"You accepted PAY-2."}},
		{admin, "here PAY-2", []string{"You claimed PAY-2."}},
		{deployer, "dep start PAY-2", []string{"PAY-2 v9.9.9 is not done in qa yet: production needs it done there first"}},
	})
	rel := h.release("PAY-1")
	if rel.Requester != bob || rel.Env != "production" || rel.Build != "2.4.0" || strings.Join(rel.Components, ",") != "backend,payments" {
		t.Errorf("promoted release: requester %s env %q build %q components %v", rel.Requester, rel.Env, rel.Build, rel.Components)
	}
	h.audit()

	plain := newHarness(t)
	plain.script([]step{
		{ann, "promote PAY-1", []string{"There are no environments to promote between"}},
		{ann, "where", []string{"Nothing is recorded as done yet."}},
	})
}

// TestEnvNoApprovalNeedsAdmin: with approval none but an admin needed, the
// release is accepted at once and the environment's admins are asked to
// claim it, also for a release opened by request: auto (asked after the
// commit that opened it).
func TestEnvNoApprovalNeedsAdmin(t *testing.T) {
	h := newHarness(t)
	h.rebuild(func(c *commands.Config) {
		p := c.Policy
		c.Policy.Envs = []commands.EnvPolicy{
			{Name: "qa", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components, Approval: false, Approvals: 1, NeedsAdmin: true},
			{Name: "staging", Approvers: p.Approvers, Admins: []string{bob}, Components: p.Components, Approval: false, Approvals: 1, NeedsAdmin: true,
				After: "qa", RequestAuto: true},
		}
	})
	effects := h.say(ann, "dobro PAY-1 to qa")
	if got := reply(effects); !strings.Contains(got, "accepted: qa needs no approval. Waiting for an admin to claim it.") {
		t.Errorf("dobro: %q", got)
	}
	if dms := dmsTo(effects, admin); len(dms) != 1 || dms[0].Buttons[0].Command != "here PAY-1 in qa" {
		t.Errorf("qa's admin DMs: %+v", dms)
	}
	h.script([]step{
		{admin, "here PAY-1", []string{"You claimed PAY-1."}},
		{ann, "dep start PAY-1", []string{"started"}},
	})
	effects = h.say(ann, "dep finish PAY-1")
	if dms := dmsTo(effects, bob); len(dms) != 1 || dms[0].Buttons[0].Command != "here PAY-1 in staging" {
		t.Errorf("staging's admin DMs: %+v", dms)
	}
	if dms := dmsTo(effects, admin); len(dms) != 0 {
		t.Errorf("qa's admin was asked about staging: %+v", dms)
	}
	if dms := dmsTo(effects, ann); len(dms) != 1 || !strings.Contains(render(dms[0].Text), "in staging for you. Waiting for an admin to claim it.") {
		t.Errorf("requester's DMs: %+v", dms)
	}
	if rel := h.release("PAY-1"); rel.Env != "staging" || rel.State != commands.StateAccepted || !rel.NeedAdmin {
		t.Errorf("staging release: %q %s need admin %v", rel.Env, rel.State, rel.NeedAdmin)
	}
}

// TestEnvShortBake: a bake of a minute (the console demo's) is refused in
// words that read right — "just now", not "just now ago" — and names the
// second it ends, since a time in whole minutes would say a moment that has
// passed while the bake still holds; at that second the start goes through.
func TestEnvShortBake(t *testing.T) {
	h, _ := envHarness(t)
	h.rebuild(func(c *commands.Config) { c.Policy.Envs[1].Bake = time.Minute })
	h.script([]step{
		{ann, "dobro PAY-1 to qa version 2.4.0", []string{"accepted"}},
		{ann, "dep start PAY-1", []string{"started"}},
	})
	h.now = h.now.Truncate(time.Minute).Add(20 * time.Second)
	finished := h.now
	for _, s := range []step{
		{ann, "dep finish PAY-1", []string{"PAY-1 is done."}},
		{bob, "promote PAY-1", []string{"Promoted"}},
		{approver, "accept PAY-1", []string{"(1 of 2)"}},
		{qa, "accept PAY-1", []string{"You accepted PAY-1."}},
		{admin, "here PAY-1", []string{"You claimed PAY-1."}},
		{deployer, "dep start PAY-1", []string{"PAY-1 v2.4.0 was done in qa just now: bake until " + finished.Add(time.Minute).UTC().Format("15:04:05") + " UTC."}},
	} {
		if got := reply(h.say(s.user, s.text)); !strings.Contains(got, s.want[0]) {
			t.Errorf("%s says %q: reply %q does not say %q", s.user, s.text, got, s.want[0])
		}
		h.now = h.now.Add(8 * time.Second) // people answer within the minute
	}
	h.now = finished.Add(time.Minute)
	h.script([]step{{deployer, "dep start PAY-1", []string{"Deploy of PAY-1 started."}}})
	h.audit()
}
