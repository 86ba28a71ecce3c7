// Package postgres keeps dobrobot's state in PostgreSQL (14 or newer) and
// implements commands.Store on it, for teams that run two or more dobrobot
// instances: one leads, the others stand by and take over when it fails.
//
// # Tables
//
// Everything lives in one schema (Options.Schema, default "dobrobot"),
// created and migrated by Open inside one transaction that holds an advisory
// lock, so instances starting together migrate once. The schema version is
// the row "schema" of meta; a newer version than this package knows is
// refused, and migrations are appended, never edited.
//
//	meta      key → value ("schema" → "1")
//	leader    the one row (id 1): epoch, holder, since — the current term
//	terms     epoch → holder, started: every leadership term ever begun
//	releases  id → ticket, open, version, data (the Release as JSON)
//	locks     (component, release, env) → data; env is a freeze's
//	          environment, '' for a freeze of every environment and for a
//	          release's lock (whose environment is in its data)
//	deployed  (env, component) → data (what is where, a commands.Deployed)
//	audit     seq → the entry's fields as columns, its exact time as text
//	          (hashed as written), and the epoch that appended it
//	inbox     event id → received (seconds, nanoseconds), processed, data
//	outbox    id → epoch, data (the Effect as JSON)
//
// Text keys are COLLATE "C", so components, tickets and event IDs sort by
// byte as they do in bbolt whatever the database's locale. Release and
// outbox IDs come from sequences: they increase and are never reused, though
// a rolled-back transaction leaves a gap. The audit table is append-only: a
// trigger refuses UPDATE, DELETE and TRUNCATE (its hash chain still shows
// what an owner who drops the trigger changes).
//
// # Transactions
//
// Update runs in one READ COMMITTED transaction that first locks the leader
// row (SELECT epoch … FOR UPDATE). That row lock is the store's writer lock:
// writers run one at a time, as in bbolt, so the audit chain never forks and
// fn runs exactly once, with no serialization failures to retry. It is also
// the fence (below). PutRelease reads the release's row FOR UPDATE to
// compare versions. Expected refusals (ENOTFOUND, ECONFLICT, EINVALID) are
// found before any statement could fail, so fn may carry on after one and
// the transaction still commits. View runs in a REPEATABLE READ READ ONLY
// transaction: one snapshot, and writes fail. A commit whose answer is lost
// is reported EUNAVAILABLE although PostgreSQL may have applied it; the
// inbox makes a retried event harmless.
//
// # Leadership and fencing
//
// Only the leader carries out commands, posts to Slack and runs hooks; the
// standbys hold Slack connections too and record the events they
// acknowledge in the inbox for it (Inbox, ListenInbox; inbox.go), the one
// write that needs no term. Leader campaigns for the leadership
// on a dedicated connection of its own (never a pooler in transaction mode:
// the lock lives in the session). A standby waits in pg_advisory_lock on a
// key derived from the schema, which the server grants it the moment the
// leader's session ends; the winner increments leader.epoch, records the
// term in terms, and leads. The lock connection runs with
// idle_session_timeout = Timeout and the leader heartbeats on it every
// Timeout/5, so a leader that freezes or is cut off loses its session, and
// with it the lock, within Timeout; one killed outright loses it at once.
// The leader also stops acting on its own when no heartbeat has been
// answered for 3/5 of Timeout: it then knows that the server may end its
// session soon.
//
// Each term's epoch fences the store: with Options.Fence set (to
// Leader.Epoch), Update compares the epoch it read under the row lock with
// the term this process holds and refuses (ErrFenced, EUNAVAILABLE) when they
// differ or the leader's lease has run out, and checks the lease again just
// before COMMIT. A new leader's epoch increment needs the same row lock, so
// it waits for any transaction of the old term to end; from then on every
// transaction of the old term is refused. The epochs of committed
// transactions therefore never interleave: all of term N's commit before the
// increment to N+1. The audit and the outbox record the epoch of the
// transaction that wrote each row, which is how the failover test checks it.
// Pool connections run with idle_in_transaction_session_timeout, so a leader
// frozen inside a transaction cannot hold the row lock for long. An Update
// waits for the row lock at most a fifth of that timeout at a time
// (lock_timeout, set for that statement only), then checks the fence and queues
// again: a frozen leader's writes that were waiting for the row leave the
// queue within that time, rather than each taking the row in turn and
// holding it, idle, for the whole timeout before the new leader's increment
// gets it. A takeover after a freeze thus takes about Timeout however many
// writes were queued. Stores
// opened without a Fence (the audit and backup commands, tests) take the
// row lock but check no epoch.
package postgres
