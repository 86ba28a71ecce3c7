package commands_test

import (
	"strings"
	"testing"

	"github.com/dobrobot/dobrobot/commands"
)

// freezeCases are releases a freeze of all must hold: ones that lock
// nothing (their components are not lockable, or they have none) and, as
// the control, one that locks a component.
var freezeCases = []struct {
	name  string
	comps []string
}{
	{"unlisted components", []string{"web", "docs"}},
	{"no components", nil},
	{"lockable components", []string{"backend"}},
}

// TestLockAllStopsEveryStart (issue 12, item 2): a freeze of all stops every
// dep start, also of a release that locks nothing (its components are not
// lockable, or it has none); unlock all lets it start.
func TestLockAllStopsEveryStart(t *testing.T) {
	for _, tc := range freezeCases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.tracker.tickets["PAY-50"] = readyTicket("PAY-50", tc.comps...)
			h.script([]step{
				{ann, "dobro PAY-50 no_need_admin", []string{"in the queue"}},
				{approver, "accept PAY-50", []string{"You accepted PAY-50."}},
				{admin, "lock all release freeze", []string{"Froze every component"}},
				{ann, "dep start PAY-50", []string{"All components are frozen by", "release freeze", "wait until an admin unlocks it"}},
			})
			if rel := h.release("PAY-50"); rel.State != commands.StateAccepted || h.start.count() != 0 {
				t.Errorf("under a freeze of all: PAY-50 is %s, %d start hooks ran; want accepted, none", rel.State, h.start.count())
			}
			if got := h.audit(); !strings.Contains(got[len(got)-1], " refused PAY-50 ") {
				t.Errorf("the refused start was not audited: %v", got)
			}
			h.script([]step{
				{admin, "unlock all", []string{"Unfroze all."}},
				{ann, "dep start PAY-50", []string{"Deploy of PAY-50 started."}},
			})
			if rel := h.release("PAY-50"); rel.State != commands.StateDeploying || h.start.count() != 1 {
				t.Errorf("after unlock all: PAY-50 is %s, %d start hooks ran; want deploying, 1", rel.State, h.start.count())
			}
		})
	}
}

// TestUnlockAllTellsEveryHeldRelease: a release that a freeze of all held
// back is told "you're next" when the freeze ends, also one that locks
// nothing (item 2's freeze stops it, so its end must free it too).
func TestUnlockAllTellsEveryHeldRelease(t *testing.T) {
	for _, tc := range freezeCases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.tracker.tickets["PAY-50"] = readyTicket("PAY-50", tc.comps...)
			h.script([]step{
				{admin, "lock all release freeze", []string{"Froze every component"}},
				{ann, "dobro PAY-50 no_need_admin", []string{"in the queue"}},
				{approver, "accept PAY-50", []string{"You accepted PAY-50."}},
			})
			var told []string
			for _, e := range h.say(admin, "unlock all") {
				if e.Kind == commands.EffectDM && strings.Contains(render(e.Text), "You're next") {
					told = append(told, e.User)
				}
			}
			if len(told) != 1 || told[0] != ann {
				t.Errorf("after unlock all, told %v; want [%s]", told, ann)
			}
		})
	}
}
