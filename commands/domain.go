package commands

import (
	"regexp"
	"slices"
	"time"
)

// State is the state of a release. States are stored on disk and in the audit
// log by name, so a value never changes once released.
type State string

// The states of a release; see the diagram in doc.go.
const (
	StateNone      State = "" // before a release exists
	StateRequested State = "requested"
	StateAccepted  State = "accepted"
	StateClaimed   State = "claimed"
	StateDeploying State = "deploying"
	StateDone      State = "done"
	StateRejected  State = "rejected"
	StateCancelled State = "cancelled"
	StateFailed    State = "failed"
)

// Open reports whether a release in state s is still in the queue.
func (s State) Open() bool {
	switch s {
	case StateRequested, StateAccepted, StateClaimed, StateDeploying, StateFailed:
		return true
	}
	return false
}

// HoldsLocks reports whether a release in state s holds its components' locks.
func (s State) HoldsLocks() bool { return s == StateDeploying || s == StateFailed }

// Action names what happened to a release or a lock. Actions are stored in the
// audit log by name.
type Action string

// The actions. Those that change a release's state appear in the transition
// table; the others are audited without changing a release's state.
const (
	ActionRequest Action = "request"
	ActionAccept  Action = "accept"
	ActionApprove Action = "approve" // one approval short of the environment's approvals: still requested
	ActionReject  Action = "reject"
	ActionClaim   Action = "claim"
	ActionStart   Action = "start"   // dep start: locks taken, start hook about to run
	ActionStarted Action = "started" // the start hook succeeded
	ActionFail    Action = "fail"    // the start hook failed
	ActionFinish  Action = "finish"  // dep finish: finish hook succeeded, locks released
	ActionCancel  Action = "cancel"

	ActionLock       Action = "lock"        // an admin froze a component
	ActionUnlock     Action = "unlock"      // an admin unfroze a component
	ActionHook       Action = "hook"        // a finish or cancel hook's result, state unchanged
	ActionRefused    Action = "refused"     // a refused state-changing command
	ActionInterrupt  Action = "interrupted" // a hook found running after a restart
	ActionHookFailed Action = "hook_failed" // a finish or cancel hook failed; state unchanged
	ActionRolledBack Action = "rolled_back" // a done release that a rollback replaces; state unchanged (done)
	ActionIncident   Action = "incident"    // a done release marked as the cause of an incident; state unchanged (done)
)

// Phase names the hook being run, as passed in DOBROBOT_PHASE.
type Phase string

// The hook phases.
const (
	PhaseStart  Phase = "start"
	PhaseFinish Phase = "finish"
	PhaseCancel Phase = "cancel"
)

// Release is one request to release a ticket, from dobro to its end.
type Release struct {
	ID     uint64 `json:"id"`     // assigned by the Store, increasing: the queue order
	Ticket string `json:"ticket"` // tracker key, e.g. PAY-123
	// Env is the environment the release deploys to; empty (every release
	// written before environments existed) means DefaultEnv. See EnvName.
	Env string `json:"env,omitempty"`
	// Build is the version the release deploys (a build ID, tag or commit),
	// shown to users as its "version"; empty when none was given. (Version,
	// below, is the store's write counter.)
	Build      string   `json:"build,omitempty"`
	Summary    string   `json:"summary,omitempty"`
	URL        string   `json:"url,omitempty"` // link to the ticket in the tracker
	Note       string   `json:"note,omitempty"`
	State      State    `json:"state"`
	NeedAdmin  bool     `json:"need_admin"`
	Requester  string   `json:"requester"`
	Approver   string   `json:"approver,omitempty"`
	Approvals  []string `json:"approvals,omitempty"` // distinct approvers so far, in order; the requester never counts
	Admin      string   `json:"admin,omitempty"`
	Components []string `json:"components,omitempty"` // all of the release's components
	Locks      []string `json:"locks,omitempty"`      // the lockable ones among Components
	// ComponentsChosen is set when the requester named the components
	// (dobro … on a,b) instead of taking the ticket's; TicketComponents
	// then holds what the ticket said (normalised, possibly none), so that
	// the approver is shown any difference.
	ComponentsChosen bool      `json:"components_chosen,omitempty"`
	TicketComponents []string  `json:"ticket_components,omitempty"`
	Reason           string    `json:"reason,omitempty"` // why it was rejected or cancelled
	Created          time.Time `json:"created"`
	Updated          time.Time `json:"updated"`
	Started          time.Time `json:"started,omitzero"` // last dep start
	// Running is set while a hook of this release runs: no other command may
	// change the release until its result is recorded. Found set after a
	// restart, it means the hook's outcome is unknown.
	Running *HookRun `json:"running,omitempty"`
	// LastHook is the result of the release's most recent hook.
	LastHook *HookResult `json:"last_hook,omitempty"`
	// Hotfix is set on a release requested with dobro … hotfix; FirstBy is
	// the admin who let it go first, at FirstSince (hotfix.go).
	Hotfix     bool      `json:"hotfix,omitempty"`
	FirstBy    string    `json:"first_by,omitempty"`
	FirstSince time.Time `json:"first_since,omitzero"`
	// RollbackOf is the release that this one rolls back (rollback), and
	// RolledBack, on a done release, the rollback release that replaced
	// it: a change failure for reports. Zero when none.
	RollbackOf uint64 `json:"rollback_of,omitempty"`
	RolledBack uint64 `json:"rolled_back,omitempty"`
	// Replaced holds, for each component of a done release, the release
	// that was done there before it in its environment (the "what is
	// where" entry it replaced; 0: none), so that rollback walks back
	// from release to release, not through the history. A component
	// missing from it: the release was done before it was kept.
	Replaced map[string]uint64 `json:"replaced,omitempty"`
	// Turn is when the release's claim window ends: set while it is its
	// turn to dep start (it was told "you're next"), zero otherwise. See
	// turns.go.
	Turn time.Time `json:"turn,omitzero"`
	// Behind is the release that took this one's turn when its claim
	// window passed: queueOrder keeps it right behind that one while both
	// wait. Zero: its place is its ID's.
	Behind uint64 `json:"behind,omitempty"`
	// CI is the last build CI reported for the release (build.go); nil
	// when CI never reported one.
	CI *CIStatus `json:"ci,omitempty"`
	// Card is the chat adapter's reference to the release's card (for Slack,
	// the message's ts). The core never reads it.
	Card string `json:"card,omitempty"`
	// Version increases with every write; stores use it for compare-and-set.
	Version uint64 `json:"version"`
	// FixVersions are the ticket's fix versions when it was requested;
	// FixVersionsRead says they were read (dobro), so that a release
	// requested before they were stored is not taken for a ticket whose
	// versions changed (tracker.recheck_on_start, recheck.go).
	FixVersions     []string `json:"fix_versions,omitempty"`
	FixVersionsRead bool     `json:"fix_versions_read,omitempty"`
}

// EnvName returns the release's environment: Env, or DefaultEnv for a
// release that names none.
func (r Release) EnvName() string {
	if r.Env == "" {
		return DefaultEnv
	}
	return r.Env
}

// HookRun records a hook that was spawned and has no recorded result yet.
type HookRun struct {
	Phase   Phase     `json:"phase"`
	Attempt string    `json:"attempt"` // unique per spawn; the webhook idempotency key
	Actor   string    `json:"actor"`
	Since   time.Time `json:"since"`
}

// HookResult is what a finished hook left behind.
type HookResult struct {
	Phase   Phase  `json:"phase"`
	Attempt string `json:"attempt"`
	OK      bool   `json:"ok"`
	// ExitCode is the program's exit status; for a webhook, 0 on success or
	// the HTTP status of a failing answer; -1 when there is none (refused,
	// not started, killed by a signal or the timeout, no answer).
	ExitCode int           `json:"exit_code"`
	Error    string        `json:"error,omitempty"`  // e.g. "timed out after 30m"
	Output   string        `json:"output,omitempty"` // the tail of its output
	Duration time.Duration `json:"duration"`
	Ended    time.Time     `json:"ended"`
}

// Lock is a component lock: held by a release from dep start until it ends, or
// a freeze set by an admin with the lock command (Release == 0).
type Lock struct {
	Component string    `json:"component"`
	Release   uint64    `json:"release,omitempty"` // 0 for a freeze
	Ticket    string    `json:"ticket,omitempty"`
	By        string    `json:"by"` // who took it
	Since     time.Time `json:"since"`
	Reason    string    `json:"reason,omitempty"`
	// Env is the environment the lock holds: a release's lock carries its
	// release's EnvName(); a freeze names the environment it was set in,
	// or "" for one that holds every environment.
	Env string `json:"env,omitempty"`
	// Until ends a freeze set from chat (freeze … until T), which Name
	// names for unfreeze; zero for every other lock.
	Until time.Time `json:"until,omitzero"`
	Name  string    `json:"name,omitempty"`
}

// Timed reports whether l is a freeze set from chat with an end.
func (l Lock) Timed() bool { return l.Frozen() && !l.Until.IsZero() }

// Frozen reports whether l is an admin's freeze rather than a release's lock.
func (l Lock) Frozen() bool { return l.Release == 0 }

// Deployed is what is where: the last release marked done for (Env,
// Component). The store keeps one per pair, so that reading what runs where
// costs environments × components and never a walk of the history.
type Deployed struct {
	Env       string    `json:"env"`
	Component string    `json:"component"`
	Release   uint64    `json:"release"`
	Ticket    string    `json:"ticket"`
	Build     string    `json:"build,omitempty"`
	By        string    `json:"by"`   // who finished it
	Done      time.Time `json:"done"` // when it was marked done
}

// AllComponents is the component name that freezes every component.
const AllComponents = "all"

// Ticket is what the tracker knows of an issue.
type Ticket struct {
	Key         string            `json:"key" yaml:"key"`
	Project     string            `json:"project" yaml:"project"`
	Summary     string            `json:"summary" yaml:"summary"`
	Status      string            `json:"status" yaml:"status"`
	Assignee    string            `json:"assignee" yaml:"assignee"`
	IssueType   string            `json:"issue_type" yaml:"issue_type"`
	FixVersions []string          `json:"fix_versions" yaml:"fix_versions"`
	Components  []string          `json:"components" yaml:"components"`
	Fields      map[string]string `json:"fields" yaml:"fields"`
	URL         string            `json:"url" yaml:"url"`
}

var ticketKey = regexp.MustCompile(`^[A-Z][A-Z0-9]+-[0-9]+$`)

// ValidTicket reports whether key is exactly a ticket key ([A-Z][A-Z0-9]+-[0-9]+).
// Keys are matched whole, never in part: "PAY-1;rm" is not valid.
func ValidTicket(key string) bool { return len(key) <= 64 && ticketKey.MatchString(key) }

// ProjectOf returns the project part of a valid ticket key.
func ProjectOf(key string) string {
	for i := range len(key) {
		if key[i] == '-' {
			return key[:i]
		}
	}
	return key
}

// Policy is the part of the configuration the core enforces.
type Policy struct {
	Requesters []string // empty: anyone who can reach the bot
	Approvers  []string
	Admins     []string
	// Components lists the lockable components.
	Components []string
	Rules      Rules
	// Channel is the release channel's ID, for links in replies.
	Channel string
	// Envs are the environments in promotion order, each's policy
	// complete. Never empty once NewService has returned: without
	// configured environments it holds one, DefaultEnv, built from the
	// fields above and Config.Hooks.
	Envs []EnvPolicy
	// DefaultEnv is where dobro goes without "to": the configured
	// default_environment, else the last environment.
	DefaultEnv string
}

// Rules are the checks a ticket must pass before its release is queued.
type Rules struct {
	Projects          []string // allowed project keys; empty allows any
	ReadyStatuses     []string // empty allows any status
	RequireAssignee   bool
	RequireFixVersion bool
	RequiredFields    []string
}

// Lockable reports whether component c is in the configured list.
func (p Policy) Lockable(c string) bool { return slices.Contains(p.Components, c) }
