package commands_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// buildHarness has qa (approval none, auto_deploy, no admin, the real
// recording hook) and production (one approval, no admin, no hook).
func buildHarness(t *testing.T) (*harness, func() []string) {
	t.Helper()
	exe, lines := recordHook(t)
	h := newHarness(t)
	h.rebuild(func(c *commands.Config) {
		p := c.Policy
		c.Policy.Envs = []commands.EnvPolicy{
			{Name: "qa", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components,
				Hooks: commands.Hooks{Start: exe}, Approval: false, Approvals: 1, AutoDeploy: true},
			{Name: "production", Approvers: []string{approver}, Admins: p.Admins, Components: p.Components,
				Approval: true, Approvals: 1},
		}
	})
	return h, lines
}

// ciBuild is a successful build of ticket's version v to env, delivered
// as delivery.
func ciBuild(delivery, ticket, env, v string) commands.Build {
	return commands.Build{
		Delivery: "builds:" + delivery, BodyHash: "hash-" + delivery, Source: "builds", ID: delivery,
		Ticket: ticket, Env: env, Version: v, Commit: "0123456789abcdef0123", Branch: "feature/" + ticket,
		URL: "https://ci.example.com/runs/" + delivery, Status: commands.BuildSuccess,
	}
}

// build hands b to the Service, waits for its hooks, and returns its
// answer and the effects it committed.
func (h *harness) build(b commands.Build) (commands.BuildAnswer, []commands.Effect) {
	h.t.Helper()
	ans, err := h.svc.Build(context.Background(), b)
	if err != nil {
		h.t.Fatalf("Build(%s): %v", b.Delivery, err)
	}
	h.svc.Wait()
	return ans, h.drain()
}

// releases counts the releases of ticket.
func (h *harness) releases(ticket string) int {
	h.t.Helper()
	var n int
	err := h.db.View(context.Background(), func(tx commands.Tx) error {
		all, err := tx.Releases(ticket, 0)
		n = len(all)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// ciAudit returns "action ticket from>to detail" of the entries whose
// actor is ci, and fails on one whose via is not ci.
func (h *harness) ciAudit() []string {
	h.t.Helper()
	var out []string
	err := h.db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		if e.Actor != commands.ActorCI {
			return nil
		}
		// The hook's result is recorded by the bot for the hook's actor,
		// as after a person's dep start.
		want := commands.SourceCI
		if e.Action == commands.ActionStarted || e.Action == commands.ActionFail {
			want = commands.SourceDobrobot
		}
		if e.Via != want {
			h.t.Errorf("audit entry %s %s by ci has via %q, want %s", e.Action, e.Ticket, e.Via, want)
		}
		out = append(out, fmt.Sprintf("%s %s %s>%s %s", e.Action, e.Ticket, e.From, e.To, e.Detail))
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := commands.VerifyStore(context.Background(), h.db, nil); err != nil {
		h.t.Errorf("the audit log's replay does not match the store: %v", err)
	}
	return out
}

func TestBuildOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		change func(*commands.Build)
		setup  func(*harness)
		want   commands.BuildAnswer
		// state is the release's state after, "" when none may exist.
		state commands.State
	}{
		{name: "success in qa deploys by itself", want: commands.BuildAnswer{Outcome: commands.BuildChanged, Release: 1, State: commands.StateDeploying}, state: commands.StateDeploying},
		{name: "no environment is the first", change: func(b *commands.Build) { b.Env = "" }, want: commands.BuildAnswer{Outcome: commands.BuildChanged, Release: 1, State: commands.StateDeploying}, state: commands.StateDeploying},
		{name: "success in production asks approvers", change: func(b *commands.Build) { b.Env = "production" }, want: commands.BuildAnswer{Outcome: commands.BuildChanged, Release: 1, State: commands.StateRequested}, state: commands.StateRequested},
		{name: "no id", change: func(b *commands.Build) { b.ID = "" }, want: commands.BuildAnswer{Outcome: commands.BuildInvalid, Reason: "id is required"}},
		{name: "id with a control character", change: func(b *commands.Build) { b.ID = "7\x1b[2J" }, want: commands.BuildAnswer{Outcome: commands.BuildInvalid, Reason: "id must be at most 128 bytes of printable UTF-8"}},
		{name: "version with a space", change: func(b *commands.Build) { b.Version = "1.0 rm" }, want: commands.BuildAnswer{Outcome: commands.BuildInvalid, Reason: `version needs a version like 2.4.0 or v2.4.0-rc.1 (letters, digits, . _ + -, at most 128), not "1.0 rm"`}},
		{name: "commit too long", change: func(b *commands.Build) { b.Commit = strings.Repeat("a", 129) }, want: commands.BuildAnswer{Outcome: commands.BuildInvalid, Reason: "commit must be at most 128 bytes of printable UTF-8"}},
		{name: "url with a newline", change: func(b *commands.Build) { b.URL = "https://ci/\nx" }, want: commands.BuildAnswer{Outcome: commands.BuildInvalid, Reason: "url must be at most 2048 bytes of printable UTF-8"}},
		{name: "bad status", change: func(b *commands.Build) { b.Status = "green" }, want: commands.BuildAnswer{Outcome: commands.BuildInvalid, Reason: `status must be success, failure or pending, not "green"`}},
		{name: "no ticket", change: func(b *commands.Build) { b.Ticket = "" }, want: commands.BuildAnswer{Outcome: commands.BuildInvalid, Reason: "no ticket: give ticket, or a branch that names one"}},
		{name: "not a ticket", change: func(b *commands.Build) { b.Ticket = "PAY-1;rm" }, want: commands.BuildAnswer{Outcome: commands.BuildInvalid, Reason: `"PAY-1;rm" is not a ticket key (like PAY-123)`}},
		{name: "unknown environment", change: func(b *commands.Build) { b.Env = "staging" }, want: commands.BuildAnswer{Outcome: commands.BuildRefused, Reason: `unknown environment "staging" (known: qa, production)`}},
		{name: "unknown component", change: func(b *commands.Build) { b.Components = []string{"mainframe"} }, want: commands.BuildAnswer{Outcome: commands.BuildRefused, Reason: "mainframe is not a component of qa (known: backend, payments, ios)"}},
		{name: "ticket unknown to the tracker", change: func(b *commands.Build) { b.Ticket = "PAY-99" }, want: commands.BuildAnswer{Outcome: commands.BuildRefused, Reason: "PAY-99 was not found or is not visible to the bot. Not queued."}},
		{name: "ticket breaks the rules", setup: func(h *harness) {
			tk := readyTicket("PAY-1", "backend")
			tk.Status = "In Progress"
			h.tracker.tickets["PAY-1"] = tk
		}, want: commands.BuildAnswer{Outcome: commands.BuildRefused, Reason: "PAY-1 cannot be released: status is In Progress, needs Ready for Release. Not queued."}},
		{name: "failure without a release is only audited", change: func(b *commands.Build) { b.Status = commands.BuildFailure },
			want: commands.BuildAnswer{Outcome: commands.BuildChanged, Reason: "PAY-1 has no open release in qa: the build is only audited"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, lines := buildHarness(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			b := ciBuild("1", "PAY-1", "qa", "1.2.0")
			if tt.change != nil {
				tt.change(&b)
			}
			got, _ := h.build(b)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			// The same delivery again: the first answer, nothing more.
			again, _ := h.build(b)
			first := got
			if diff := cmp.Diff(commands.BuildAnswer{Outcome: commands.BuildSeen, Release: got.Release, State: got.State, Reason: got.Reason, First: &first}, again); diff != "" {
				t.Errorf("redelivered answer (-want +got):\n%s", diff)
			}
			ticket := b.Ticket
			if !commands.ValidTicket(ticket) {
				ticket = "PAY-1"
			}
			n := h.releases(ticket)
			switch {
			case tt.state == "" && n != 0:
				t.Errorf("%d release(s) of %s, want none", n, ticket)
			case tt.state != "" && n != 1:
				t.Errorf("%d release(s) of %s, want 1", n, ticket)
			case tt.state != "":
				if rel := h.release(ticket); rel.State != tt.state || rel.Requester != commands.ActorCI || rel.Build != "1.2.0" || rel.CI == nil || rel.CI.Status != commands.BuildSuccess {
					t.Errorf("release: state %s requester %s version %q CI %+v; want %s by ci, 1.2.0, success", rel.State, rel.Requester, rel.Build, rel.CI, tt.state)
				}
			}
			h.ciAudit() // replays the log against the store
			if tt.state == commands.StateDeploying {
				if diff := cmp.Diff([]string{"qa 1.2.0 PAY-1 backend,payments start"}, lines()); diff != "" {
					t.Errorf("hook runs (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestBuildAutoDeployAudit: a build in qa is requested, accepted and
// started by ci, via ci, and its start hook's success recorded; the card
// shows the build and nothing is sent to ci.
func TestBuildAutoDeployAudit(t *testing.T) {
	h, _ := buildHarness(t)
	_, effects := h.build(ciBuild("7", "PAY-2", "qa", "2.0.0"))
	got := h.ciAudit()
	want := []string{
		"request PAY-2 >requested CI build 7 success; version 2.0.0; commit 0123456789abcdef0123; components: backend",
		"accept PAY-2 requested>accepted approval: none in qa",
	}
	if len(got) < 3 || !cmp.Equal(want, got[:2]) || !strings.HasPrefix(got[2], "start PAY-2 accepted>deploying locks: backend; start hook attempt ") {
		t.Errorf("ci's audit entries:\n%s", strings.Join(got, "\n"))
	}
	if rel := h.release("PAY-2"); rel.LastHook == nil || !rel.LastHook.OK {
		t.Errorf("start hook result: %+v, want ok", rel.LastHook)
	}
	var cards int
	for _, e := range effects {
		if e.User == commands.ActorCI {
			t.Errorf("an effect is addressed to ci: %s %s", e.Kind, render(e.Text))
		}
		if e.Kind == commands.EffectCard {
			cards++
			card := render(commands.CardText(*e.Release, h.now))
			for _, w := range []string{"requested by CI", "CI build 7: SUCCESS · version 2.0.0 · commit `0123456789ab` · https://ci.example.com/runs/7"} {
				if !strings.Contains(card, w) {
					t.Errorf("card %q lacks %q", card, w)
				}
			}
		}
	}
	if cards == 0 {
		t.Error("no card was posted")
	}
}

// TestBuildAutoDeployHeld: a freeze, another release's lock or an
// earlier ready release keep CI's release from starting, exactly as a
// person's: it stays accepted in the queue and the answer says why.
func TestBuildAutoDeployHeld(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*harness)
		why   string
	}{
		{"frozen", func(h *harness) { h.say(admin, "lock backend in qa") }, "Backend is frozen in qa"},
		// A freeze window from chat (freeze … until) holds CI as it holds people.
		{"frozen until", func(h *harness) { h.say(admin, "freeze in qa until 2h release freeze") }, "frozen"},
		{"locked by another release", func(h *harness) {
			h.build(ciBuild("first", "PAY-3", "qa", "0.9.0"))
			if rel := h.release("PAY-3"); rel.State != commands.StateDeploying {
				t.Fatalf("PAY-3 is %s, want deploying", rel.State)
			}
		}, "PAY-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := buildHarness(t)
			tt.setup(h)
			before := len(h.ciAudit())
			got, effects := h.build(ciBuild("2", "PAY-2", "qa", "2.0.0"))
			if got.Outcome != commands.BuildChanged || got.State != commands.StateAccepted || !strings.HasPrefix(got.Reason, "accepted and queued, not started: ") || !strings.Contains(got.Reason, tt.why) {
				t.Errorf("answer %+v: want changed, accepted, not started because of %s", got, tt.why)
			}
			if rel := h.release("PAY-2"); rel.State != commands.StateAccepted || rel.Running != nil || rel.LastHook != nil {
				t.Errorf("PAY-2 is %s (running %v, last hook %v), want accepted, no hook run", rel.State, rel.Running, rel.LastHook)
			}
			audit := h.ciAudit()[before:]
			if last := audit[len(audit)-1]; !strings.HasPrefix(last, "refused PAY-2 >") || !strings.Contains(last, "dep start: ") {
				t.Errorf("last ci audit entry %q, want the refused start", last)
			}
			var said bool
			for _, e := range effects {
				if e.Kind == commands.EffectThread && strings.Contains(render(e.Text), "auto_deploy: not started yet") {
					said = true
				}
			}
			if !said {
				t.Error("the thread does not say why it did not start")
			}
		})
	}
}

// TestBuildFailureBlocksStart: a failed build of a release's version is
// shown on its card and in its thread, and dep start is refused until a
// successful build of it.
func TestBuildFailureBlocksStart(t *testing.T) {
	h, _ := buildHarness(t)
	got, effects := h.build(ciBuild("1", "PAY-2", "production", "3.0.0"))
	if got.State != commands.StateRequested {
		t.Fatalf("answer %+v, want requested", got)
	}
	if dms := dmsTo(effects, approver); len(dms) != 1 || len(dms[0].Buttons) == 0 || dms[0].Buttons[0].Command != "accept PAY-2 in production" ||
		!strings.Contains(render(dms[0].Text), "CI build 1 succeeded, release requested by CI: ") {
		t.Errorf("the approver was not asked as for dobro: %v", dms)
	}
	h.script([]step{{approver, "accept PAY-2", []string{"You accepted PAY-2."}}})
	fail := ciBuild("2", "PAY-2", "production", "3.0.0")
	fail.Status = commands.BuildFailure
	got, effects = h.build(fail)
	if diff := cmp.Diff(commands.BuildAnswer{Outcome: commands.BuildChanged, Release: 1, State: commands.StateAccepted}, got); diff != "" {
		t.Errorf("failure answer (-want +got):\n%s", diff)
	}
	var thread, card string
	for _, e := range effects {
		switch e.Kind {
		case commands.EffectThread:
			thread = render(e.Text)
		case commands.EffectCard:
			card = render(commands.CardText(*e.Release, h.now))
		}
	}
	if want := ":x: CI build 2 failed (version 3.0.0, commit 0123456789ab): dep start waits for a successful build."; thread != want {
		t.Errorf("thread %q, want %q", thread, want)
	}
	if want := "CI build 2: FAILURE · version 3.0.0"; !strings.Contains(card, want) {
		t.Errorf("card %q lacks %q", card, want)
	}
	h.script([]step{{admin, "dep start PAY-2", []string{"PAY-2 cannot start: CI says the build of v3.0.0 is failure (build 2, https://ci.example.com/runs/2). Wait for a successful build."}}})
	if rel := h.release("PAY-2"); rel.State != commands.StateAccepted {
		t.Fatalf("PAY-2 is %s after the refused start, want accepted", rel.State)
	}
	pending := ciBuild("3", "PAY-2", "production", "3.0.0")
	pending.Status = commands.BuildPending
	h.build(pending)
	h.script([]step{{admin, "dep start PAY-2", []string{"CI says the build of v3.0.0 is pending"}}})
	h.build(ciBuild("4", "PAY-2", "production", "3.0.0"))
	h.script([]step{{admin, "dep start PAY-2", []string{"Deploy of PAY-2 started."}}})
	h.ciAudit() // replays the log against the store
}

// TestBuildVersionOfOpenRelease: a successful build sets the version of
// the ticket's open release while nobody accepted another; an accepted or
// deploying release keeps its version and the build is refused, with the
// reason given again on redelivery.
func TestBuildVersionOfOpenRelease(t *testing.T) {
	h, _ := buildHarness(t)
	h.say(ann, "dobro PAY-2 version 1.0.0")
	got, _ := h.build(ciBuild("1", "PAY-2", "production", "1.0.1"))
	if diff := cmp.Diff(commands.BuildAnswer{Outcome: commands.BuildChanged, Release: 1, State: commands.StateRequested}, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if rel := h.release("PAY-2"); rel.Build != "1.0.1" || rel.Requester != ann || h.releases("PAY-2") != 1 {
		t.Errorf("release: version %q requester %s, %d releases; want 1.0.1 by ann, one", rel.Build, rel.Requester, h.releases("PAY-2"))
	}
	h.script([]step{{approver, "accept PAY-2", []string{"You accepted PAY-2."}}})
	b := ciBuild("2", "PAY-2", "production", "1.0.2")
	got, _ = h.build(b)
	want := commands.BuildAnswer{Outcome: commands.BuildRefused, Release: 1, State: commands.StateAccepted, Reason: "PAY-2 was accepted in production for v1.0.1: cancel it to request v1.0.2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if rel := h.release("PAY-2"); rel.Build != "1.0.1" {
		t.Errorf("version %q after the refused build, want 1.0.1", rel.Build)
	}
	h.ciAudit() // replays the log against the store
}

// TestBuildRedeliveryAfterReopen: a delivery answered before a restart is
// answered the same after it, without a second release or hook; the same
// delivery ID with another body is refused.
func TestBuildRedeliveryAfterReopen(t *testing.T) {
	h, lines := buildHarness(t)
	path := filepath.Join(t.TempDir(), "reopen.db")
	db, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	h.db = db
	h.rebuild(func(c *commands.Config) { c.Store = db })
	b := ciBuild("9", "PAY-2", "qa", "4.0.0")
	first, _ := h.build(b)
	if first.Outcome != commands.BuildChanged || first.State != commands.StateDeploying {
		t.Fatalf("first answer %+v, want changed, deploying", first)
	}
	h.svc.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = storage.Open(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h.db = db
	h.rebuild(func(c *commands.Config) { c.Store = db })

	got, effects := h.build(b)
	if diff := cmp.Diff(commands.BuildAnswer{Outcome: commands.BuildSeen, Release: first.Release, State: first.State, First: &first}, got); diff != "" {
		t.Errorf("after reopening (-want +got):\n%s", diff)
	}
	if len(effects) != 0 {
		t.Errorf("the redelivery had %d effect(s)", len(effects))
	}
	other := b
	other.BodyHash = "another body"
	got, _ = h.build(other)
	if diff := cmp.Diff(commands.BuildAnswer{Outcome: commands.BuildRefused, Reason: "this delivery was received before with another body"}, got); diff != "" {
		t.Errorf("another body (-want +got):\n%s", diff)
	}
	if n := h.releases("PAY-2"); n != 1 {
		t.Errorf("%d releases of PAY-2, want 1", n)
	}
	if n := len(lines()); n != 1 {
		t.Errorf("the start hook ran %d times, want once", n)
	}
}

// TestBuildTrackerUnavailable: while the tracker cannot be reached (or
// refuses the bot), nothing is stored: the retry is judged afresh.
func TestBuildTrackerUnavailable(t *testing.T) {
	for _, code := range []string{commands.EUNAVAILABLE, commands.EFORBIDDEN} {
		t.Run(code, func(t *testing.T) {
			h, _ := buildHarness(t)
			h.tracker.errs["PAY-2"] = commands.Errorf(code, "tracker says no")
			b := ciBuild("5", "PAY-2", "qa", "1.0.0")
			_, err := h.svc.Build(context.Background(), b)
			if got := commands.ErrorCode(err); got != commands.EUNAVAILABLE {
				t.Fatalf("Build error %v (code %s), want unavailable", err, got)
			}
			h.drain()
			if n := h.releases("PAY-2"); n != 0 || len(h.ciAudit()) != 0 {
				t.Fatalf("%d release(s), audit %v after an unavailable tracker; want nothing", n, h.ciAudit())
			}
			delete(h.tracker.errs, "PAY-2")
			if got, _ := h.build(b); got.Outcome != commands.BuildChanged {
				t.Errorf("retry answered %+v, want changed", got)
			}
		})
	}
}

// TestBuildConcurrentRedelivery: CI retrying a delivery while the first
// is still being judged gets one release and one hook: every other copy
// is answered with the first answer.
func TestBuildConcurrentRedelivery(t *testing.T) {
	h, lines := buildHarness(t)
	b := ciBuild("42", "PAY-2", "qa", "5.0.0")
	const copies = 8
	answers := make(chan commands.BuildAnswer, copies)
	errs := make(chan error, copies)
	var wg sync.WaitGroup
	for range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans, err := h.svc.Build(context.Background(), b)
			if err != nil {
				errs <- err
				return
			}
			answers <- ans
		}()
	}
	wg.Wait()
	h.svc.Wait()
	close(answers)
	close(errs)
	for err := range errs {
		t.Errorf("Build: %v", err)
	}
	count := map[commands.BuildOutcome]int{}
	for a := range answers {
		count[a.Outcome]++
		if a.Release != 1 || (a.Outcome == commands.BuildSeen && (a.First == nil || a.First.Outcome != commands.BuildChanged)) {
			t.Errorf("answer %+v, want release 1 (seen: first changed)", a)
		}
	}
	if diff := cmp.Diff(map[commands.BuildOutcome]int{commands.BuildChanged: 1, commands.BuildSeen: copies - 1}, count); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if n := h.releases("PAY-2"); n != 1 {
		t.Errorf("%d releases, want 1", n)
	}
	if n := len(lines()); n != 1 {
		t.Errorf("the start hook ran %d times, want once", n)
	}
}

// TestBuildNewVersionAsksAfresh: approvals given to one version do not
// count for the version a later build sets: they are dropped (and
// audited) and the approvers asked again.
func TestBuildNewVersionAsksAfresh(t *testing.T) {
	h, _ := buildHarness(t)
	h.rebuild(func(c *commands.Config) {
		c.Policy.Envs = append([]commands.EnvPolicy(nil), c.Policy.Envs...)
		c.Policy.Envs[1].Approvals, c.Policy.Envs[1].Approvers = 2, []string{approver, "S0QA"}
	})
	h.say(ann, "dobro PAY-2 version 1.0.0")
	h.script([]step{{approver, "accept PAY-2", []string{"1 of 2"}}})
	got, effects := h.build(ciBuild("1", "PAY-2", "production", "1.0.1"))
	if got.Outcome != commands.BuildChanged || got.State != commands.StateRequested {
		t.Errorf("answer %+v, want changed, requested", got)
	}
	rel := h.release("PAY-2")
	if rel.Build != "1.0.1" || len(rel.Approvals) != 0 {
		t.Errorf("release: version %q approvals %v; want 1.0.1, none", rel.Build, rel.Approvals)
	}
	for _, u := range []string{approver, qa} {
		dms := dmsTo(effects, u)
		if len(dms) != 1 || !strings.Contains(render(dms[0].Text), "CI build 1 changed the version, asked afresh: ") || !strings.Contains(render(dms[0].Text), "version 1.0.1") {
			t.Errorf("DMs to %s: %d, want one asking afresh for version 1.0.1", u, len(dms))
		}
	}
	audit := h.ciAudit()
	if want := "build PAY-2 requested>requested CI build 1 success; version 1.0.1; commit 0123456789abcdef0123; version was 1.0.0; approvals of the old version dropped: U0APPROVER"; len(audit) != 1 || audit[0] != want {
		t.Errorf("ci's audit %q, want [%q]", audit, want)
	}
}

// TestBuildDeliveryWithoutKey: a delivery whose ID cannot be a key is
// answered invalid and nothing is stored, not even the answer.
func TestBuildDeliveryWithoutKey(t *testing.T) {
	for _, id := range []string{"", "builds:\x00", "builds:" + strings.Repeat("x", 250), "builds:\u202e"} {
		h, _ := buildHarness(t)
		b := ciBuild("1", "PAY-2", "qa", "1.0.0")
		b.Delivery = id
		got, effects := h.build(b)
		if got.Outcome != commands.BuildInvalid || !strings.HasPrefix(got.Reason, "the delivery ID must be") {
			t.Errorf("delivery %q: answer %+v, want invalid", id, got)
		}
		if n := h.releases("PAY-2"); n != 0 || len(effects) != 0 {
			t.Errorf("delivery %q: %d release(s), %d effect(s); want none", id, n, len(effects))
		}
	}
}

// TestBuildAutoDeployNeedsAdmin: in an auto_deploy environment that needs
// an admin, CI's release waits for one (asked by DM), and the answer says
// so; it does not start by itself.
func TestBuildAutoDeployNeedsAdmin(t *testing.T) {
	h, _ := buildHarness(t)
	h.rebuild(func(c *commands.Config) {
		c.Policy.Envs = append([]commands.EnvPolicy(nil), c.Policy.Envs...)
		c.Policy.Envs[0].NeedsAdmin = true
	})
	got, effects := h.build(ciBuild("1", "PAY-2", "qa", "1.0.0"))
	want := commands.BuildAnswer{Outcome: commands.BuildChanged, Release: 1, State: commands.StateAccepted, Reason: "accepted, not started: qa needs an admin to claim it"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if dms := dmsTo(effects, admin); len(dms) != 1 || len(dms[0].Buttons) == 0 || dms[0].Buttons[0].Command != "here PAY-2 in qa" {
		t.Errorf("the admin was not asked to claim it: %v", dms)
	}
}

// TestBuildHeldReleaseToldInThread: when what held CI's release is done,
// its thread says it is next in line (CI reads no DM), and an admin
// starts it.
func TestBuildHeldReleaseToldInThread(t *testing.T) {
	h, lines := buildHarness(t)
	h.build(ciBuild("first", "PAY-3", "qa", "0.9.0"))
	if got, _ := h.build(ciBuild("second", "PAY-2", "qa", "2.0.0")); got.State != commands.StateAccepted {
		t.Fatalf("PAY-2 answer %+v, want accepted (held by PAY-3)", got)
	}
	effects := h.say(admin, "dep finish PAY-3 in qa")
	var told string
	for _, e := range effects {
		if e.Kind == commands.EffectThread && e.Release.Ticket == "PAY-2" {
			told = render(e.Text)
		}
	}
	if want := "Next in line: <https://jira.example.com/browse/PAY-2|PAY-2> can start now (CI requested it): dep start PAY-2 in qa."; told != want {
		t.Errorf("PAY-2's thread got %q, want %q", told, want)
	}
	h.script([]step{{admin, "dep start PAY-2 in qa", []string{"Deploy of PAY-2 started."}}})
	if got := lines(); len(got) != 2 || got[1] != "qa 2.0.0 PAY-2 backend start" {
		t.Errorf("hook runs %q, want PAY-3's then PAY-2's", got)
	}
}
