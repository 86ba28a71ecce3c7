package commands_test

import (
	"testing"

	"github.com/dobrobot/dobrobot/commands"
)

// TestTransitions walks every (state, action) pair against the expected table,
// so any change to the state machine shows up here.
func TestTransitions(t *testing.T) {
	const (
		none = commands.StateNone
		req  = commands.StateRequested
		acc  = commands.StateAccepted
		clm  = commands.StateClaimed
		dep  = commands.StateDeploying
		done = commands.StateDone
		rej  = commands.StateRejected
		cnl  = commands.StateCancelled
		fail = commands.StateFailed
	)
	want := map[commands.State]map[commands.Action]commands.State{
		none: {commands.ActionRequest: req},
		req:  {commands.ActionApprove: req, commands.ActionAccept: acc, commands.ActionReject: rej, commands.ActionCancel: cnl},
		acc:  {commands.ActionClaim: clm, commands.ActionStart: dep, commands.ActionCancel: cnl, commands.ActionVoid: req},
		clm:  {commands.ActionStart: dep, commands.ActionCancel: cnl, commands.ActionVoid: req},
		dep: {commands.ActionStart: dep, commands.ActionStarted: dep, commands.ActionFail: fail, commands.ActionInterrupt: dep,
			commands.ActionHookFailed: dep, commands.ActionFinish: done, commands.ActionCancel: cnl},
		fail: {commands.ActionStart: dep, commands.ActionInterrupt: fail, commands.ActionHookFailed: fail,
			commands.ActionFinish: done, commands.ActionCancel: cnl},
	}
	pairs := 0
	for _, s := range commands.States {
		for _, a := range commands.Actions {
			pairs++
			got, ok := commands.Next(s, a)
			w, wok := want[s][a]
			if got != w || ok != wok {
				t.Errorf("Next(%q, %q) = %q, %v; want %q, %v", s, a, got, ok, w, wok)
			}
			if ok && !s.Open() && s != none {
				t.Errorf("Next(%q, %q): a closed release must not move", s, a)
			}
			if ok && a == commands.ActionCancel && got.Open() {
				t.Errorf("cancel from %q leaves the release open", s)
			}
		}
	}
	if pairs != len(commands.States)*len(commands.Actions) || pairs < 90 {
		t.Fatalf("walked %d pairs", pairs)
	}
	// Every open state can be cancelled, and only open states hold locks.
	for _, s := range commands.States {
		if s.Open() {
			if _, ok := commands.Next(s, commands.ActionCancel); !ok {
				t.Errorf("open state %q cannot be cancelled", s)
			}
		}
		if s.HoldsLocks() && !s.Open() {
			t.Errorf("closed state %q holds locks", s)
		}
	}
}

// FuzzTransitions drives random action sequences through the table and checks
// its invariants: closed states are final and done is reached only through
// deploying or failed.
func FuzzTransitions(f *testing.F) {
	f.Add([]byte{0, 1, 3, 4, 5, 7})
	f.Add([]byte{0, 2})
	f.Add([]byte{0, 1, 4, 6, 4, 7})
	f.Fuzz(func(t *testing.T, seq []byte) {
		s := commands.StateNone
		for _, b := range seq {
			a := commands.Actions[int(b)%len(commands.Actions)]
			next, ok := commands.Next(s, a)
			if !ok {
				continue
			}
			if !s.Open() && s != commands.StateNone {
				t.Fatalf("%q moved to %q on %q", s, next, a)
			}
			if next == commands.StateDone && !s.HoldsLocks() {
				t.Fatalf("done reached from %q", s)
			}
			s = next
		}
	})
}
