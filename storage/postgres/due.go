package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// migrateDue is the migration to schema 5: the scheduler's due times
// (issue 16), one row per (release, kind), found in time order through
// due_at. The time is kept as seconds and nanoseconds, as the inbox keeps
// its, so that the order is the same as bbolt's to the nanosecond.
const migrateDue = `
CREATE TABLE {s}.due (
	release bigint NOT NULL,
	kind    text COLLATE "C" NOT NULL,
	at_s    bigint NOT NULL,
	at_n    int NOT NULL,
	data    json NOT NULL,
	PRIMARY KEY (release, kind)
);
CREATE INDEX due_at ON {s}.due (at_s, at_n, kind, release);
`

// The scheduler's statements. They are expanded at each use rather than
// kept in queries: a replace of "{s}" costs nothing next to a round trip.
const (
	sqlPutDue = `INSERT INTO {s}.due (release, kind, at_s, at_n, data) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (release, kind) DO UPDATE SET at_s = excluded.at_s, at_n = excluded.at_n, data = excluded.data`
	sqlDeleteDue = `DELETE FROM {s}.due WHERE release = $1 AND kind = $2`
	sqlDueBefore = `SELECT data FROM {s}.due WHERE (at_s, at_n) <= ($1, $2) ORDER BY at_s, at_n, kind, release LIMIT $3`
	sqlNextDue   = `SELECT data FROM {s}.due ORDER BY at_s, at_n, kind, release LIMIT 1`
)

// PutDue adds or replaces the record of (d.Release, d.Kind).
func (t *tx) PutDue(d commands.Due) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := checkName("due kind", string(d.Kind)); err != nil {
		return err
	}
	if err := checkID("release", d.Release); err != nil {
		return err
	}
	d.At = d.At.UTC()
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("postgres: encode due %s of release %d: %w", d.Kind, d.Release, err)
	}
	if _, err := t.pg.Exec(t.ctx, t.q.expand(sqlPutDue), int64(d.Release), string(d.Kind), d.At.Unix(), d.At.Nanosecond(), data); err != nil {
		return t.wrap(err, "put due %s of release %d", d.Kind, d.Release)
	}
	return nil
}

// DeleteDue removes the record of (release, kind), if any.
func (t *tx) DeleteDue(release uint64, kind commands.DueKind) error {
	if err := t.check(true); err != nil {
		return err
	}
	if checkText("due kind", string(kind)) != nil || release > maxID {
		return nil // no such record can exist
	}
	if _, err := t.pg.Exec(t.ctx, t.q.expand(sqlDeleteDue), int64(release), string(kind)); err != nil {
		return t.wrap(err, "delete due %s of release %d", kind, release)
	}
	return nil
}

// DueBefore returns up to max records (max <= 0: all) with At <= before,
// oldest first.
func (t *tx) DueBefore(before time.Time, max int) ([]commands.Due, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	return all[commands.Due](t, t.q.expand(sqlDueBefore), "due times", before.Unix(), before.Nanosecond(), limit(max))
}

// NextDue returns the earliest record, if any.
func (t *tx) NextDue() (commands.Due, bool, error) {
	if err := t.check(false); err != nil {
		return commands.Due{}, false, err
	}
	var d commands.Due
	ok, err := t.one(t.q.expand(sqlNextDue), &d, "the next due time")
	return d, ok, err
}
