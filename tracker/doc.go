// Package tracker holds dobrobot's issue-tracker adapters, which implement
// commands.Tracker: Jira, which looks tickets up over Jira's REST API v2 with
// go-jira, and File and Static, which serve tickets kept in a YAML file or in
// memory, for demos and small teams.
//
// An adapter only fetches a ticket and maps it to commands.Ticket; the
// validation rules (allowed projects, ready statuses, assignee, fix version,
// required fields) are applied by the core. Errors crossing the port are
// *commands.Error: ENOTFOUND for a ticket that does not exist or that the
// bot may not see, EFORBIDDEN when the tracker rejects the bot's credentials,
// EUNAVAILABLE when it cannot be reached in time, and EINVALID for a key that
// is not a ticket key (refused before any I/O). Adapters fail closed: when in
// doubt the lookup fails, so no ticket is ever queued unchecked.
package tracker
