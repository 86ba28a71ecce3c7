// Package hook runs dobrobot's hooks: the programs or web services that do the
// real deploy when a release starts, finishes or is cancelled. It implements
// commands.Executor twice:
//
//   - Exec runs a local program from an argv list, never through a shell. The
//     release is passed only in DOBROBOT_* environment variables; besides
//     those the program sees only PATH, HOME, LANG, TZ and the variables the
//     configuration names, never the bot's tokens. It runs in its own process
//     group, which is terminated (SIGTERM, then SIGKILL after a grace period)
//     when it times out or is cancelled, and its combined output is kept as a
//     bounded tail.
//   - Webhook POSTs the release as JSON to an HTTPS URL, signed with
//     HMAC-SHA256 and carrying an idempotency key that stays the same across
//     its bounded retries.
//
// Both re-check the job before acting on it: a ticket that is not exactly a
// ticket key, or a component or user with unexpected characters, is refused
// and nothing is run. docs/hooks.md is the contract a hook author reads.
package hook
