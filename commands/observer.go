package commands

import "time"

// Observer receives what a Service counts and times, for metrics. Its
// methods must be quick and safe for concurrent use.
type Observer interface {
	// Command is called once for each message Handle processes: its verb
	// (VerbUnknown when none could be read), its outcome and how long the
	// handling took.
	Command(verb Verb, outcome Outcome, took time.Duration)
	// Hook is called with each hook's result once it has ended.
	Hook(res HookResult)
}

// Outcome is how a handled command ended, as reported to an Observer.
type Outcome string

// The outcomes of a command.
const (
	OutcomeOK        Outcome = "ok"        // done (or answered, for a read)
	OutcomeRefused   Outcome = "refused"   // refused and answered: not allowed, wrong state, not parsed
	OutcomeFailed    Outcome = "failed"    // not recorded: a store or internal error
	OutcomeDuplicate Outcome = "duplicate" // the event was processed already
)
