package commands_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/clocktest"
	"github.com/dobrobot/dobrobot/storage"
)

// newExpiryHarness is a schedHarness with approval_ttl set and no
// reminders; change, when set, adjusts the Config further.
func newExpiryHarness(t *testing.T, ttl time.Duration, change func(*commands.Config)) *schedHarness {
	t.Helper()
	h := newHarness(t)
	clk := clocktest.New(h.now)
	h.rebuild(func(c *commands.Config) {
		c.Clock, c.ApprovalTTL = clk, ttl
		if change != nil {
			change(c)
		}
	})
	s := &schedHarness{harness: h, clk: clk}
	s.startSchedule()
	t.Cleanup(func() { s.stop() })
	return s
}

// voids returns "actor via ticket from>to: detail" of every void entry.
func voids(t *testing.T, db commands.Store) []string {
	t.Helper()
	var out []string
	err := db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		if e.Action == commands.ActionVoid {
			out = append(out, fmt.Sprintf("%s via %s %s %s>%s: %s", e.Actor, e.Via, e.Ticket, e.From, e.To, e.Detail))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dmsHaving returns the sorted users DMed among effects whose text has sub.
func dmsHaving(effects []commands.Effect, sub string) []string {
	var out []string
	for _, e := range effects {
		if e.Kind == commands.EffectDM && strings.Contains(render(e.Text), sub) {
			out = append(out, e.User)
		}
	}
	slices.Sort(out)
	return out
}

// TestApprovalExpiry: an accepted release not started within approval_ttl
// goes back to requested once, its approvals void, the people told and the
// step audited; a dep start or a cancel in time deletes the expiry.
func TestApprovalExpiry(t *testing.T) {
	const expired = "dobrobot via scheduler PAY-1 accepted>requested: approval_ttl 24h passed without dep start"
	for _, tt := range []struct {
		name      string
		then      []string // commands after the accept
		wantVoids []string
		wantState commands.State
	}{
		{"not started", nil, []string{expired}, commands.StateRequested},
		{"started in time", []string{"dep start PAY-1"}, nil, commands.StateDeploying},
		{"cancelled", []string{"cancel PAY-1"}, nil, commands.StateCancelled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newExpiryHarness(t, 24*time.Hour, nil)
			s.say(ann, "dobro PAY-1 no_need_admin")
			s.sayWaking(approver, "accept PAY-1")
			for _, c := range tt.then {
				s.say(ann, c)
			}
			if got := voids(t, s.db); len(got) != 0 {
				t.Fatalf("voided before the TTL: %v", got)
			}
			before := s.step(24*time.Hour - time.Second)
			if got := voids(t, s.db); len(got) != 0 {
				t.Fatalf("voided a second early: %v", got)
			}
			effects := append(before, s.step(time.Second)...)
			effects = append(effects, s.step(72*time.Hour)...) // fires once, never again
			if diff := cmp.Diff(tt.wantVoids, voids(t, s.db)); diff != "" {
				t.Errorf("void entries (-want +got):\n%s", diff)
			}
			rel := s.release("PAY-1")
			if rel.State != tt.wantState {
				t.Errorf("state %s, want %s", rel.State, tt.wantState)
			}
			if d := nextDue(t, s.db); d != nil {
				t.Errorf("a due time is left: %+v", *d)
			}
			if tt.wantVoids == nil {
				return
			}
			if rel.Approver != "" || rel.Approvals != nil {
				t.Errorf("approvals not void: approver %q, approvals %v", rel.Approver, rel.Approvals)
			}
			if got, want := dmsHaving(effects, "back to requested"), []string{ann}; !cmp.Equal(want, got) {
				t.Errorf("told %v, want %v", got, want)
			}
			if got, want := dmsHaving(effects, "asks for dobro again"), []string{approver, qa}; !cmp.Equal(want, got) {
				t.Errorf("approvers asked again %v, want %v", got, want)
			}
			s.audit() // the chain verifies, void included
			if _, err := commands.VerifyStore(context.Background(), s.db, nil); err != nil {
				t.Errorf("the audit log does not replay: %v", err)
			}
			// Approved again, it may start.
			s.sayWaking(qa, "accept PAY-1")
			if r := reply(s.say(ann, "dep start PAY-1")); !strings.Contains(r, "Deploy of PAY-1 started") {
				t.Errorf("dep start after a new approval: %q", r)
			}
		})
	}
}

// TestApprovalExpiryAfterClaim: in a needs-admin environment the TTL counts
// from the acceptance, and a claim does not restart it.
func TestApprovalExpiryAfterClaim(t *testing.T) {
	s := newExpiryHarness(t, time.Hour, nil) // the default environment needs an admin
	s.say(ann, "dobro PAY-1")
	s.sayWaking(approver, "accept PAY-1")
	s.step(30 * time.Minute)
	s.say(admin, "here PAY-1")
	if st := s.release("PAY-1").State; st != commands.StateClaimed {
		t.Fatalf("claimed: %s", st)
	}
	effects := s.step(30 * time.Minute)
	rel := s.release("PAY-1")
	if rel.State != commands.StateRequested || rel.Admin != "" {
		t.Errorf("after the TTL: %s, admin %q; want requested, no admin", rel.State, rel.Admin)
	}
	if got := dmsHaving(effects, "back to requested"); !slices.Contains(got, admin) {
		t.Errorf("the admin who claimed it was not told: %v", got)
	}
}

// TestOverdueExpiryAfterRestartFiresOnce: an expiry that fell due while the
// bot was down fires once at the start, and never again.
func TestOverdueExpiryAfterRestartFiresOnce(t *testing.T) {
	s := fileSchedHarness(t, func(c *commands.Config) { c.ApprovalTTL = time.Hour })
	s.say(ann, "dobro PAY-1")
	s.sayWaking(approver, "accept PAY-1")
	s.down()
	s.clk.Advance(72 * time.Hour)
	for range 2 {
		s.up()
		s.step(time.Hour)
		s.down()
	}
	db, err := storage.Open(s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := []string{"dobrobot via scheduler PAY-1 accepted>requested: approval_ttl 1h passed without dep start"}
	if diff := cmp.Diff(want, voids(t, db)); diff != "" {
		t.Errorf("void entries over two restarts (-want +got):\n%s", diff)
	}
}

// TestApprovalExpiryInProduction: in an environment with after, the expiry
// is not silent: the card's thread names the requester, the approvers and
// the admins.
func TestApprovalExpiryInProduction(t *testing.T) {
	s := newExpiryHarness(t, time.Hour, func(c *commands.Config) {
		p := c.Policy
		c.Policy.Envs = []commands.EnvPolicy{
			{Name: "qa", Approvers: []string{admin}, Admins: p.Admins, Components: p.Components, Hooks: c.Hooks, Approval: true, Approvals: 1},
			{Name: "production", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components, Hooks: c.Hooks, Approval: true, Approvals: 1, After: "qa"},
		}
	})
	s.say(ann, "dobro PAY-1 to production")
	s.say(bob, "dobro PAY-2 to qa")
	s.sayWaking(approver, "accept PAY-1")
	s.sayWaking(admin, "accept PAY-2")
	effects := s.step(time.Hour)
	var threads []string
	for _, e := range effects {
		if e.Kind == commands.EffectThread && strings.Contains(render(e.Text), "back to requested") {
			var people []string
			for _, sp := range e.Text {
				if sp.Kind == commands.SpanPerson && !slices.Contains(people, sp.ID) {
					people = append(people, sp.ID)
				}
			}
			slices.Sort(people)
			threads = append(threads, e.Release.Ticket+": "+strings.Join(people, ","))
		}
	}
	slices.Sort(threads)
	// qa has no after: said in the thread without calling anyone. ann is
	// both the requester and (configured) an approver of production.
	want := []string{"PAY-1: " + strings.Join([]string{admin, ann, approver, qa}, ","), "PAY-2: "}
	if diff := cmp.Diff(want, threads); diff != "" {
		t.Errorf("thread messages, people named (-want +got):\n%s", diff)
	}
	for _, tk := range []string{"PAY-1", "PAY-2"} {
		if st := s.release(tk).State; st != commands.StateRequested {
			t.Errorf("%s is %s, want requested", tk, st)
		}
	}
}

// TestApprovalExpiryPassesTheTurn: a release whose approval expires while it
// has the turn (the claim window) gives the turn to the next in line, as a
// cancel does, and its own claim window goes with it.
func TestApprovalExpiryPassesTheTurn(t *testing.T) {
	s := newExpiryHarness(t, 10*time.Minute, func(c *commands.Config) { c.ClaimWindow = 15 * time.Minute })
	s.say(ann, "dobro PAY-1 no_need_admin")
	s.say(bob, "dobro PAY-2 no_need_admin")
	s.sayWaking(approver, "accept PAY-1")
	s.step(5 * time.Minute)
	s.sayWaking(approver, "accept PAY-2")
	if !s.release("PAY-2").Turn.IsZero() {
		t.Fatal("PAY-2 has the turn while PAY-1 is ahead of it")
	}
	effects := s.step(5 * time.Minute) // PAY-1's approval expires
	if got, want := dmsHaving(effects, "You're next"), []string{bob}; !cmp.Equal(want, got) {
		t.Errorf("told it is next: %v, want %v", got, want)
	}
	if p1, p2 := s.release("PAY-1"), s.release("PAY-2"); p1.State != commands.StateRequested || !p1.Turn.IsZero() || p2.Turn.IsZero() {
		t.Errorf("PAY-1 %s with turn %v, PAY-2 with turn %v; want PAY-1 requested without one, PAY-2 with one", p1.State, p1.Turn, p2.Turn)
	}
	// PAY-1's claim window (due at 15m) is gone: nothing passes at 15m.
	s.step(5 * time.Minute)
	var passed int
	for _, e := range s.auditEntries() {
		if e.Action == commands.ActionPassTurn {
			passed++
		}
	}
	if passed != 0 {
		t.Errorf("%d turns passed after the expiry", passed)
	}
}
