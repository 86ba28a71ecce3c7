package commands_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestQueueHandOff: queue tells a release that waits for a component its
// place for it and the releases ahead, and, once deploys have finished,
// about when its turn comes: the time the holder has left of the usual
// deploy (the median from dep start to done of the recent finished ones),
// plus a whole deploy for each release ahead that will take the component
// first.
func TestQueueHandOff(t *testing.T) {
	h := newHarness(t)
	line := func(ticket string) string {
		t.Helper()
		for _, l := range strings.Split(reply(h.say(ann, "queue")), "\n") {
			if strings.Contains(l, "/browse/"+ticket+"|") {
				return l
			}
		}
		t.Fatalf("queue has no line for %s", ticket)
		return ""
	}
	turn := func(l string) string {
		_, after, _ := strings.Cut(l, "waiting ")
		_, turn, _ := strings.Cut(after, " — ")
		return turn
	}
	deploy := func(user, ticket string) {
		t.Helper()
		h.script([]step{
			{user, "dobro " + ticket + " no_need_admin", []string{ticket}},
			{approver, "accept " + ticket, []string{ticket}},
			{user, "dep start " + ticket, []string{"started"}},
		})
	}

	// Nothing finished yet: places, no estimate.
	deploy(ann, "PAY-1") // backend, payments
	h.script([]step{{bob, "dobro PAY-3 no_need_admin", []string{"PAY-3"}}})
	if got, want := turn(line("PAY-3")), "#2 for backend (after PAY-1)"; got != want {
		t.Errorf("before any deploy finished, PAY-3 waits %q, want %q", got, want)
	}
	if got := turn(line("PAY-1")); got != "" {
		t.Errorf("PAY-1 holds its locks; queue says of it %q", got)
	}

	// PAY-1 took 12 minutes from dep start to done (script steps are a
	// minute apart). PAY-3 then deploys, and has run 7 minutes when PAY-2
	// and PAY-1 are requested.
	h.now = h.now.Add(10 * time.Minute)
	h.script([]step{
		{ann, "dep finish PAY-1", []string{"PAY-1 is done"}},
		{approver, "accept PAY-3", []string{"PAY-3"}},
		{bob, "dep start PAY-3", []string{"started"}},
	})
	h.now = h.now.Add(4 * time.Minute)
	h.script([]step{
		{ann, "dobro PAY-2 no_need_admin", []string{"PAY-2"}},
		{ann, "dobro PAY-1 no_need_admin", []string{"PAY-1"}},
	})

	got := map[string]string{"PAY-1": turn(line("PAY-1")), "PAY-2": turn(line("PAY-2")), "PAY-3": turn(line("PAY-3"))}
	want := map[string]string{
		"PAY-1": "#3 for backend (after PAY-3 and PAY-2), its turn in about 17 min", // 5 left of PAY-3, then 12 of PAY-2; nobody ahead for payments
		"PAY-2": "#2 for backend (after PAY-3), its turn in about 5 min",
		"PAY-3": "", // it deploys
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the queue's hand-off (-want +got):\n%s", diff)
	}

	// A frozen component has no estimate: nobody knows when it thaws.
	h.script([]step{{admin, "lock backend maintenance", []string{"backend"}}})
	if got := turn(line("PAY-2")); got != "" {
		t.Errorf("with backend frozen, PAY-2 waits %q, want nothing said", got)
	}
}
