package commands

import (
	"context"
	"slices"
	"time"
)

// Store keeps releases, locks, the audit log, the inbox of received events and
// the outbox of effects to deliver. Implementations: storage (bbolt) and any
// other that passes storage/storagetest.
//
// Update runs fn in one serialisable read-write transaction: everything fn
// writes is committed together if fn returns nil, and nothing is written if fn
// returns an error (returned as is), the commit fails (EUNAVAILABLE or
// EINTERNAL), or ctx ends before the commit (ctx.Err()). fn runs at most once
// per call and must not do network I/O, run hooks, or keep the Tx after it
// returns. View runs fn read-only.
type Store interface {
	Update(ctx context.Context, fn func(Tx) error) error
	// UpdateFirst is Update for a short transaction that others wait for:
	// where the Store queues writers (bbolt's write lock) it goes before
	// the Update calls waiting, not before the one running. Receive uses it
	// for the inbox records every acknowledgement waits for. A Store whose
	// writers do not queue behind one lock implements it as Update.
	UpdateFirst(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error
	// Pending returns up to max outbox effects, oldest first (max <= 0: all).
	// What an effect refers to (Text, Buttons, Release, Export) may be
	// shared with the Store's cache and with other callers: read it, never
	// change it in place (appending to a Text makes a copy).
	Pending(ctx context.Context, max int) ([]Effect, error)
	// PendingAfter is Pending for the effects whose ID is greater than
	// after: a sender that remembers the last effect it took reads only the
	// new ones, not the whole backlog of a paced channel at every wake-up.
	PendingAfter(ctx context.Context, after uint64, max int) ([]Effect, error)
	// Delivered removes delivered effects from the outbox. Unknown IDs are ignored.
	Delivered(ctx context.Context, ids ...uint64) error
	// Audit calls fn for each audit entry matching f, in seq order, from a
	// consistent snapshot; fn's error stops the walk and is returned. fn must
	// not call the Store.
	Audit(ctx context.Context, f AuditFilter, fn func(AuditEntry) error) error
	Close() error
}

// Tx is one Store transaction. Values returned are copies the caller owns.
// Errors: ENOTFOUND for a missing release; others are EINTERNAL.
type Tx interface {
	// Release returns the release with the given ID.
	Release(id uint64) (Release, error)
	// OpenReleases returns ticket's open releases in every environment,
	// ascending ID (none: empty, no error). The core, not the store,
	// resolves `in ENV` among them.
	OpenReleases(ticket string) ([]Release, error)
	// LastRelease returns the most recent release of ticket, open or not, or ENOTFOUND.
	LastRelease(ticket string) (Release, error)
	// Open returns the open releases in queue order (ascending ID). Its cost
	// grows with the number of open releases, not with history.
	Open() ([]Release, error)
	// Releases returns the releases of ticket, newest first, at most max
	// (max <= 0: all).
	Releases(ticket string, max int) ([]Release, error)
	// Recent returns the most recent releases of any ticket, newest first, at
	// most max (max <= 0: all).
	Recent(max int) ([]Release, error)
	// PutRelease stores r. With r.ID == 0 it assigns the next ID and stores
	// version 1, whatever r.Version holds; otherwise it replaces the release, which must exist. It keeps the
	// open index and per-ticket index in step with r.State and increments
	// r.Version (the stored release's version must equal r.Version, else
	// ECONFLICT).
	PutRelease(r Release) (Release, error)

	// Locks returns every lock and freeze, ordered by component then release.
	Locks() ([]Lock, error)
	// PutLock adds or replaces the lock keyed by (Component, Release), or,
	// for a freeze (Release 0), by (Component, Env): two environments may
	// freeze the same component, and a freeze with Env "" (every
	// environment) is another key again.
	PutLock(l Lock) error
	// DeleteLock removes the lock keyed by (component, release), or the
	// freeze keyed by (component, env) when release is 0; env is ignored
	// for a release's lock. Missing is fine.
	DeleteLock(component string, release uint64, env string) error

	// AppendAudit seals e as the next entry of the chain (see Seal), stores
	// it and returns it.
	AppendAudit(e AuditEntry) (AuditEntry, error)
	// AuditHead returns the last entry's seq and hash (0 and GenesisHash when empty).
	AuditHead() (uint64, string, error)

	// Event returns the inbox record of an event ID, and whether it exists.
	Event(id string) (InboxEvent, bool, error)
	// PutEvent adds or replaces an inbox record.
	PutEvent(e InboxEvent) error
	// PendingEvents returns the inbox records not yet processed, oldest first.
	PendingEvents() ([]InboxEvent, error)
	// PruneEvents deletes processed records received before t and returns how many.
	PruneEvents(before time.Time) (int, error)

	// Emit adds an effect to the outbox, assigning its ID, delivered after
	// commit. The Store may keep what e refers to (Text, Buttons, Release):
	// the caller does not change it afterwards.
	Emit(e Effect) (Effect, error)

	// What is where (issue 14): written by the transition that marks a
	// release done, read by where and the promotion rule.

	// Deployed returns every (env, component) entry, ordered by env then
	// component.
	Deployed() ([]Deployed, error)
	// PutDeployed adds or replaces the entry of (d.Env, d.Component). Both
	// are names (EINVALID when empty): the core writes the release's
	// EnvName(), so that a release without Env is found in DefaultEnv.
	PutDeployed(d Deployed) error

	// DueTx keeps the scheduler's due times (issue 16).
	DueTx
}

// AuditFilter selects audit entries; zero fields match everything.
type AuditFilter struct {
	Since  time.Time // entries at or after
	Until  time.Time // entries before
	Ticket string
	// Actions keeps only the entries of these actions (a report reads the
	// few it counts); none keeps every action.
	Actions []Action
}

// Match reports whether e passes the filter.
func (f AuditFilter) Match(e AuditEntry) bool {
	return (f.Since.IsZero() || !e.Time.Before(f.Since)) &&
		(f.Until.IsZero() || e.Time.Before(f.Until)) &&
		(f.Ticket == "" || e.Ticket == f.Ticket) &&
		(len(f.Actions) == 0 || slices.Contains(f.Actions, e.Action))
}

// InboxEvent is the persisted record of a received chat event, so that a
// redelivered event has exactly one effect, also across a restart.
type InboxEvent struct {
	ID        string    `json:"id"`
	Message   Message   `json:"message"`
	Received  time.Time `json:"received"`
	Processed bool      `json:"processed"`
	// Failed is set on a processed event that had no effect: its handling
	// failed and its sender was told that nothing was changed, or it was
	// found pending after a restart, too old to replay (see ReplayWindow),
	// and its sender was told so. Such an event is never handled again.
	Failed bool `json:"failed,omitempty"`
}

// Tracker looks up tickets. Errors: ENOTFOUND for a ticket that does not exist
// or is not visible to the bot's account; EUNAVAILABLE when the tracker cannot
// be reached in time; EFORBIDDEN when it rejects the bot's credentials.
type Tracker interface {
	Ticket(ctx context.Context, key string) (Ticket, error)
}

// Commenter is implemented by trackers that can write back to a ticket
// (tracker.comment_on). A failed comment is logged and retried; it never
// fails a release.
type Commenter interface {
	Comment(ctx context.Context, key, text string) error
}

// Executor runs a hook for a release and reports its result. It never returns
// before the hook (and anything it started) has ended or been killed. A nil
// Executor in Hooks means "no hook": the phase succeeds at once.
type Executor interface {
	Run(ctx context.Context, job Job) HookResult
}

// Job is what a hook is told about the release it acts on.
type Job struct {
	Phase      Phase
	Attempt    string // unique per spawn, stable across a webhook's retries
	Ticket     string
	Env        string // the release's environment (Release.EnvName)
	Build      string // the version to deploy; empty when the release has none
	Requester  string
	Admin      string // empty when nobody claimed the release
	Components []string
}

// Hooks holds the executor of each phase; nil means no hook for that phase.
type Hooks struct {
	Start, Finish, Cancel Executor
}

// Groups resolves an ID of a role list, or the release channel, to the users
// it stands for: a user ID stands for that user alone, a group or channel
// for its members. Only the adapter knows which IDs are groups. Errors:
// EUNAVAILABLE when the membership cannot be known fresh enough; the caller
// then denies. A user ID never fails.
type Groups interface {
	Members(ctx context.Context, group string) ([]string, error)
}

// HandIn records a hook's result on a Store several instances share, one of
// which leads (PostgreSQL: storage/postgres's DB.HandIn), whose Update
// refuses the writes of an instance that does not hold the current
// leadership term. A hook's result, keyed by its attempt ID, is a fact
// whatever the term, so the instance that ran the hook records it through
// HandIn, which runs fn in one read-write transaction as Update does —
// serialised with every other write — whether or not this instance leads;
// leads tells fn which. fn must change nothing unless the state it reads
// still waits for what it brings.
type HandIn func(ctx context.Context, fn func(tx Tx, leads bool) error) error

// Scheduler ports (issue 16): the Service's clock, and the due times the
// Store keeps with the releases they belong to (schedule.go fires them).

// Clock is the Service's time: production uses the time package
// (RealClock), tests a fake that they move forward themselves
// (commands/clocktest), so that days pass in milliseconds.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Timer returns a channel that receives once d has passed, and a stop
	// func that reports whether it stopped the timer before it fired.
	Timer(d time.Duration) (<-chan time.Time, func() bool)
}

// DueKind names what the Service does when a Due falls due.
type DueKind string

// Due is a time at which the Service acts on a release. It is written in
// the transaction of the change that makes it due and deleted by the one
// that makes it moot, so it never outlives its cause.
type Due struct {
	At      time.Time `json:"at"`
	Kind    DueKind   `json:"kind"`
	Release uint64    `json:"release"`
	Guard   Guard     `json:"guard"`            // the release's State and Version when written
	Repeat  int       `json:"repeat,omitempty"` // how many times it fired already
}

// Guard is what a release was when a Due was written about it: firing
// checks it, so that a release moved on (also by a binary that knew nothing
// of due times) is not acted on.
type Guard struct {
	State   State  `json:"state"`
	Version uint64 `json:"version"`
}

// DueTx is the part of Tx that keeps due times. Implementations keep them
// ordered by time so that each change costs O(log n).
type DueTx interface {
	// PutDue adds or replaces the record of (d.Release, d.Kind).
	PutDue(d Due) error
	// DeleteDue removes the record of (release, kind); missing is fine.
	DeleteDue(release uint64, kind DueKind) error
	// DueBefore returns up to max records (max <= 0: all) with At <= t,
	// oldest first (ties: by kind, then release).
	DueBefore(t time.Time, max int) ([]Due, error)
	// NextDue returns the earliest record, if any.
	NextDue() (Due, bool, error)
}
