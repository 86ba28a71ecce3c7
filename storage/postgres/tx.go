package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/dobrobot/dobrobot/commands"
)

// tx is one Update or View transaction. Everything it returns is decoded from
// the rows it read, so it stays valid after the transaction.
type tx struct {
	ctx      context.Context
	pg       pgx.Tx
	q        *queries
	epoch    int64 // the term under which an Update writes
	readOnly bool
	done     bool // set when Update/View's fn returned
}

var (
	errTxDone   = errors.New("postgres: transaction used after its function returned")
	errReadOnly = errors.New("postgres: a write inside View: writes belong in Update")
)

// check says whether the transaction may still be used (and written to).
func (t *tx) check(write bool) error {
	switch {
	case t.done:
		return errTxDone
	case write && t.readOnly:
		return errReadOnly
	}
	return nil
}

// wrap adds context to a failed statement; when the transaction's context
// has ended, that is the cause.
func (t *tx) wrap(err error, format string, args ...any) error {
	if cerr := t.ctx.Err(); cerr != nil {
		return fmt.Errorf("postgres: "+format+": %w", append(args, cerr)...)
	}
	return fmt.Errorf("postgres: "+format+": %w", append(args, err)...)
}

// checkText refuses what a text column cannot hold: a NUL byte or invalid
// UTF-8. PostgreSQL would reject it mid-transaction and roll it all back.
func checkText(what, s string) error {
	if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
		return commands.Errorf(commands.EINVALID, "%q is not a valid %s (no NUL bytes, UTF-8 only).", s, what)
	}
	return nil
}

// checkName refuses an empty key as well.
func checkName(what, s string) error {
	if s == "" {
		return commands.Errorf(commands.EINVALID, "%q is not a valid %s name.", s, what)
	}
	return checkText(what+" name", s)
}

func checkID(what string, id uint64) error {
	if id > maxID {
		return commands.Errorf(commands.EINVALID, "%s %d is too large.", what, id)
	}
	return nil
}

// one reads at most one JSON row into v; it reports whether there was one.
func (t *tx) one(sql string, v any, what string, args ...any) (bool, error) {
	var data []byte
	err := t.pg.QueryRow(t.ctx, sql, args...).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, t.wrap(err, "read %s", what)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("postgres: decode %s: %w", what, err)
	}
	return true, nil
}

// all reads JSON rows into a slice.
func all[T any](t *tx, sql, what string, args ...any) ([]T, error) {
	rows, err := t.pg.Query(t.ctx, sql, args...)
	if err != nil {
		return nil, t.wrap(err, "read %s", what)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) {
		var (
			data []byte
			v    T
		)
		if err := row.Scan(&data); err != nil {
			return v, err
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return v, fmt.Errorf("decode: %w", err)
		}
		return v, nil
	})
	if err != nil {
		return nil, t.wrap(err, "read %s", what)
	}
	return out, nil
}

// Release returns the release with the given ID, or ENOTFOUND.
func (t *tx) Release(id uint64) (commands.Release, error) {
	if err := t.check(false); err != nil {
		return commands.Release{}, err
	}
	var r commands.Release
	ok := false
	if id <= maxID {
		var err error
		if ok, err = t.one(t.q.release, &r, fmt.Sprintf("release %d", id), int64(id)); err != nil {
			return commands.Release{}, err
		}
	}
	if !ok {
		return commands.Release{}, commands.Errorf(commands.ENOTFOUND, "There is no release %d.", id)
	}
	return r, nil
}

// OpenReleases returns ticket's open releases, ascending ID.
func (t *tx) OpenReleases(ticket string) ([]commands.Release, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	if checkText("ticket", ticket) != nil {
		return nil, nil // no row can hold it
	}
	return all[commands.Release](t, t.q.openReleases, "open releases of "+ticket, ticket)
}

// LastRelease returns the newest release of ticket, or ENOTFOUND.
func (t *tx) LastRelease(ticket string) (commands.Release, error) {
	if err := t.check(false); err != nil {
		return commands.Release{}, err
	}
	var r commands.Release
	ok, err := t.lookup(t.q.lastRelease, &r, ticket)
	if err != nil {
		return commands.Release{}, err
	}
	if !ok {
		return commands.Release{}, commands.Errorf(commands.ENOTFOUND, "%s has never been released with dobrobot.", ticket)
	}
	return r, nil
}

// lookup reads one release of ticket; a ticket no row can hold has none.
func (t *tx) lookup(sql string, r *commands.Release, ticket string) (bool, error) {
	if checkText("ticket", ticket) != nil {
		return false, nil
	}
	return t.one(sql, r, "release of "+ticket, ticket)
}

// Open returns the open releases in ascending ID order, reading only those
// (a partial index holds the open ones).
func (t *tx) Open() ([]commands.Release, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	return all[commands.Release](t, t.q.open, "open releases")
}

// Releases returns ticket's releases, newest first, at most max (max <= 0: all).
func (t *tx) Releases(ticket string, max int) ([]commands.Release, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	if checkText("ticket", ticket) != nil {
		return nil, nil
	}
	return all[commands.Release](t, t.q.releases, "releases of "+ticket, ticket, limit(max))
}

// Recent returns the newest releases of any ticket, at most max (max <= 0: all).
func (t *tx) Recent(max int) ([]commands.Release, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	return all[commands.Release](t, t.q.recent, "recent releases", limit(max))
}

// PutRelease stores r; see commands.Tx. A refused PutRelease writes nothing
// and leaves the transaction usable.
func (t *tx) PutRelease(r commands.Release) (commands.Release, error) {
	if err := t.check(true); err != nil {
		return commands.Release{}, err
	}
	if err := checkName("ticket", r.Ticket); err != nil {
		return commands.Release{}, err
	}
	if err := checkID("release", r.ID); err != nil {
		return commands.Release{}, err
	}
	sql := t.q.updateRelease
	if r.ID == 0 {
		var id int64
		if err := t.pg.QueryRow(t.ctx, t.q.nextRelease).Scan(&id); err != nil {
			return commands.Release{}, t.wrap(err, "next release ID")
		}
		r.ID, r.Version = uint64(id), 1
		sql = t.q.insertRelease
	} else {
		var (
			ticket  string
			version int64
		)
		err := t.pg.QueryRow(t.ctx, t.q.releaseForUpdate, int64(r.ID)).Scan(&ticket, &version)
		if errors.Is(err, pgx.ErrNoRows) {
			return commands.Release{}, commands.Errorf(commands.ENOTFOUND, "There is no release %d.", r.ID)
		}
		if err != nil {
			return commands.Release{}, t.wrap(err, "read release %d", r.ID)
		}
		if uint64(version) != r.Version {
			return commands.Release{}, commands.Errorf(commands.ECONFLICT,
				"%s changed while your command ran (version %d, not %d): try again.", ticket, version, r.Version)
		}
		r.Version++
	}
	data, err := json.Marshal(r)
	if err != nil {
		return commands.Release{}, fmt.Errorf("postgres: encode release %d: %w", r.ID, err)
	}
	if _, err := t.pg.Exec(t.ctx, sql, int64(r.ID), r.Ticket, r.State.Open(), int64(r.Version), data); err != nil {
		return commands.Release{}, t.wrap(err, "write release %d", r.ID)
	}
	return r, nil
}

// Locks returns every lock, ordered by component, then release.
func (t *tx) Locks() ([]commands.Lock, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	return all[commands.Lock](t, t.q.locks, "locks")
}

// lockEnv is the env column of a lock's key: the freeze's environment, ""
// for a release's lock, whose (component, release) is unique already.
func lockEnv(release uint64, env string) string {
	if release != 0 {
		return ""
	}
	return env
}

// PutLock adds or replaces the lock keyed by (Component, Release), or the
// freeze keyed by (Component, Env).
func (t *tx) PutLock(l commands.Lock) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := checkName("component", l.Component); err != nil {
		return err
	}
	if err := checkText("environment", l.Env); err != nil {
		return err
	}
	if err := checkID("release", l.Release); err != nil {
		return err
	}
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("postgres: encode lock of %s: %w", l.Component, err)
	}
	if _, err := t.pg.Exec(t.ctx, t.q.putLock, l.Component, int64(l.Release), lockEnv(l.Release, l.Env), data); err != nil {
		return t.wrap(err, "put lock of %s", l.Component)
	}
	return nil
}

// DeleteLock removes the lock keyed by (component, release), or the freeze
// keyed by (component, env) when release is 0, if any.
func (t *tx) DeleteLock(component string, release uint64, env string) error {
	if err := t.check(true); err != nil {
		return err
	}
	if checkText("component", component) != nil || checkText("environment", env) != nil || release > maxID {
		return nil // no such lock can exist
	}
	if _, err := t.pg.Exec(t.ctx, t.q.deleteLock, component, int64(release), lockEnv(release, env)); err != nil {
		return t.wrap(err, "delete lock of %s", component)
	}
	return nil
}

// AppendAudit seals e after the chain's head and stores it with the epoch of
// the transaction.
func (t *tx) AppendAudit(e commands.AuditEntry) (commands.AuditEntry, error) {
	if err := t.check(true); err != nil {
		return commands.AuditEntry{}, err
	}
	seq, hash, err := t.AuditHead()
	if err != nil {
		return commands.AuditEntry{}, err
	}
	e = commands.Seal(e, seq, hash)
	for what, s := range map[string]string{"action": string(e.Action), "state": string(e.From) + string(e.To)} {
		if err := checkText(what, s); err != nil {
			return commands.AuditEntry{}, err
		}
	}
	_, err = t.pg.Exec(t.ctx, t.q.appendAudit, int64(e.Seq), e.Time.Format(commands.TimeFormat), e.Time.Truncate(time.Microsecond),
		e.Actor, string(e.Action), e.Ticket, string(e.From), string(e.To), e.Detail, e.PrevHash, e.Hash, t.epoch, e.Via, e.Env, e.Version)
	if err != nil {
		return commands.AuditEntry{}, t.wrap(err, "append audit entry %d", e.Seq)
	}
	return e, nil
}

// AuditHead returns the last entry's seq and hash, or 0 and GenesisHash.
func (t *tx) AuditHead() (uint64, string, error) {
	if err := t.check(false); err != nil {
		return 0, "", err
	}
	var (
		seq  int64
		hash string
	)
	err := t.pg.QueryRow(t.ctx, t.q.auditHead).Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, commands.GenesisHash, nil
	}
	if err != nil {
		return 0, "", t.wrap(err, "read the audit head")
	}
	return uint64(seq), hash, nil
}

// scanAudit reads one audit row of auditColumns.
func scanAudit(rows pgx.Rows) (commands.AuditEntry, error) {
	var (
		e                    commands.AuditEntry
		seq                  int64
		at, action, from, to string
	)
	if err := rows.Scan(&seq, &at, &e.Actor, &action, &e.Ticket, &from, &to, &e.Detail, &e.PrevHash, &e.Hash, &e.Via, &e.Env, &e.Version); err != nil {
		return e, fmt.Errorf("postgres: read an audit entry: %w", err)
	}
	tm, err := time.Parse(commands.TimeFormat, at)
	if err != nil {
		return e, fmt.Errorf("postgres: audit entry %d has a bad time %q: %w", seq, at, err)
	}
	e.Seq, e.Time = uint64(seq), tm
	e.Action, e.From, e.To = commands.Action(action), commands.State(from), commands.State(to)
	return e, nil
}

// Event returns the inbox record of an event ID and whether there is one.
func (t *tx) Event(id string) (commands.InboxEvent, bool, error) {
	if err := t.check(false); err != nil {
		return commands.InboxEvent{}, false, err
	}
	if checkText("event ID", id) != nil {
		return commands.InboxEvent{}, false, nil
	}
	var e commands.InboxEvent
	ok, err := t.one(t.q.event, &e, "inbox event "+id, id)
	if err != nil || !ok {
		return commands.InboxEvent{}, false, err
	}
	return e, true, nil
}

// PutEvent adds or replaces an inbox record.
func (t *tx) PutEvent(e commands.InboxEvent) error {
	if err := t.check(true); err != nil {
		return err
	}
	if e.ID == "" {
		return commands.Errorf(commands.EINVALID, "An inbox event needs an ID.")
	}
	if err := checkText("event ID", e.ID); err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("postgres: encode inbox event %q: %w", e.ID, err)
	}
	s, n := e.Received.Unix(), e.Received.Nanosecond()
	if _, err := t.pg.Exec(t.ctx, t.q.putEvent, e.ID, s, n, e.Processed, data); err != nil {
		return t.wrap(err, "put inbox event %q", e.ID)
	}
	return nil
}

// PendingEvents returns the unprocessed inbox records, oldest first.
func (t *tx) PendingEvents() ([]commands.InboxEvent, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	return all[commands.InboxEvent](t, t.q.pendingEvents, "pending inbox events")
}

// PruneEvents deletes the processed records received before before, reading
// only those, and returns how many it deleted.
func (t *tx) PruneEvents(before time.Time) (int, error) {
	if err := t.check(true); err != nil {
		return 0, err
	}
	tag, err := t.pg.Exec(t.ctx, t.q.pruneEvents, before.Unix(), before.Nanosecond())
	if err != nil {
		return 0, t.wrap(err, "prune inbox events")
	}
	return int(tag.RowsAffected()), nil
}

// Emit appends e to the outbox under the next outbox ID, with the epoch of
// the transaction.
func (t *tx) Emit(e commands.Effect) (commands.Effect, error) {
	if err := t.check(true); err != nil {
		return commands.Effect{}, err
	}
	var id int64
	if err := t.pg.QueryRow(t.ctx, t.q.nextEffect).Scan(&id); err != nil {
		return commands.Effect{}, t.wrap(err, "next outbox ID")
	}
	e.ID = uint64(id)
	data, err := json.Marshal(e)
	if err != nil {
		return commands.Effect{}, fmt.Errorf("postgres: encode effect %d: %w", id, err)
	}
	if _, err := t.pg.Exec(t.ctx, t.q.emit, id, t.epoch, data); err != nil {
		return commands.Effect{}, t.wrap(err, "put effect %d", id)
	}
	return e, nil
}
