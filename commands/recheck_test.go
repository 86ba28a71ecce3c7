package commands_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestRecheckOnStart: with tracker.recheck_on_start, dep start asks the
// tracker again; a ticket no longer ready, or whose fix versions changed,
// voids the approval and the start is refused with the reason; a tracker
// that cannot answer refuses the start and changes nothing.
func TestRecheckOnStart(t *testing.T) {
	type want struct {
		reply    []string // substrings of the answer to dep start
		state    commands.State
		approver string
		voids    []string
		asked    []string // approvers asked again
	}
	const by = "U0ANN via slack PAY-1 accepted>requested: ticket changed since the approval: "
	for _, tt := range []struct {
		name    string
		recheck bool
		change  func(tk *commands.Ticket) error // the ticket after the accept; an error: the tracker's answer
		want    want
	}{
		{"ready", true, func(*commands.Ticket) error { return nil },
			want{[]string{"Deploy of PAY-1 started"}, commands.StateDeploying, approver, nil, nil}},
		{"status changed", true, func(tk *commands.Ticket) error { tk.Status = "In Progress"; return nil },
			want{[]string{"was not started", "status is In Progress, needs Ready for Release", "approval is void"}, commands.StateRequested, "",
				[]string{by + "status is In Progress, needs Ready for Release"}, []string{approver, qa}}},
		{"fix version changed", true, func(tk *commands.Ticket) error { tk.FixVersions = []string{"1.1"}; return nil },
			want{[]string{"was not started", "fix version changed from 1.0 to 1.1"}, commands.StateRequested, "",
				[]string{by + "fix version changed from 1.0 to 1.1"}, []string{approver, qa}}},
		{"fix version listed twice", true, func(tk *commands.Ticket) error { tk.FixVersions = []string{"1.0", "1.0"}; return nil },
			want{[]string{"Deploy of PAY-1 started"}, commands.StateDeploying, approver, nil, nil}},
		{"tracker down", true, func(*commands.Ticket) error {
			return commands.Errorf(commands.EUNAVAILABLE, "jira: connection refused")
		}, want{[]string{"Could not reach the tracker", "try again", "nothing changed"}, commands.StateAccepted, approver, nil, nil}},
		{"ticket gone", true, func(*commands.Ticket) error {
			return commands.Errorf(commands.ENOTFOUND, "PAY-1 was not found or is not visible to the bot.")
		}, want{[]string{"not found", "Not started; nothing changed"}, commands.StateAccepted, approver, nil, nil}},
		{"off: not asked", false, func(tk *commands.Ticket) error { tk.Status = "In Progress"; return nil },
			want{[]string{"Deploy of PAY-1 started"}, commands.StateDeploying, approver, nil, nil}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.rebuild(func(c *commands.Config) { c.RecheckOnStart = tt.recheck })
			h.say(ann, "dobro PAY-1 no_need_admin")
			h.say(approver, "accept PAY-1")
			h.tracker.mu.Lock()
			tk := h.tracker.tickets["PAY-1"]
			if err := tt.change(&tk); err != nil {
				h.tracker.errs["PAY-1"] = err
			}
			h.tracker.tickets["PAY-1"] = tk
			calls := h.tracker.calls
			h.tracker.mu.Unlock()

			effects := h.say(ann, "dep start PAY-1")
			r := reply(effects)
			for _, w := range tt.want.reply {
				if !strings.Contains(r, w) {
					t.Errorf("dep start answered %q, want it to say %q", r, w)
				}
			}
			h.tracker.mu.Lock()
			asked := h.tracker.calls - calls
			h.tracker.mu.Unlock()
			if wantAsked := map[bool]int{true: 1, false: 0}[tt.recheck]; asked != wantAsked {
				t.Errorf("the tracker was asked %d times at dep start, want %d", asked, wantAsked)
			}
			rel := h.release("PAY-1")
			if got := rel.FixVersions; tt.want.voids != nil && !cmp.Equal(got, h.tracker.tickets["PAY-1"].FixVersions) {
				t.Errorf("stored fix versions %v, want the ticket's %v (a new approval is for them)", got, h.tracker.tickets["PAY-1"].FixVersions)
			}
			if rel.State != tt.want.state || rel.Approver != tt.want.approver {
				t.Errorf("release %s approved by %q, want %s by %q", rel.State, rel.Approver, tt.want.state, tt.want.approver)
			}
			if diff := cmp.Diff(tt.want.voids, voids(t, h.db)); diff != "" {
				t.Errorf("void entries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want.asked, dmsHaving(effects, "asks for dobro again")); diff != "" {
				t.Errorf("approvers asked again (-want +got):\n%s", diff)
			}
			if tt.want.state != commands.StateDeploying && len(h.locks()) != 0 {
				t.Errorf("locks taken by a refused start: %v", h.locks())
			}
			h.audit()
			if _, err := commands.VerifyStore(context.Background(), h.db, nil); err != nil {
				t.Errorf("the audit log does not replay: %v", err)
			}
		})
	}
}

// TestRecheckSkipsARestart: a release that started once (failed, then
// started again) is not re-checked: its approval was used.
func TestRecheckSkipsARestart(t *testing.T) {
	h := newHarness(t)
	h.rebuild(func(c *commands.Config) { c.RecheckOnStart = true })
	h.say(ann, "dobro PAY-1 no_need_admin")
	h.say(approver, "accept PAY-1")
	h.start.fail = true
	h.say(ann, "dep start PAY-1")
	h.start.fail = false
	if st := h.release("PAY-1").State; st != commands.StateFailed {
		t.Fatalf("after dep fail: %s", st)
	}
	h.tracker.mu.Lock()
	h.tracker.errs["PAY-1"] = commands.Errorf(commands.EUNAVAILABLE, "down")
	h.tracker.mu.Unlock()
	if r := reply(h.say(ann, "dep start PAY-1")); !strings.Contains(r, "Deploy of PAY-1 started") {
		t.Errorf("a re-start after a failure: %q", r)
	}
}

// TestRecheckNotForOutsiders: a dep start by someone who may start nothing
// (no requester, approver only) is refused as before, without asking the
// tracker.
func TestRecheckNotForOutsiders(t *testing.T) {
	h := newHarness(t)
	h.rebuild(func(c *commands.Config) { c.RecheckOnStart, c.Policy.Requesters = true, []string{ann} })
	h.say(ann, "dobro PAY-1 no_need_admin")
	h.say(approver, "accept PAY-1")
	h.tracker.mu.Lock()
	calls := h.tracker.calls
	h.tracker.mu.Unlock()
	r := reply(h.say(qa, "dep start PAY-1"))
	h.tracker.mu.Lock()
	defer h.tracker.mu.Unlock()
	if h.tracker.calls != calls {
		t.Errorf("the tracker was asked %d times for an outsider's dep start (answered %q)", h.tracker.calls-calls, r)
	}
	if st := h.release("PAY-1").State; st != commands.StateAccepted {
		t.Errorf("PAY-1 is %s after a guest's dep start", st)
	}
}
