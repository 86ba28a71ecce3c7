package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
)

var _ commands.Store = (*DB)(nil)

// SchemaVersion is the version of the bucket layout this package writes. A
// file with a lower version is migrated when opened read-write; a file with a
// higher one is refused.
const SchemaVersion = 5

// migrations[i] upgrades a file from schema version i+1 to i+2, inside the
// transaction that then records the new version. Append, never edit.
var migrations = []func(*bolt.Tx) error{
	// 1 → 2: the index of processed inbox events by time is gone. It was
	// read only by the prune at start-up, and keeping it cost two or three
	// page writes in every command's commit; the prune now walks the inbox.
	func(tx *bolt.Tx) error {
		if tx.Bucket(bucketProcessedV1) == nil {
			return nil
		}
		return tx.DeleteBucket(bucketProcessedV1)
	},
	// 2 → 3: environments (issue 14). The deployed bucket, what is where,
	// is new and starts empty: it is written when a release is marked done
	// from now on. A freeze's key gains its environment after the release
	// ID 0, which is nothing for every freeze written before (they hold
	// every environment, Env ""), so their keys stay as they are; a
	// release's lock and the tickets index keep their keys (see
	// docs/architecture.md, "Storage"). Releases and locks without an env
	// read as DefaultEnv: nothing is rewritten.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketDeployed)
		return err
	},
	// 3 → 4: the scheduler's due times (issue 16): two new, empty buckets.
	migrateDue,
	// 4 → 5: an event's effects are stored with it (issue 13; outbox.go).
	migrateEffectsWithEvents,
}

// DefaultTimeout is how long Open waits for another process to release the
// file when Options.Timeout is zero.
const DefaultTimeout = time.Second

// initialMmapSize is mapped from the start so that a long read transaction
// (audit export, backup) does not block a writer that grows the file: bbolt
// remaps only when the file outgrows the map, and a remap waits for readers.
const initialMmapSize = 64 << 20

// maxCheckErrors bounds how many integrity problems Check reports in full.
const maxCheckErrors = 10

// ErrLocked is wrapped by the error Open returns when another process holds
// the database file.
var ErrLocked = errors.New("is another dobrobot running?")

// Bucket names.
var (
	bucketMeta       = []byte("meta")
	bucketReleases   = []byte("releases")
	bucketOpen       = []byte("open")
	bucketTickets    = []byte("tickets")
	bucketLocks      = []byte("locks")
	bucketAudit      = []byte("audit")
	bucketInbox      = []byte("inbox")
	bucketPending    = []byte("inbox_pending")
	bucketOutbox     = []byte("outbox")
	bucketDeployed   = []byte("deployed")
	keySchemaVersion = []byte("schema")

	// bucketProcessedV1 is schema 1's index of processed inbox events,
	// deleted by the migration to schema 2.
	bucketProcessedV1 = []byte("inbox_processed")
)

var allBuckets = [][]byte{
	bucketMeta, bucketReleases, bucketOpen, bucketTickets, bucketLocks,
	bucketAudit, bucketInbox, bucketPending, bucketOutbox, bucketDeployed,
	bucketDue, bucketDueIndex,
}

// Options tunes Open. The zero value is what dobrobot run uses.
type Options struct {
	// Timeout is how long to wait for the file lock another process holds;
	// zero means DefaultTimeout (1 s).
	Timeout time.Duration
	// ReadOnly opens the file without writing to it, sharing the lock with
	// other read-only openers. Update then fails.
	ReadOnly bool

	// maxSize caps the file's size, so tests can make a commit fail.
	maxSize int
}

// DB is dobrobot's bbolt database. It implements commands.Store and is safe
// for concurrent use.
type DB struct {
	bolt     *bolt.DB
	path     string
	readOnly bool
	wlock    writeLock
	releases decodeCache[uint64, commands.Release]
	effects  decodeCache[uint64, commands.Effect]
	// events caches inbox records: each command reads its own three times
	// (whether it was handled already, before and inside its transaction,
	// and to rewrite it), and decoding its JSON was 4% of the bot's CPU.
	events    decodeCache[string, commands.InboxEvent]
	pending   effectIndex
	openHint  atomic.Int64 // how many releases Open last returned, to size the next
	commits   atomic.Uint64
	closeOnce sync.Once
	closeErr  error
}

// Open opens the database at path, creating it (mode 0600) if it does not
// exist. Of opts, the last one given is used. It waits at most opts.Timeout
// for another process to release the file, and refuses — without writing to
// it — a file that is not a bbolt database, a bbolt file that is not
// dobrobot's, a truncated file, or one written by a newer dobrobot. It reads
// only the pages it needs: call Check before trusting a file it did not just
// create.
func Open(path string, opts ...Options) (*DB, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[len(opts)-1]
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if path == "" {
		return nil, errors.New("storage: no database path given: set storage.path")
	}
	if !o.ReadOnly {
		// bbolt's read-write start-up reads the freelist page, which a
		// damaged or truncated file may not have: look at an existing file
		// read-only first, which reads only the meta pages before our checks.
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			probe, err := open(path, Options{Timeout: o.Timeout, ReadOnly: true}, true)
			if err != nil {
				return nil, err
			}
			if err := probe.Close(); err != nil {
				return nil, err
			}
		}
	}
	return open(path, o, false)
}

// open opens path with o. A probe only checks the file: it accepts a file
// that a read-write open would create or upgrade.
func open(path string, o Options, probe bool) (db *DB, err error) {
	// A damaged file can make bbolt read past the end of its memory map;
	// turn that fault into an error instead of a crash, and close the file
	// so its lock goes with it.
	var (
		file *os.File
		bdb  *bolt.DB
	)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if bdb != nil {
				_ = bdb.Close()
			} else if file != nil {
				_ = file.Close()
			}
			db, err = nil, fmt.Errorf("database %s is damaged (%v): restore it from a backup; the file was left as it is", path, r)
		}
	}()

	bdb, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         o.Timeout,
		ReadOnly:        o.ReadOnly,
		InitialMmapSize: initialMmapSize,
		MaxSize:         o.maxSize,
		// Durability: every commit is fsynced, and so is every file growth.
		NoSync:     false,
		NoGrowSync: false,
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, mode)
			file = f
			return f, err
		},
	})
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, fmt.Errorf("database %s is locked: %w (waited %s)", path, ErrLocked, o.Timeout)
	case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrVersionMismatch), errors.Is(err, bolt.ErrChecksum),
		err != nil && strings.Contains(err.Error(), "file size too small"):
		return nil, fmt.Errorf("database %s is not a bbolt database or its header is damaged (%w): check storage.path, or restore the file from a backup; it was left as it is", path, err)
	case err != nil:
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}

	db = &DB{bolt: bdb, path: path, readOnly: o.ReadOnly,
		releases: decodeCache[uint64, commands.Release]{clone: cloneRelease},
		effects:  decodeCache[uint64, commands.Effect]{clone: shareEffect},
		events:   decodeCache[string, commands.InboxEvent]{clone: sameEvent, max: eventCacheMax}}
	if err := db.prepare(probe); err != nil {
		_ = bdb.Close()
		bdb = nil
		return nil, err
	}
	return db, nil
}

// prepare checks that the file is a whole dobrobot database of a schema this
// code understands, creating the buckets in a new file and migrating an older
// one. It writes nothing to a file it refuses. A probe stops after the checks.
func (db *DB) prepare(probe bool) error {
	var (
		version uint64
		fresh   bool
	)
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if err := db.checkSize(tx); err != nil {
			return err
		}
		var names []string
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, strconv.Quote(string(name)))
			return nil
		}); err != nil {
			return fmt.Errorf("database %s: list buckets: %w", db.path, err)
		}
		if len(names) == 0 {
			fresh = true
			return nil
		}
		meta := tx.Bucket(bucketMeta)
		var raw []byte
		if meta != nil {
			raw = meta.Get(keySchemaVersion)
		}
		if raw == nil {
			return fmt.Errorf("database %s is a bbolt file but not dobrobot's (it holds the buckets %s and no schema version): check storage.path; the file was left as it is",
				db.path, strings.Join(names, ", "))
		}
		v, err := strconv.ParseUint(string(raw), 10, 64)
		if err != nil || v == 0 {
			return fmt.Errorf("database %s has an unreadable schema version %q: restore it from a backup; the file was left as it is", db.path, raw)
		}
		version = v
		return nil
	})
	if err != nil {
		return err
	}

	switch {
	case version > SchemaVersion:
		return fmt.Errorf("database %s has schema version %d, newer than this dobrobot understands (%d): run a newer dobrobot, or restore a backup; the file was left as it is",
			db.path, version, SchemaVersion)
	case probe:
		return nil
	case fresh && db.readOnly:
		return fmt.Errorf("database %s holds no dobrobot data yet: run dobrobot on it once to create it", db.path)
	case !fresh && version < SchemaVersion && db.readOnly:
		return fmt.Errorf("database %s has schema version %d and needs an upgrade to %d: open it once read-write (dobrobot run) first", db.path, version, SchemaVersion)
	case fresh || version < SchemaVersion:
		if err := db.bolt.Update(func(tx *bolt.Tx) error { return migrate(tx, version) }); err != nil {
			return fmt.Errorf("database %s: upgrade schema from version %d to %d: %w", db.path, version, SchemaVersion, err)
		}
	}

	return db.bolt.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("database %s is damaged: its %q bucket is missing: restore it from a backup", db.path, name)
			}
		}
		return nil
	})
}

// migrate brings tx from schema version from (0 for a new file) to
// SchemaVersion.
func migrate(tx *bolt.Tx, from uint64) error {
	if from == 0 {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %q: %w", name, err)
			}
		}
	} else {
		for v := from; v < SchemaVersion; v++ {
			if err := migrations[v-1](tx); err != nil {
				return fmt.Errorf("migrate to version %d: %w", v+1, err)
			}
		}
	}
	return tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte(strconv.Itoa(SchemaVersion)))
}

// checkSize refuses a file shorter than its own meta page says it is: bbolt
// would fault reading the missing pages.
func (db *DB) checkSize(tx *bolt.Tx) error {
	fi, err := os.Stat(db.path)
	if err != nil {
		return fmt.Errorf("database %s: %w", db.path, err)
	}
	if fi.Size() < tx.Size() {
		return fmt.Errorf("database %s is truncated (%d bytes, its header says %d): restore it from a backup; the file was left as it is",
			db.path, fi.Size(), tx.Size())
	}
	return nil
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Close closes the database, waiting for running transactions to end. Closing
// twice is harmless.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		if err := db.bolt.Close(); err != nil {
			db.closeErr = fmt.Errorf("close database %s: %w", db.path, err)
		}
	})
	return db.closeErr
}

// Update runs fn in one read-write transaction; see commands.Store. It returns
// ctx's error without running fn when ctx has ended, and without committing
// when ctx ends while fn runs. fn's error is returned as is; a commit that
// fails (disk full, I/O error) returns an EUNAVAILABLE *commands.Error saying
// the change was not recorded. If fn panics, the transaction is rolled back
// and the panic goes on.
func (db *DB) Update(ctx context.Context, fn func(commands.Tx) error) error {
	return db.update(ctx, fn, false)
}

// UpdateFirst is Update for a short transaction that others wait for: it
// goes before the Update calls waiting for the write lock (not before the
// one that holds it). Service.Receive uses it for the inbox records that
// every acknowledgement to Slack waits for, so that a burst of commands
// queued for the lock does not hold up the acks.
func (db *DB) UpdateFirst(ctx context.Context, fn func(commands.Tx) error) error {
	return db.update(ctx, fn, true)
}

func (db *DB) update(ctx context.Context, fn func(commands.Tx) error, first bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := db.wlock.lock(ctx, first); err != nil {
		return err
	}
	defer db.wlock.unlock()
	btx, err := db.bolt.Begin(true)
	if err != nil {
		return unavailable("could not start a database transaction", err)
	}
	defer func() { _ = btx.Rollback() }() // a no-op after Commit; covers panics
	t := &tx{btx: btx, rc: &db.releases, ec: &db.events, openHint: &db.openHint}
	err = fn(t)
	if err == nil {
		err = t.finish()
	}
	t.done = true
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := db.commit(t); err != nil {
		return unavailable("could not record the change", err)
	}
	if db.commits.Add(1)%trimEvery == 0 {
		go db.trim()
	}
	return nil
}

// trimEvery is how many commits go between two trims.
const trimEvery = 1024

// trim gives back the pages of the file that the process has read through
// bbolt's memory map (see dropMapped): without it a long-running bot's RSS
// grows with the pages it ever read — the inbox of the last days, old
// releases looked up once — though they are the kernel's page cache, not
// its memory. What it reads again is mapped again, from the page cache.
func (db *DB) trim() {
	_ = db.bolt.View(func(btx *bolt.Tx) error {
		db.dropMapped(btx.Size())
		return nil
	})
}

// View runs fn in one read-only transaction: a consistent snapshot that does
// not block writers. Writing in fn fails.
func (db *DB) View(ctx context.Context, fn func(commands.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	btx, err := db.bolt.Begin(false)
	if err != nil {
		return unavailable("could not read the database", err)
	}
	defer func() { _ = btx.Rollback() }()
	t := &tx{btx: btx, rc: &db.releases, ec: &db.events, openHint: &db.openHint}
	err = fn(t)
	t.done = true
	return err
}

func unavailable(what string, err error) error {
	return commands.Errorf(commands.EUNAVAILABLE, "%s: %v", what, err)
}

// dropEvery is how many bytes of the audit log Audit reads between two
// dropMapped calls.
const dropEvery = 2 << 20

// Audit calls fn for each audit entry matching f, in seq order, from one read
// snapshot, decoding one entry at a time. fn's error stops the walk and is
// returned as is, as is ctx's when it ends. fn must not use the DB.
func (db *DB) Audit(ctx context.Context, f commands.AuditFilter, fn func(commands.AuditEntry) error) error {
	return db.View(ctx, func(t commands.Tx) error {
		b, err := t.(*tx).bucket(bucketAudit)
		if err != nil {
			return err
		}
		c := b.Cursor()
		n, read := 0, 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%64 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			// Stream in bounded memory: the pages read so far need not stay
			// resident.
			if read += len(k) + len(v); read >= dropEvery {
				db.dropMapped(t.(*tx).btx.Size())
				read = 0
			}
			if outsideFilter(f, v) {
				continue
			}
			var e commands.AuditEntry
			if err := decodeAudit(v, &e); err != nil {
				return fmt.Errorf("storage: decode audit entry %d: %w", decodeID(k), err)
			}
			if !f.Match(e) {
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
}

// Backup writes a consistent copy of the whole database to w while writers go
// on, and returns the number of bytes written. The copy is a bbolt file that
// Open accepts. It stops with ctx's error when ctx ends.
func (db *DB) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int64
	err := db.bolt.View(func(btx *bolt.Tx) error {
		var err error
		n, err = btx.WriteTo(ctxWriter{ctx: ctx, w: w})
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		return n, fmt.Errorf("back up database %s: %w", db.path, err)
	}
	return n, nil
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (cw ctxWriter) Write(p []byte) (int, error) {
	if err := cw.ctx.Err(); err != nil {
		return 0, err
	}
	return cw.w.Write(p)
}

// historyBuckets grow with the years of use; QuickCheck leaves their pages
// to Check.
var historyBuckets = [][]byte{bucketReleases, bucketTickets, bucketAudit}

// QuickCheck is the integrity check of a start-up, whose cost grows with the
// open work and not with history: it checks the file's size against its
// header and runs bbolt's page check (pages reachable once, keys in order)
// on every bucket but the three that keep history (releases, tickets,
// audit) — the queue, the locks, the inbox of the last days, the outbox.
// The newest audit entries are VerifyRecent's; the history's pages are
// Check's, which backup runs on its copy and audit verify on the file. Run
// it before writers start: it reads without the write lock.
func (db *DB) QuickCheck() error {
	btx, err := db.bolt.Begin(false)
	if err != nil {
		return fmt.Errorf("check database %s: %w", db.path, err)
	}
	defer func() { _ = btx.Rollback() }()
	if err := db.checkSize(btx); err != nil {
		return err
	}
	var (
		errs  []error
		count int
	)
	for _, name := range allBuckets {
		if slices.ContainsFunc(historyBuckets, func(h []byte) bool { return bytes.Equal(h, name) }) {
			continue
		}
		b := btx.Bucket(name)
		if b == nil {
			return fmt.Errorf("database %s is damaged: its %q bucket is missing: restore it from a backup", db.path, name)
		}
		root := b.Root()
		if root == 0 {
			continue // an inline bucket: its keys live in the root page, which bbolt read to find it
		}
		for err := range btx.Check(bolt.WithPageId(uint64(root))) {
			if count++; count <= maxCheckErrors {
				errs = append(errs, fmt.Errorf("bucket %q: %w", name, err))
			}
		}
	}
	return checkFailed(db.path, errs, count)
}

func checkFailed(path string, errs []error, count int) error {
	if count == 0 {
		return nil
	}
	problems := "1 problem"
	if count > 1 {
		problems = fmt.Sprintf("%d problems", count)
	}
	return fmt.Errorf("database %s failed its integrity check (%s); restore it from a backup: %w",
		path, problems, errors.Join(errs...))
}

// Check runs bbolt's consistency check over the whole file (every page
// reachable or free exactly once, keys in order, …) and returns an error
// naming the problems it found. It holds the write lock while it runs, so it
// suits start-up and maintenance rather than a busy bot.
func (db *DB) Check() error {
	btx, err := db.bolt.Begin(!db.readOnly)
	if err != nil {
		return fmt.Errorf("check database %s: %w", db.path, err)
	}
	defer func() { _ = btx.Rollback() }()
	if err := db.checkSize(btx); err != nil {
		return err
	}
	var (
		errs  []error
		count int
	)
	for err := range btx.Check() {
		if count++; count <= maxCheckErrors {
			errs = append(errs, err)
		}
	}
	return checkFailed(db.path, errs, count)
}
