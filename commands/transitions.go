package commands

// transitions is the whole state machine of a release: (state, action) →
// next state. Guards that depend on more than the state (roles, locks, the
// queue, whether the release needs an admin) are checked by the Service.
var transitions = map[State]map[Action]State{
	StateNone: {
		ActionRequest: StateRequested,
	},
	StateRequested: {
		ActionApprove: StateRequested, // one of several approvals, not the last
		ActionAccept:  StateAccepted,
		ActionReject:  StateRejected,
		ActionCancel:  StateCancelled,
	},
	StateAccepted: {
		ActionClaim:  StateClaimed,
		ActionStart:  StateDeploying, // only when the release needs no admin
		ActionCancel: StateCancelled,
		ActionVoid:   StateRequested, // approval_ttl passed, or the ticket changed (expiry.go)
	},
	StateClaimed: {
		ActionStart:  StateDeploying,
		ActionCancel: StateCancelled,
		ActionVoid:   StateRequested,
	},
	StateDeploying: {
		ActionStart:      StateDeploying, // only after an interrupted start hook: an explicit re-run
		ActionStarted:    StateDeploying,
		ActionFail:       StateFailed,
		ActionInterrupt:  StateDeploying,
		ActionHookFailed: StateDeploying,
		ActionFinish:     StateDone,
		ActionCancel:     StateCancelled,
	},
	StateFailed: {
		ActionStart:      StateDeploying,
		ActionInterrupt:  StateFailed,
		ActionHookFailed: StateFailed,
		ActionFinish:     StateDone,
		ActionCancel:     StateCancelled,
	},
}

// Next returns the state a release in state from moves to on action, and
// whether the table allows the action at all.
func Next(from State, action Action) (State, bool) {
	to, ok := transitions[from][action]
	return to, ok
}

// States lists every state, for tests and docs.
var States = []State{StateNone, StateRequested, StateAccepted, StateClaimed, StateDeploying, StateDone, StateRejected, StateCancelled, StateFailed}

// Actions lists every action that can change a release, for tests and docs.
var Actions = []Action{ActionRequest, ActionApprove, ActionAccept, ActionReject, ActionClaim, ActionStart, ActionStarted, ActionFail, ActionFinish, ActionCancel, ActionInterrupt, ActionHookFailed, ActionVoid}
