package commands_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// homeButtons is each waiting release's ticket with the commands of its
// buttons, as "PAY-1: accept PAY-1, reject PAY-1".
func homeButtons(v commands.HomeView) []string {
	var out []string
	for _, w := range v.Waiting {
		var cmds []string
		for _, b := range w.Buttons {
			cmds = append(cmds, b.Label+"="+b.Command)
		}
		out = append(out, w.Ticket+": "+strings.Join(cmds, ", "))
	}
	return out
}

// TestHomeWaitsFor: each person's App Home lists what waits for them, with
// the buttons (commands) that act, as the release moves on: approvers (not
// the requester, even an approver) to accept or reject, then admins to
// claim, then the requester to start and finish; anyone else sees nothing
// waiting. The queue, locks, freezes and where are shown to everyone.
func TestHomeWaitsFor(t *testing.T) {
	h := newHarness(t)
	home := func(user string) commands.HomeView {
		t.Helper()
		v, err := h.svc.Home(context.Background(), user)
		if err != nil {
			t.Fatalf("Home(%s): %v", user, err)
		}
		return v
	}
	h.say(ann, "dobro PAY-1")
	h.say(admin, "lock ios release freeze")
	steps := []struct {
		name string
		do   func()
		want map[string][]string
	}{
		{"requested", func() {}, map[string][]string{
			approver: {"PAY-1: Accept=accept PAY-1, Reject=reject PAY-1"},
			qa:       {"PAY-1: Accept=accept PAY-1, Reject=reject PAY-1"}, // by the group S0QA
			ann:      nil,                                                 // an approver, but the requester
			admin:    nil,
			guest:    nil,
		}},
		{"accepted", func() { h.say(approver, "accept PAY-1") }, map[string][]string{
			approver: nil,
			admin:    {"PAY-1: Claim=here PAY-1"},
			ann:      nil,
		}},
		{"claimed", func() { h.say(admin, "here PAY-1") }, map[string][]string{
			admin: {"PAY-1: Start=dep start PAY-1"}, // the release's admin deploys too
			ann:   {"PAY-1: Start=dep start PAY-1"},
			bob:   nil,
		}},
		{"deploying", func() { h.say(ann, "dep start PAY-1") }, map[string][]string{
			ann:      {"PAY-1: Finish=dep finish PAY-1"},
			approver: nil,
		}},
	}
	for _, s := range steps {
		s.do()
		for user, want := range s.want {
			if diff := cmp.Diff(want, homeButtons(home(user))); diff != "" {
				t.Errorf("%s: %s's home waiting (-want +got):\n%s", s.name, user, diff)
			}
		}
	}
	v := home(guest)
	for _, c := range []struct {
		section string
		got     commands.Text
		want    string
	}{
		{"queue", v.Queue, "|PAY-1> — deploying — requester <@" + ann + ">"},
		{"locks", v.Locks, "backend is locked by PAY-1"},
		{"freezes", v.Freezes, "ios is frozen by <@" + admin + "> just now: release freeze"},
		{"where", v.Where, "Deploying now:"},
	} {
		if got := render(c.got); !strings.Contains(got, c.want) {
			t.Errorf("%s = %q, lacks %q", c.section, got, c.want)
		}
	}
}

// TestHomeCommand: home in the console (any chat) answers the same view
// as text, naming each button's command; it changes nothing and is not
// audited.
func TestHomeCommand(t *testing.T) {
	h := newHarness(t)
	h.say(ann, "dobro PAY-1")
	before := h.audit()
	got := reply(h.say(approver, "home"))
	for _, want := range []string{
		"Home of <@" + approver + ">.\nWaiting for you:\n• <https://jira.example.com/browse/PAY-1|PAY-1> — Summary of PAY-1",
		"[Accept: `accept PAY-1`] [Reject: `reject PAY-1`]",
		"\nQueue:\n1 open, in order:\n1. <https://jira.example.com/browse/PAY-1|PAY-1> — requested",
		"\nLocks:\nNo component is locked.",
		"\nFreezes:\nNothing is frozen.",
		"\nWhere:\nNothing is recorded as done yet.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("home reply %q lacks %q", got, want)
		}
	}
	if got := reply(h.say(guest, "home")); !strings.Contains(got, "Waiting for you: nothing.") {
		t.Errorf("guest's home reply %q: want nothing waiting", got)
	}
	if diff := cmp.Diff(before, h.audit()); diff != "" {
		t.Errorf("home changed the audit log (-before +after):\n%s", diff)
	}
}

// TestHomeDeployers: where an environment names deployers, its releases
// wait for them to start, not for the requester.
func TestHomeDeployers(t *testing.T) {
	h, _ := envHarness(t)
	h.say(ann, "dobro PAY-1")
	h.say(approver, "accept PAY-1")
	h.say(qa, "accept PAY-1")
	h.say(admin, "here PAY-1")
	for user, want := range map[string][]string{
		deployer: {"PAY-1: Start=dep start PAY-1 in production"},
		admin:    {"PAY-1: Start=dep start PAY-1 in production"},
		ann:      nil,
	} {
		v, err := h.svc.Home(context.Background(), user)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, homeButtons(v)); diff != "" {
			t.Errorf("%s's home waiting (-want +got):\n%s", user, diff)
		}
	}
}
