// Package commands is dobrobot's core: the domain (Release, State, Lock,
// AuditEntry, Ticket), the transition table, the mention grammar (Parse), the
// Service that runs a command, and the rendering of replies. It knows nothing
// of Slack, Jira, bbolt or processes: it declares the ports it consumes
// (Store, Tracker, Executor, Groups) and adapters implement them.
//
// Every verb is one row of the table in verbs.go (its words, arguments, who
// may use it, whether it changes state, the method that runs it, its help);
// the method lives in the file of its noun: release.go, deploy.go, locks.go,
// reads.go.
//
// The state machine of a release (one transition table, see transitions.go):
//
//	            dobro            accept             here              dep start
//	(none) ───────────▶ requested ──────▶ accepted ──────▶ claimed ───────────▶ deploying ──dep finish──▶ done
//	                        │                 │  └──────────── dep start ────────────▶│  ▲
//	                 reject │                 │          (release needs no admin)     │  │ dep start
//	                        ▼                 │                            start hook │  │ (again)
//	                    rejected              │                                fails  ▼  │
//	                                          │                                     failed ──dep finish──▶ done
//	  cancel: requested, accepted, claimed, deploying, failed ─────────────────▶ cancelled
//
// Locks are held in deploying and failed, and released by dep finish and cancel.
package commands
