package commands_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestHistoryAt: history at T lists the releases whose dep start was at
// or before T and whose done, cancel or failed start came after it, read
// from the audit log, with how each ended; a moment in the future and a
// moment that is not one are refused.
func TestHistoryAt(t *testing.T) {
	h, _ := rollbackHarness(t)
	t0 := h.now
	at := func(min int) string { return t0.Add(time.Duration(min) * time.Minute).Format(time.RFC3339) }
	do := func(min int, user, text, want string) {
		t.Helper()
		h.now = t0.Add(time.Duration(min) * time.Minute)
		if got := reply(h.say(user, text)); !strings.Contains(got, want) {
			t.Fatalf("%s: %q does not say %q", text, got, want)
		}
	}
	do(0, ann, "dobro PAY-1 to production version 1.0.0", "is in the queue")
	do(1, approver, "accept PAY-1", "You accepted PAY-1.")
	do(2, ann, "dep start PAY-1", "Deploy of PAY-1 started.")
	do(3, bob, "dobro PAY-2 to qa version 2.0.0", "is in the queue")
	do(4, bob, "dep start PAY-2", "Deploy of PAY-2 started.")
	do(10, ann, "dep finish PAY-1", "PAY-1 is done.")
	do(12, bob, "cancel PAY-2", "")
	do(13, bob, "dobro PAY-4 to qa version 4.0.0", "is in the queue")
	do(14, bob, "dep start PAY-4", "Deploy of PAY-4 started.")
	h.now = t0.Add(20 * time.Minute)

	tests := []struct {
		in   string
		want []string // the reply's lines
	}{
		{"history at " + at(1), []string{"Nothing was deploying at 2026-11-22 10:01 UTC."}},
		{"history at " + at(2), []string{"Deploying at 2026-11-22 10:02 UTC:",
			"• PAY-1 in production v1.0.0 (backend, payments), started 2026-11-22 10:02 UTC by <@U0ANN>, done 2026-11-22 10:10 UTC"}},
		{"history at " + at(5), []string{"Deploying at 2026-11-22 10:05 UTC:",
			"• PAY-1 in production v1.0.0 (backend, payments), started 2026-11-22 10:02 UTC by <@U0ANN>, done 2026-11-22 10:10 UTC",
			"• PAY-2 in qa v2.0.0 (backend), started 2026-11-22 10:04 UTC by <@U0BOB>, cancelled 2026-11-22 10:12 UTC"}},
		{"history at " + at(10), []string{"Deploying at 2026-11-22 10:10 UTC:",
			"• PAY-2 in qa v2.0.0 (backend), started 2026-11-22 10:04 UTC by <@U0BOB>, cancelled 2026-11-22 10:12 UTC"}},
		{"history at " + at(12), []string{"Nothing was deploying at 2026-11-22 10:12 UTC."}},
		{"history at " + at(19), []string{"Deploying at 2026-11-22 10:19 UTC:",
			"• PAY-4 in qa v4.0.0 (ios), started 2026-11-22 10:14 UTC by <@U0BOB>, still deploying"}},
		{"history at " + at(30), []string{"2026-11-22T10:30:00Z is in the future: history at shows what was deploying at a past moment."}},
		{"history at noon", []string{`"noon" is not a date: write 2026-11-01 or 2026-11-01T14:30:00Z.`}},
		{"history at", []string{"at takes one moment and nothing after: history at 2026-11-01T14:32:00Z."}},
	}
	for _, tt := range tests {
		got := strings.Split(reply(h.say(guest, tt.in)), "\n")
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.in, diff)
		}
	}
}
