package commands_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestHistoryFilters: on, by, in, since and until each narrow the
// releases history lists, read from the audit log, newest first; together
// they all apply; nothing matching says so.
func TestHistoryFilters(t *testing.T) {
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
	do(3, ann, "dep finish PAY-1", "PAY-1 is done.")
	do(10, bob, "dobro PAY-2 to qa version 2.0.0", "is in the queue")
	do(11, bob, "dep start PAY-2", "Deploy of PAY-2 started.")
	do(12, bob, "dep finish PAY-2", "PAY-2 is done.")
	do(20, bob, "dobro PAY-4 to qa version 4.0.0", "is in the queue")
	h.now = t0.Add(30 * time.Minute)

	pay1 := "• PAY-1 in production v1.0.0 (backend, payments) — done — requested 2026-11-22 10:00 UTC by <@U0ANN>, ended 2026-11-22 10:03 UTC"
	pay2 := "• PAY-2 in qa v2.0.0 (backend) — done — requested 2026-11-22 10:10 UTC by <@U0BOB>, ended 2026-11-22 10:12 UTC"
	pay4 := "• PAY-4 in qa v4.0.0 (ios) — accepted — requested 2026-11-22 10:20 UTC by <@U0BOB>"
	tests := []struct {
		in   string
		want []string
	}{
		{"history on ios", []string{"Releases matching on ios, newest first:", pay4}},
		{"history on backend", []string{"Releases matching on backend, newest first:", pay2, pay1}},
		{"history by @U0BOB", []string{"Releases matching by U0BOB, newest first:", pay4, pay2}},
		{"history by U0ANN", []string{"Releases matching by U0ANN, newest first:", pay1}},
		{"history in qa on backend", []string{"Releases matching in qa on backend, newest first:", pay2}},
		{"history in production by U0ANN", []string{"Releases matching in production by U0ANN, newest first:", pay1}},
		{"history since " + at(5), []string{"Releases matching since " + at(5) + ", newest first:", pay4, pay2}},
		{"history until " + at(15), []string{"Releases matching until " + at(15) + ", newest first:", pay2, pay1}},
		{"history since " + at(5) + " until " + at(15), []string{"Releases matching since " + at(5) + " until " + at(15) + ", newest first:", pay2}},
		{"history PAY-1 by U0BOB", []string{"No releases matching PAY-1 by U0BOB."}},
		{"history on web", []string{"No releases matching on web."}},
		{"history on", []string{"on needs a value: history [TICKET] [in ENV] [on COMPONENT] [by @person] [since T] [until T], or history at T."}},
		{"history by @@x", []string{`"@@x" is not a person: by @someone.`}},
		{"history since " + at(15) + " until " + at(5), []string{"since must come before until (since " + at(15) + " until " + at(5) + ")."}},
		{"history on a on b", []string{"on is given twice: history [TICKET] [in ENV] [on COMPONENT] [by @person] [since T] [until T], or history at T."}},
	}
	for _, tt := range tests {
		got := strings.Split(reply(h.say(guest, tt.in)), "\n")
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.in, diff)
		}
	}
}
