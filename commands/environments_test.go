package commands_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// deployer may dep start and dep finish in production, and nothing else.
const deployer = "U0OWNER"

// envHarness is the harness with the seed's pipeline: qa (no approval, no
// admin, its own start hook) then production (two approvals, deployers,
// the top level's hooks).
func envHarness(t *testing.T) (*harness, *fakeExec) {
	t.Helper()
	h := newHarness(t)
	qaStart := &fakeExec{}
	h.rebuild(func(c *commands.Config) {
		p := c.Policy
		c.Policy.Envs = []commands.EnvPolicy{
			{Name: "qa", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components,
				Hooks: commands.Hooks{Start: qaStart}, Approval: false, Approvals: 1, NeedsAdmin: false},
			{Name: "production", Approvers: p.Approvers, Admins: p.Admins, Deployers: []string{deployer},
				Components: p.Components, Hooks: c.Hooks, Approval: true, Approvals: 2, NeedsAdmin: true, After: "qa"},
		}
	})
	return h, qaStart
}

// TestEnvSeedFlow: dobro to qa with a version goes straight to accepted
// (approval none, no admin) and runs qa's own hook with the environment
// and version; dobro without "to" goes to production (the last), whose
// approvers are asked naming environment and version, which needs two
// distinct approvers (never the requester, never one twice), an admin, and
// a deployer to start it with the top level's hook.
func TestEnvSeedFlow(t *testing.T) {
	h, qaStart := envHarness(t)
	effects := h.say(ann, "dobro PAY-1 to qa version 2.4.0")
	if got, want := reply(effects), "PAY-1> in qa, version 2.4.0 is in the queue (#1), accepted: qa needs no approval. You may start: dep start PAY-1 in qa."; !strings.Contains(got, want) {
		t.Errorf("dobro to qa: reply %q lacks %q", got, want)
	}
	for _, u := range []string{approver, qa, admin} {
		if dms := dmsTo(effects, u); len(dms) > 0 {
			t.Errorf("dobro to qa asked %s: %s", u, render(dms[0].Text))
		}
	}
	rel := h.release("PAY-1")
	if rel.Env != "qa" || rel.Build != "2.4.0" || rel.State != commands.StateAccepted || rel.NeedAdmin {
		t.Errorf("qa release: env %q build %q state %s need admin %v; want qa 2.4.0 accepted false", rel.Env, rel.Build, rel.State, rel.NeedAdmin)
	}
	h.script([]step{
		{ann, "dep start PAY-1", []string{"Deploy of PAY-1 started."}},
		{ann, "dep finish PAY-1 in qa", []string{"PAY-1 is done."}},
	})
	if len(qaStart.jobs) != 1 || h.start.count() != 0 {
		t.Fatalf("start hooks run: qa %d, top level %d; want 1, 0", len(qaStart.jobs), h.start.count())
	}
	if j := qaStart.jobs[0]; j.Env != "qa" || j.Build != "2.4.0" {
		t.Errorf("qa hook job: env %q build %q", j.Env, j.Build)
	}

	effects = h.say(ann, "dobro PAY-1 version 2.4.0")
	if got := reply(effects); !strings.Contains(got, "in production, version 2.4.0 is in the queue") || !strings.Contains(got, "Asked 2 approver(s).") {
		t.Errorf("dobro to production: reply %q", got)
	}
	dms := dmsTo(effects, approver)
	if len(dms) != 1 {
		t.Fatalf("approver got %d DMs", len(dms))
	}
	if got, want := render(dms[0].Text), "PAY-1> in production, version 2.4.0 — Summary of PAY-1."; !strings.Contains(got, want) || !strings.Contains(got, "needs 2 approvals") {
		t.Errorf("approver's DM %q lacks %q or the approvals needed", got, want)
	}
	if got := dms[0].Buttons[0].Command; got != "accept PAY-1 in production" {
		t.Errorf("Approve button = %q, want accept PAY-1 in production", got)
	}
	h.script([]step{
		{approver, "accept PAY-1", []string{"You approved PAY-1 (1 of 2): it needs 1 more."}},
		{approver, "accept PAY-1", []string{"You already approved", "(1 of 2)"}},
		{ann, "accept PAY-1", []string{"You requested PAY-1, so you cannot approve it yourself"}},
	})
	if rel := h.release("PAY-1"); rel.State != commands.StateRequested || !cmp.Equal(rel.Approvals, []string{approver}) {
		t.Errorf("after one approval: %s, approvals %v", rel.State, rel.Approvals)
	}
	effects = h.say(qa, "accept PAY-1 in production")
	if got := reply(effects); !strings.Contains(got, "You accepted PAY-1.") {
		t.Errorf("second approval: reply %q", got)
	}
	var card string
	for _, e := range effects {
		if e.Kind == commands.EffectCard {
			card = render(commands.CardText(*e.Release, h.now))
		}
	}
	if !strings.Contains(card, "in production, version 2.4.0 — ACCEPTED") || !strings.Contains(card, "approved by <@U0APPROVER>, <@U0QA>") {
		t.Errorf("card after the second approval: %q", card)
	}
	if dms := dmsTo(effects, admin); len(dms) != 1 || dms[0].Buttons[0].Command != "here PAY-1 in production" {
		t.Errorf("admin DMs %v: want one with here PAY-1 in production", dms)
	}
	rel = h.release("PAY-1")
	if rel.State != commands.StateAccepted || rel.Approver != qa || !cmp.Equal(rel.Approvals, []string{approver, qa}) {
		t.Errorf("accepted release: %s, approver %s, approvals %v", rel.State, rel.Approver, rel.Approvals)
	}
	h.script([]step{
		{admin, "here PAY-1", []string{"You claimed PAY-1."}},
		{ann, "dep start PAY-1", []string{"Only the deployers of production (or an admin) can dep start PAY-1"}},
		{deployer, "dep start PAY-1", []string{"Deploy of PAY-1 started."}},
		{deployer, "dep finish PAY-1", []string{"PAY-1 is done."}},
	})
	if h.start.count() != 1 || len(qaStart.jobs) != 1 {
		t.Errorf("start hooks run: top level %d, qa %d; want 1, 1", h.start.count(), len(qaStart.jobs))
	}
	want := []string{
		"U0ANN request PAY-1 >requested", "U0ANN accept PAY-1 requested>accepted",
		"U0ANN start PAY-1 accepted>deploying", "U0ANN started PAY-1 deploying>deploying", "U0ANN finish PAY-1 deploying>done",
		"U0ANN request PAY-1 >requested", "U0APPROVER approve PAY-1 requested>requested",
		"U0ANN refused PAY-1 >", "U0QA accept PAY-1 requested>accepted", "U0ADMIN claim PAY-1 accepted>claimed",
		"U0ANN refused PAY-1 >", "U0OWNER start PAY-1 claimed>deploying", "U0OWNER started PAY-1 deploying>deploying",
		"U0OWNER finish PAY-1 deploying>done",
	}
	if diff := cmp.Diff(want, h.audit()); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

// TestEnvRejectAfterApproval: one approver's reject rejects a release that
// another approver approved already.
func TestEnvRejectAfterApproval(t *testing.T) {
	h, _ := envHarness(t)
	h.script([]step{
		{ann, "dobro PAY-1", []string{"in production is in the queue"}},
		{approver, "accept PAY-1", []string{"(1 of 2)"}},
		{qa, "reject PAY-1 in production not yet", []string{"You rejected PAY-1."}},
	})
	if rel := h.release("PAY-1"); rel.State != commands.StateRejected || rel.Reason != "not yet" {
		t.Errorf("release %s, reason %q; want rejected, not yet", rel.State, rel.Reason)
	}
}

// TestEnvWords: with environments, an unknown environment is refused with
// the list and nothing is queued, and a command naming another environment
// than the release's is refused; without them, "to" stays in the note.
func TestEnvWords(t *testing.T) {
	h, _ := envHarness(t)
	h.script([]step{
		{ann, "dobro PAY-1 to prod", []string{`"prod" is not an environment: qa, production.`}},
		{ann, "dobro PAY-2 to qa", []string{"in qa is in the queue"}},
		{approver, "accept PAY-2 in production", []string{"PAY-2 has no open release in production (it is open in qa)"}},
		{ann, "dep start PAY-2 in production", []string{"PAY-2 has no open release in production"}},
	})
	if _, err := lastRelease(h, "PAY-1"); commands.ErrorCode(err) != commands.ENOTFOUND {
		t.Errorf("dobro to prod queued a release (err %v)", err)
	}

	plain := newHarness(t)
	plain.script([]step{{ann, "dobro PAY-1 to fix checkout", []string{"PAY-1> is in the queue (#1)"}}})
	if rel := plain.release("PAY-1"); rel.Note != "to fix checkout" || rel.Env != "" {
		t.Errorf("without environments: note %q env %q; want the words in the note, no env", rel.Note, rel.Env)
	}
}

func lastRelease(h *harness, ticket string) (commands.Release, error) {
	var rel commands.Release
	err := h.db.View(context.Background(), func(tx commands.Tx) error {
		var err error
		rel, err = tx.LastRelease(ticket)
		return err
	})
	return rel, err
}

// TestEnvRolesPerEnvironment: an environment's own approvers replace the
// top level's there and only there.
func TestEnvRolesPerEnvironment(t *testing.T) {
	h := newHarness(t)
	h.rebuild(func(c *commands.Config) {
		p := c.Policy
		c.Policy.Envs = []commands.EnvPolicy{
			{Name: "qa", Approvers: []string{bob}, Admins: p.Admins, Components: p.Components, Approval: true, Approvals: 1, NeedsAdmin: false},
			{Name: "production", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components, Approval: true, Approvals: 1, NeedsAdmin: false},
		}
	})
	h.script([]step{
		{ann, "dobro PAY-1 to qa", []string{"Asked 1 approver(s)."}},
		{approver, "accept PAY-1", []string{"Only approvers can accept releases"}},
		{bob, "accept PAY-1", []string{"You accepted PAY-1."}},
		{ann, "dobro PAY-2", []string{"in production is in the queue"}},
		{bob, "accept PAY-2", []string{"Only approvers can accept releases"}},
		{approver, "accept PAY-2", []string{"You accepted PAY-2."}},
	})
}

// TestEnvLocksPerEnvironment: a ticket open in two environments is refused
// without "in" with the list; locks, freezes and the queue's order hold
// per environment; a freeze without "in" holds everywhere; the audit log
// replays into the stored state.
func TestEnvLocksPerEnvironment(t *testing.T) {
	h, _ := envHarness(t)
	h.rebuild(func(c *commands.Config) { c.Policy.Envs[1].After = "" }) // no promotion rule here
	h.script([]step{
		{ann, "dobro PAY-1 to qa", []string{"in qa is in the queue (#1)"}},
		{ann, "dobro PAY-1", []string{"in production is in the queue (#2)"}},
		{ann, "dobro PAY-1 to qa", []string{"is already in the queue: accepted"}},
		{ann, "status PAY-1", []string{"PAY-1 is open in qa and production: say which, e.g. status PAY-1 in production."}},
		{ann, "cancel PAY-1", []string{"PAY-1 is open in qa and production: say which"}},
		{approver, "accept PAY-1 in production", []string{"(1 of 2)"}},
		{qa, "accept PAY-1 in production", []string{"You accepted PAY-1."}},
		{admin, "here PAY-1 in production", []string{"You claimed PAY-1."}},
		// production's locks do not hold qa.
		{deployer, "dep start PAY-1 in production", []string{"Deploy of PAY-1 started."}},
		{ann, "dep start PAY-1 in qa", []string{"Deploy of PAY-1 started."}},
		{bob, "dobro PAY-2 to qa", []string{"in qa is in the queue"}},
		{bob, "dep start PAY-2", []string{"Backend is locked in qa by PAY-1"}},
		{admin, "lock backend in qa release train", []string{"Froze backend in qa: no release can dep start on it until unlock backend in qa."}},
		{admin, "lock backend", []string{"Froze backend: no release can dep start on it until unlock backend."}},
		{admin, "lock backend in qa", []string{"already"}},
		{admin, "unlock backend in production", []string{"backend is not frozen in production; it is frozen in every environment, qa"}},
		{admin, "unlock backend", []string{"Unfroze backend."}},
		{admin, "queue", []string{"backend is frozen in qa by", "backend is locked in production by PAY-1", "backend is locked in qa by PAY-1", "PAY-2> in qa — accepted"}},
		{ann, "dep finish PAY-1 in qa", []string{"PAY-1 is done."}},
		{bob, "dep start PAY-2", []string{"Backend is frozen in qa by"}},
		{admin, "unlock backend in qa", []string{"Unfroze backend in qa."}},
		{bob, "dep start PAY-2", []string{"Deploy of PAY-2 started."}},
	})
	h.audit() // the chain verifies
	if err := replayMatches(h); err != nil {
		t.Error(err)
	}
}

// replayMatches replays the audit log and compares it with the store.
func replayMatches(h *harness) error {
	p := commands.NewProjection()
	ctx := context.Background()
	if err := h.db.Audit(ctx, commands.AuditFilter{}, func(e commands.AuditEntry) error { return p.Add(e) }); err != nil {
		return err
	}
	return h.db.View(ctx, func(tx commands.Tx) error {
		open, err := tx.Open()
		if err != nil {
			return err
		}
		locks, err := tx.Locks()
		if err != nil {
			return err
		}
		return p.Compare(open, locks)
	})
}

// TestEnvRefusalAuditNamesWhatWasAsked: a refused state-changing command's
// audit entry names the environment and version the command named, so that
// an auditor reading the log sees which release was asked for; a refusal
// that named none names none.
func TestEnvRefusalAuditNamesWhatWasAsked(t *testing.T) {
	h, _ := envHarness(t)
	h.say(ann, "dobro PAY-1 to production version 3.1.0")
	h.say(ann, "dep start PAY-1 in production")           // not accepted: refused
	h.say(ann, "rollback backend in production to 3.0.0") // nothing was deployed there: refused
	h.say(ann, "dep start PAY-2")                         // never requested: refused
	var got []string
	for _, e := range h.auditEntries() {
		if e.Action == commands.ActionRefused {
			got = append(got, fmt.Sprintf("%s %s@%s v%s", e.Ticket, e.Detail[:strings.IndexByte(e.Detail, ':')], e.Env, e.Version))
		}
	}
	want := []string{"PAY-1 dep start@production v", " rollback@production v3.0.0", "PAY-2 dep start@ v"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("refused entries (-want +got):\n%s", diff)
	}
}
