package commands_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestOverrides: overrides lists, newest first, the starts, finishes and
// cancels an admin made of another's release, and not what a requester
// did to their own; since narrows it; bad input is refused.
func TestOverrides(t *testing.T) {
	h := newHarness(t)
	t0 := h.now
	do := func(min int, user, text, want string) {
		t.Helper()
		h.now = t0.Add(time.Duration(min) * time.Minute)
		if got := reply(h.say(user, text)); !strings.Contains(got, want) {
			t.Fatalf("%s: %q does not say %q", text, got, want)
		}
	}
	do(0, ann, "dobro PAY-1 no_need_admin", "is in the queue")
	do(1, approver, "accept PAY-1", "You accepted PAY-1.")
	do(2, admin, "dep start PAY-1", "Deploy of PAY-1 started.")
	do(3, admin, "dep finish PAY-1", "PAY-1 is done.")
	do(10, bob, "dobro PAY-2 no_need_admin", "is in the queue")
	do(11, admin, "cancel PAY-2 wrong build", "")
	do(20, ann, "dobro PAY-4", "is in the queue")
	do(21, ann, "cancel PAY-4", "")
	h.now = t0.Add(30 * time.Minute)

	start := "• 2026-11-22 10:02 UTC — <@U0ADMIN> started another's release: PAY-1 (locks: backend,payments; admin override; start hook attempt A)"
	finish := "• 2026-11-22 10:03 UTC — <@U0ADMIN> finished another's release: PAY-1 (finish hook ok in 10ms (attempt A); admin override)"
	cancel := "• 2026-11-22 10:11 UTC — <@U0ADMIN> cancelled another's release: PAY-2 (wrong build; admin override)"
	tests := []struct {
		in   string
		want []string
	}{
		{"overrides", []string{"Admin overrides since 2026-10-23 10:30 UTC, newest first:", cancel, finish, start}},
		{"overrides since 2026-11-22T10:03:00Z", []string{"Admin overrides since 2026-11-22 10:03 UTC, newest first:", cancel, finish}},
		{"overrides since 2026-11-22T10:12:00Z", []string{"No admin overrides since 2026-11-22 10:12 UTC."}},
		{"overrides since soon", []string{`"soon" is not a date: write 2026-11-01 or 2026-11-01T14:30:00Z.`}},
		{"overrides all", []string{"overrides takes nothing, or since and a date: overrides since 2026-11-01."}},
	}
	for _, tt := range tests {
		// Hook attempts are random: the test reads them as A.
		got := strings.Split(attemptID.ReplaceAllString(reply(h.say(guest, tt.in)), "attempt A"), "\n")
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.in, diff)
		}
	}
}

var attemptID = regexp.MustCompile(`attempt [0-9a-f]{16}`)

// TestIsOverride: which audit entries overrides lists: a forced start and
// a hotfix let first always; a start, finish or cancel only when the core
// wrote "admin override" (not a configured deployer's); nothing else.
func TestIsOverride(t *testing.T) {
	tests := []struct {
		e    commands.AuditEntry
		want bool
	}{
		{commands.AuditEntry{Action: commands.ActionForce, Detail: "override of freeze xmas: outage"}, true},
		{commands.AuditEntry{Action: commands.ActionHotfix, Detail: "let go first"}, true},
		{commands.AuditEntry{Action: commands.ActionStart, Detail: "locks: a; admin override"}, true},
		{commands.AuditEntry{Action: commands.ActionFinish, Detail: "admin override"}, true},
		{commands.AuditEntry{Action: commands.ActionCancel, Detail: "oops; admin override"}, true},
		{commands.AuditEntry{Action: commands.ActionStart, Detail: "locks: a; deployer"}, false},
		{commands.AuditEntry{Action: commands.ActionFinish, Detail: ""}, false},
		{commands.AuditEntry{Action: commands.ActionLock, Detail: "admin override"}, false},
	}
	for _, tt := range tests {
		if got := commands.IsOverride(tt.e); got != tt.want {
			t.Errorf("IsOverride(%s %q) = %v, want %v", tt.e.Action, tt.e.Detail, got, tt.want)
		}
	}
}
