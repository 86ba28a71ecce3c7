package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dobrobot/dobrobot/commands"
)

var _ commands.Store = (*DB)(nil)

// SchemaVersion is the version of the table layout this package writes. A
// schema with a lower version is migrated by Open; a higher one is refused.
const SchemaVersion = 5

// DefaultSchema is the schema that holds the tables when Options.Schema is empty.
const DefaultSchema = "dobrobot"

// DefaultIdleInTransaction is Options.IdleInTransaction's default.
const DefaultIdleInTransaction = 5 * time.Second

// minLockWait is the least time a write waits for the writer lock before it
// queues again.
const minLockWait = 50 * time.Millisecond

// commitTimeout bounds a COMMIT, which runs even when the caller's context
// has ended meanwhile (a commit cut short leaves its outcome unknown).
const commitTimeout = 30 * time.Second

// ErrFenced is wrapped by the error an Update returns when the store's Fence
// says this process does not hold the current leadership term.
var ErrFenced = errors.New("postgres: fenced")

// ErrNoSchema is wrapped by the error of a read-only Open of a schema that
// does not exist yet.
var ErrNoSchema = errors.New("holds no dobrobot data yet")

// Options tunes Open.
type Options struct {
	// Schema holds dobrobot's tables; empty means DefaultSchema. Open
	// creates it if it does not exist. Several dobrobots may share a
	// database with a schema each.
	Schema string
	// Fence, if set, is asked for the leadership term this process holds
	// (its epoch) and whether it still holds it. Update refuses with
	// ErrFenced unless it holds the term that is current in the database.
	// dobrobot run passes Leader.Epoch; tools that only read leave it nil.
	Fence func() (epoch int64, ok bool)
	// MaxConns bounds the connection pool (default 8).
	MaxConns int32
	// ReadOnly opens an existing schema of the current version without
	// creating or migrating anything; Update then fails. The audit commands
	// use it.
	ReadOnly bool
	// IdleInTransaction is how long the server keeps a transaction open
	// while its client says nothing (idle_in_transaction_session_timeout);
	// zero means DefaultIdleInTransaction. It bounds how long a frozen
	// leader can keep a new one waiting. A write waits for the writer lock
	// at most a fifth of it at a time (lock_timeout), then queues again:
	// see Update.
	IdleInTransaction time.Duration
}

// DB is dobrobot's PostgreSQL store. It implements commands.Store and is safe
// for concurrent use.
type DB struct {
	pool     *pgxpool.Pool
	schema   string
	fence    func() (int64, bool)
	readOnly bool
	q        queries
	// lockWait is the lock_timeout, in PostgreSQL's notation, of one wait
	// for the writer lock.
	lockWait string
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string), creates or migrates the schema, and returns the store.
// It refuses a schema written by a newer dobrobot and a server older than
// PostgreSQL 14.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("postgres: no DSN given: set storage.dsn (for example ${DOBROBOT_PG_DSN})")
	}
	schema := opts.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("postgres: schema %q is not a plain lower-case name (letters, digits, _)", schema)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: the DSN does not parse (%s): see docs/operations.md", redact(err))
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 8
	}
	idle := opts.IdleInTransaction
	if idle <= 0 {
		idle = DefaultIdleInTransaction
	}
	params := cfg.ConnConfig.RuntimeParams
	if params["application_name"] == "" {
		params["application_name"] = "dobrobot"
	}
	params["idle_in_transaction_session_timeout"] = strconv.FormatInt(idle.Milliseconds(), 10)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s", redact(err))
	}
	db := &DB{pool: pool, schema: schema, fence: opts.Fence, readOnly: opts.ReadOnly, q: newQueries(schema),
		lockWait: strconv.FormatInt(max(idle/5, minLockWait).Milliseconds(), 10) + "ms"}
	if err := db.prepare(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// redact returns err's text without the password a connection error may
// quote from the DSN.
func redact(err error) string {
	return passwordInURL.ReplaceAllString(passwordKV.ReplaceAllString(err.Error(), "password=xxxxx"), "$1:xxxxx@")
}

var (
	passwordKV    = regexp.MustCompile(`password=\S+`)
	passwordInURL = regexp.MustCompile(`(postgres(?:ql)?://[^:/@\s]+):[^@\s]+@`)
)

// prepare checks the server and brings the schema to SchemaVersion.
func (db *DB) prepare(ctx context.Context) error {
	var version int
	if err := db.pool.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		return fmt.Errorf("postgres: cannot reach the database: %s", redact(err))
	}
	if version < 140000 {
		return fmt.Errorf("postgres: the server is version %d.%d; dobrobot needs PostgreSQL 14 or newer (idle_session_timeout)", version/10000, version%10000)
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: start the schema check: %s", redact(err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// Instances that start together migrate one after the other.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("migrate", db.schema)); err != nil {
		return fmt.Errorf("postgres: lock the schema for migration: %w", err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, db.schema+".meta").Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look for schema %s: %w", db.schema, err)
	}
	from := 0
	if exists {
		var v string
		err := tx.QueryRow(ctx, db.q.schemaVersion).Scan(&v)
		if err == nil {
			from, err = strconv.Atoi(v)
		}
		if err != nil {
			return fmt.Errorf("postgres: schema %s has a meta table but no readable version (%v): it is not dobrobot's, or it is damaged", db.schema, err)
		}
	}
	switch {
	case from > SchemaVersion:
		return fmt.Errorf("postgres: schema %s has version %d, newer than this dobrobot knows (%d): run the newer dobrobot", db.schema, from, SchemaVersion)
	case from == SchemaVersion:
		return tx.Rollback(ctx)
	case db.readOnly && from == 0:
		return fmt.Errorf("postgres: schema %s %w (check storage.schema; dobrobot run creates it)", db.schema, ErrNoSchema)
	case db.readOnly:
		return fmt.Errorf("postgres: schema %s has version %d and needs an upgrade to %d: run dobrobot run once first", db.schema, from, SchemaVersion)
	}
	if from == 0 {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+db.q.schema); err != nil {
			return fmt.Errorf("postgres: create schema %s (the role needs CREATE on the database): %w", db.schema, err)
		}
	}
	for v := from; v < SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, db.q.expand(migrations[v])); err != nil {
			return fmt.Errorf("postgres: migrate schema %s to version %d: %w", db.schema, v+1, err)
		}
	}
	if _, err := tx.Exec(ctx, db.q.setVersion, strconv.Itoa(SchemaVersion)); err != nil {
		return fmt.Errorf("postgres: record schema version: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit the schema of %s: %w", db.schema, err)
	}
	return nil
}

// lockKey is the advisory lock key of purpose in schema: the same in every
// process, different for every schema.
func lockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("dobrobot\x00" + purpose + "\x00" + schema))
	return int64(h.Sum64())
}

// Schema returns the name of the schema that holds the tables.
func (db *DB) Schema() string { return db.schema }

// Close closes the connection pool, waiting for connections in use.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// fenced returns the refusal of a transaction outside this process's term.
func fenced(mine, current int64) error {
	var msg string
	if mine == current {
		msg = fmt.Sprintf("This dobrobot may have lost its leadership (term %d): nothing was changed; the leader handles it.", mine)
	} else {
		msg = fmt.Sprintf("This dobrobot no longer leads (its term %d, the current one %d): nothing was changed; the leader handles it.", mine, current)
	}
	return fmt.Errorf("%w: %w", ErrFenced, commands.Errorf(commands.EUNAVAILABLE, "%s", msg))
}

// UpdateFirst is Update: PostgreSQL's writers do not queue behind one lock
// of this process, so there is nothing for the inbox's commits to go before.
func (db *DB) UpdateFirst(ctx context.Context, fn func(commands.Tx) error) error {
	return db.Update(ctx, fn)
}

// Update runs fn in one read-write transaction; see commands.Store. It takes
// the writer lock and checks the fence first, returns ctx's error without
// committing when ctx ends while fn runs, returns fn's error as is, and
// reports a failed commit as EUNAVAILABLE (or EINTERNAL when a statement of
// fn failed and PostgreSQL rolled the transaction back). If fn panics the
// transaction is rolled back and the panic goes on.
func (db *DB) Update(ctx context.Context, fn func(commands.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.readOnly {
		return errors.New("postgres: the store was opened read-only: writes belong to dobrobot run")
	}
	var mine int64
	if db.fence != nil {
		var ok bool
		if mine, ok = db.fence(); !ok {
			return fenced(mine, mine)
		}
	}
	ptx, epoch, err := db.lockWriter(ctx, mine)
	if err != nil {
		return err
	}
	defer rollback(ptx)
	if db.fence != nil && epoch != mine {
		return fenced(mine, epoch)
	}
	t := &tx{ctx: ctx, pg: ptx, q: &db.q, epoch: epoch}
	err = fn(t)
	t.done = true
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.fence != nil {
		if _, ok := db.fence(); !ok {
			return fenced(mine, mine)
		}
	}
	return commit(ctx, ptx)
}

// commit commits ptx, even when ctx has ended meanwhile (the change was
// decided; only the commit's own timeout bounds it), for Update and HandIn.
func commit(ctx context.Context, ptx pgx.Tx) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := ptx.Commit(cctx); err != nil {
		if errors.Is(err, pgx.ErrTxCommitRollback) {
			return fmt.Errorf("postgres: a statement of the transaction failed, so PostgreSQL rolled it back: %w",
				commands.Errorf(commands.EINTERNAL, "Could not record the change: nothing was changed."))
		}
		return commands.Errorf(commands.EUNAVAILABLE, "could not record the change: %s", redact(err))
	}
	return nil
}

// lockWriter begins Update's transaction and takes the writer lock (the
// leader row), returning the transaction and the epoch the row holds.
//
// Each wait for the row is bounded by lock_timeout (db.lockWait, set for
// that statement only, in the same round trip); a write that times out
// rolls back, checks the fence again and queues anew, until ctx ends or
// this process no longer leads.
// This is what bounds a takeover after a freeze: a frozen leader's writes
// that wait on the row are active, not idle, so
// idle_in_transaction_session_timeout would end each only after it got the
// row, one after the other, with the new leader's epoch increment (which
// waits without a bound) last in line. With the bound they leave the queue
// within lockWait and, frozen, do not come back; only the transaction that
// held the row when the process froze remains, ended by
// idle_in_transaction_session_timeout.
//
// Giving up a wait writes nothing, and every retry is fenced as the first
// attempt was, so the bound weakens no fencing rule: a deposed leader's
// retry is refused before it begins (its lease has run out) or, under the
// row lock, by the new epoch.
func (db *DB) lockWriter(ctx context.Context, mine int64) (pgx.Tx, int64, error) {
	for {
		ptx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		if err != nil {
			return nil, 0, unavailable(ctx, "could not start a database transaction", err)
		}
		var epoch int64
		b := &pgx.Batch{}
		b.Queue(`SELECT set_config('lock_timeout', $1, true)`, db.lockWait)
		b.Queue(db.q.lockLeader).QueryRow(func(row pgx.Row) error { return row.Scan(&epoch) })
		b.Queue(`SET LOCAL lock_timeout TO DEFAULT`) // fn's statements wait as configured
		err = ptx.SendBatch(ctx, b).Close()
		if err == nil {
			return ptx, epoch, nil
		}
		rollback(ptx)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != lockNotAvailable {
			return nil, 0, unavailable(ctx, "could not start a database transaction", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		if db.fence != nil {
			if _, ok := db.fence(); !ok {
				return nil, 0, fenced(mine, mine)
			}
		}
	}
}

// lockNotAvailable is the SQLSTATE of a lock wait that ran into lock_timeout.
const lockNotAvailable = "55P03"

// View runs fn in one read-only transaction: a consistent snapshot that does
// not block writers. Writing in fn fails.
func (db *DB) View(ctx context.Context, fn func(commands.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ptx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return unavailable(ctx, "could not read the database", err)
	}
	defer rollback(ptx)
	t := &tx{ctx: ctx, pg: ptx, q: &db.q, readOnly: true}
	err = fn(t)
	t.done = true
	return err
}

func rollback(ptx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ptx.Rollback(ctx) // after Commit: ErrTxClosed, harmless
}

// unavailable is the error of a database that cannot be used now; ctx's
// error when ctx has ended.
func unavailable(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return commands.Errorf(commands.EUNAVAILABLE, "%s: %s", what, redact(err))
}

// Pending returns up to max outbox effects, oldest first; max <= 0 returns
// them all.
func (db *DB) Pending(ctx context.Context, max int) ([]commands.Effect, error) {
	return db.pending(ctx, db.q.pending, limit(max))
}

// PendingAfter is Pending for the effects whose ID is greater than after;
// see commands.Store.
func (db *DB) PendingAfter(ctx context.Context, after uint64, max int) ([]commands.Effect, error) {
	return db.pending(ctx, db.q.pendingAfter, int64(after), limit(max))
}

// pending reads the outbox with query q and its arguments.
func (db *DB) pending(ctx context.Context, q string, args ...any) ([]commands.Effect, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, unavailable(ctx, "could not read the outbox", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (commands.Effect, error) {
		var (
			id   int64
			data []byte
			e    commands.Effect
		)
		if err := row.Scan(&id, &data); err != nil {
			return e, err
		}
		if err := json.Unmarshal(data, &e); err != nil {
			return e, fmt.Errorf("postgres: decode outbox effect %d: %w", id, err)
		}
		return e, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("postgres: read the outbox: %w", err)
	}
	return out, nil
}

// Delivered removes effects from the outbox; unknown IDs are ignored. It is
// an Update, so a fenced process cannot mark anything delivered.
func (db *DB) Delivered(ctx context.Context, ids ...uint64) error {
	if len(ids) == 0 {
		return ctx.Err()
	}
	keys := make([]int64, 0, len(ids))
	for _, id := range ids {
		if id <= maxID {
			keys = append(keys, int64(id))
		}
	}
	return db.Update(ctx, func(t commands.Tx) error {
		if _, err := t.(*tx).pg.Exec(ctx, db.q.delivered, keys); err != nil {
			return fmt.Errorf("postgres: delete delivered effects: %w", err)
		}
		return nil
	})
}

// Audit calls fn for each audit entry matching f, in seq order, from one read
// snapshot, reading the entries as a stream. fn's error stops the walk and is
// returned as is, as is ctx's when it ends. fn must not use the DB.
func (db *DB) Audit(ctx context.Context, f commands.AuditFilter, fn func(commands.AuditEntry) error) error {
	return db.View(ctx, func(ct commands.Tx) error {
		t := ct.(*tx)
		// The SQL filter is a superset (its times are truncated to
		// microseconds); AuditFilter.Match decides.
		var since, until, ticket any
		if !f.Since.IsZero() {
			since = f.Since.Truncate(time.Microsecond)
		}
		if !f.Until.IsZero() {
			until = f.Until
		}
		if f.Ticket != "" {
			ticket = f.Ticket
		}
		rows, err := t.pg.Query(ctx, db.q.audit, since, until, ticket)
		if err != nil {
			return unavailable(ctx, "could not read the audit log", err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			if n++; n%64 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			e, err := scanAudit(rows)
			if err != nil {
				return err
			}
			if !f.Match(e) {
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("postgres: read the audit log: %w", err)
		}
		return ctx.Err()
	})
}

// Term is a leadership term as the database records it.
type Term struct {
	Epoch  int64     // 0: nobody has led yet
	Holder string    // the leader's ID (host:pid)
	Since  time.Time // when the term began
	// Held reports whether some session holds the leader lock now. A term
	// whose lock is not held has ended: its leader died or stopped, and a
	// standby is about to take over.
	Held bool
}

// Term returns the current leadership term and whether its lock is held.
func (db *DB) Term(ctx context.Context) (Term, error) {
	var t Term
	key := lockKey("leader", db.schema)
	err := db.pool.QueryRow(ctx, db.q.term, int64(uint64(key)>>32), int64(uint32(key))).Scan(&t.Epoch, &t.Holder, &t.Since, &t.Held)
	if err != nil {
		return Term{}, unavailable(ctx, "could not read the leadership term", err)
	}
	return t, nil
}

// maxID is the largest ID a bigint column holds.
const maxID = 1<<63 - 1

// limit is max as a LIMIT argument: NULL (no limit) for max <= 0.
func limit(max int) any {
	if max <= 0 {
		return nil
	}
	return int64(max)
}
