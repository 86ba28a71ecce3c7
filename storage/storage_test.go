package storage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
	"github.com/dobrobot/dobrobot/storage/bolttest"
	"github.com/dobrobot/dobrobot/storage/storagetest"
)

func TestContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) (commands.Store, func() commands.Store) {
		path := filepath.Join(t.TempDir(), "dobrobot.db")
		db := mustOpen(t, path)
		cur := db
		t.Cleanup(func() { _ = cur.Close() })
		return db, func() commands.Store {
			if err := cur.Close(); err != nil {
				t.Fatalf("close before reopen: %v", err)
			}
			cur = mustOpen(t, path)
			return cur
		}
	})
}

func mustOpen(t *testing.T, path string, opts ...storage.Options) *storage.DB {
	t.Helper()
	db, err := storage.Open(path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// seed writes n releases, each with an audit entry, one per transaction.
func seed(t *testing.T, db *storage.DB, n int) {
	t.Helper()
	for i := range n {
		err := db.Update(context.Background(), func(tx commands.Tx) error {
			ticket := fmt.Sprintf("PAY-%d", i+1)
			if _, err := tx.PutRelease(commands.Release{Ticket: ticket, State: commands.StateRequested, Requester: "U01ANN",
				Note: strings.Repeat("n", 200), Created: t0}); err != nil {
				return err
			}
			_, err := tx.AppendAudit(commands.AuditEntry{Time: t0.Add(time.Duration(i) * time.Second), Actor: "U01ANN",
				Action: commands.ActionRequest, Ticket: ticket, To: commands.StateRequested, Detail: fmt.Sprintf("event Ev%04d", i+1)})
			return err
		})
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
}

// chain reads the audit log and verifies it, returning the entries read and
// the verifier's verdict.
func chain(t *testing.T, db *storage.DB) ([]commands.AuditEntry, *commands.Verifier, error) {
	t.Helper()
	v := commands.NewVerifier()
	var got []commands.AuditEntry
	err := db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		got = append(got, e)
		return v.Add(e)
	})
	return got, v, err
}

func rawUpdate(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt open %s: %v", path, err)
	}
	if err := b.Update(fn); err != nil {
		t.Fatalf("bbolt update %s: %v", path, err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("bbolt close %s: %v", path, err)
	}
}

func TestNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	db := mustOpen(t, path)
	if got, want := db.Path(), path; got != want {
		t.Errorf("Path() = %q, want %q", got, want)
	}
	if err := db.Check(); err != nil {
		t.Errorf("Check() on a new file: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("new database file mode = %v, want %v", got, want)
	}

	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var buckets []string
	var schema string
	if err := b.View(func(tx *bolt.Tx) error {
		schema = string(tx.Bucket([]byte("meta")).Get([]byte("schema")))
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			buckets = append(buckets, string(name))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := schema, fmt.Sprint(storage.SchemaVersion); got != want {
		t.Errorf("meta/schema = %q, want %q", got, want)
	}
	want := []string{"audit", "deployed", "due", "due_index", "inbox", "inbox_pending", "locks", "meta", "open", "outbox", "releases", "tickets"}
	if diff := cmp.Diff(want, buckets); diff != "" {
		t.Errorf("buckets (-want +got):\n%s", diff)
	}
}

func TestDurabilitySettings(t *testing.T) {
	db := bolttest.Open(t)
	b := db.Bolt()
	if b.NoSync || b.NoGrowSync {
		t.Errorf("bbolt NoSync = %t, NoGrowSync = %t; both must be false so every commit reaches the disk", b.NoSync, b.NoGrowSync)
	}
	// Batch may run a function twice and merges transactions: never for a
	// transition. This guards the package's own code.
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(src, []byte(".Batch(")) {
			t.Errorf("%s calls bbolt's DB.Batch", f)
		}
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	first := mustOpen(t, path)
	defer first.Close()

	start := time.Now()
	second, err := storage.Open(path)
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatalf("a second Open of a held database succeeded")
	}
	want := fmt.Sprintf("database %s is locked: is another dobrobot running?", path)
	if !strings.Contains(err.Error(), want) || !errors.Is(err, storage.ErrLocked) {
		t.Errorf("second Open: %q; want it to say %q and wrap storage.ErrLocked", err, want)
	}
	if elapsed > 2*time.Second {
		t.Errorf("second Open gave up after %s, want within 2s", elapsed)
	}
	if _, err := storage.Open(path, storage.Options{ReadOnly: true, Timeout: 100 * time.Millisecond}); !errors.Is(err, storage.ErrLocked) {
		t.Errorf("read-only Open of a database held read-write: %v, want ErrLocked", err)
	}

	// The holder is unharmed, and once it closes the file opens at once.
	seed(t, first, 1)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	db := mustOpen(t, path, storage.Options{Timeout: 100 * time.Millisecond})
	if got, _, err := chain(t, db); err != nil || len(got) != 1 {
		t.Errorf("after the first closed: %d audit entries, %v; want 1", len(got), err)
	}
	db.Close()
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dobrobot.db")
	if _, err := storage.Open(path, storage.Options{ReadOnly: true}); err == nil {
		t.Errorf("read-only Open of a missing file succeeded")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only Open created %s", path)
	}

	empty := filepath.Join(dir, "empty.db")
	rawUpdate(t, empty, func(*bolt.Tx) error { return nil })
	if _, err := storage.Open(empty, storage.Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "holds no dobrobot data yet") {
		t.Errorf("read-only Open of an empty bbolt file: %v, want it to say it holds no dobrobot data yet", err)
	}

	db := mustOpen(t, path)
	seed(t, db, 3)
	db.Close()
	ro1 := mustOpen(t, path, storage.Options{ReadOnly: true})
	defer ro1.Close()
	ro2 := mustOpen(t, path, storage.Options{ReadOnly: true}) // readers share the file
	defer ro2.Close()
	if got, _, err := chain(t, ro2); err != nil || len(got) != 3 {
		t.Errorf("read-only Audit: %d entries, %v; want 3", len(got), err)
	}
	if err := ro1.Check(); err != nil {
		t.Errorf("read-only Check: %v", err)
	}
	err := ro1.Update(context.Background(), func(tx commands.Tx) error { return tx.PutLock(commands.Lock{Component: "backend"}) })
	if err == nil {
		t.Errorf("Update on a read-only database succeeded")
	}
}

// TestOpenRefuses opens files that are not a usable dobrobot database: each
// is refused with a message naming the file, and left byte for byte as it was.
func TestOpenRefuses(t *testing.T) {
	pageSize := os.Getpagesize()
	// real returns the bytes of a dobrobot database holding some history.
	realDB := func(t *testing.T) []byte {
		path := filepath.Join(t.TempDir(), "real.db")
		db := mustOpen(t, path)
		seed(t, db, 60)
		db.Close()
		// Cut the sparse tail bbolt grows the file by: keep what its meta
		// page says it uses.
		b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		var size int64
		_ = b.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
		b.Close()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return data[:size]
	}
	ours := func(t *testing.T, fn func(*bolt.Tx) error) []byte {
		path := filepath.Join(t.TempDir(), "ours.db")
		db := mustOpen(t, path)
		db.Close()
		rawUpdate(t, path, fn)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}

	tests := []struct {
		name string
		data func(t *testing.T) []byte
		want string
	}{
		{"text file", func(*testing.T) []byte { return []byte("release notes: nothing to see here\n") }, "is not a bbolt database"},
		{"random bytes", func(*testing.T) []byte {
			b := make([]byte, 64<<10)
			r := rand.NewChaCha8([32]byte{1})
			_, _ = r.Read(b)
			return b
		}, "is not a bbolt database"},
		{"zeroed meta pages", func(t *testing.T) []byte {
			b := realDB(t)
			clear(b[:2*pageSize])
			return b
		}, "is not a bbolt database"},
		{"truncated to half", func(t *testing.T) []byte {
			b := realDB(t)
			return b[:len(b)/2]
		}, "is truncated"},
		{"another program's bbolt file", func(t *testing.T) []byte {
			path := filepath.Join(t.TempDir(), "foreign.db")
			rawUpdate(t, path, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("widgets"))
				if err != nil {
					return err
				}
				return b.Put([]byte("w1"), []byte("sprocket"))
			})
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}, `is a bbolt file but not dobrobot's (it holds the buckets "widgets"`},
		{"newer schema", func(t *testing.T) []byte {
			return ours(t, func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte(fmt.Sprint(storage.SchemaVersion+1)))
			})
		}, fmt.Sprintf("has schema version %d, newer than this dobrobot understands (%d)", storage.SchemaVersion+1, storage.SchemaVersion)},
		{"unreadable schema", func(t *testing.T) []byte {
			return ours(t, func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("one")) })
		}, `has an unreadable schema version "one"`},
		{"missing bucket", func(t *testing.T) []byte {
			return ours(t, func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("outbox")) })
		}, `is damaged: its "outbox" bucket is missing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := tt.data(t)
			path := filepath.Join(t.TempDir(), "dobrobot.db")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{false, true} {
				start := time.Now()
				db, err := storage.Open(path, storage.Options{ReadOnly: ro})
				if err == nil {
					db.Close()
					t.Fatalf("Open(ReadOnly: %t) succeeded", ro)
				}
				if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Open(ReadOnly: %t): %q; want it to name the file and say %q", ro, err, tt.want)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("Open(ReadOnly: %t) took %s to refuse", ro, d)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("the refused file was changed (%d bytes, was %d)", len(got), len(data))
			}
		})
	}
}

// TestDamagedPages damages data pages under intact meta pages: Open or Check
// must report it, without crashing and without writing to the file.
func TestDamagedPages(t *testing.T) {
	pageSize := os.Getpagesize()
	src := filepath.Join(t.TempDir(), "src.db")
	db := mustOpen(t, src)
	seed(t, db, 60)
	db.Close()
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}

	// A page on the freelist holds nothing: damage there is harmless and
	// cannot be seen. Which pages are free depends on the seed's history, so
	// the pages to damage are the first ten in use.
	var pages []int
	bdb, err := bolt.Open(src, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.View(func(tx *bolt.Tx) error {
		for id := 2; len(pages) < 10; id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			if info.Type != "free" {
				pages = append(pages, id)
			}
		}
		return nil
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 10 {
		t.Fatalf("the seeded file has only %d pages in use besides the meta pages", len(pages))
	}

	for _, page := range pages {
		t.Run(fmt.Sprintf("page %d", page), func(t *testing.T) {
			data := bytes.Clone(orig)
			for i := page * pageSize; i < (page+1)*pageSize; i++ {
				data[i] = 0xA5
			}
			path := filepath.Join(t.TempDir(), "dobrobot.db")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := storage.Open(path)
			if err == nil {
				err = db.Check()
				db.Close()
			}
			if err == nil {
				t.Errorf("Open and Check accepted a file whose page %d was overwritten", page)
			} else if !strings.Contains(err.Error(), path) {
				t.Errorf("the error does not name the file: %v", err)
			}
			t.Logf("refused: %v", err)
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got, data) {
				t.Errorf("the damaged file was written to")
			}
		})
	}
}

func TestCommitFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	db := mustOpen(t, path, storage.WithMaxSize(storage.Options{}, 1<<20))
	defer db.Close()
	seed(t, db, 1)

	// A release bigger than the space left, like a full disk.
	err := db.Update(context.Background(), func(tx commands.Tx) error {
		if _, err := tx.PutRelease(commands.Release{Ticket: "PAY-2", State: commands.StateRequested, Note: strings.Repeat("x", 2<<20)}); err != nil {
			return err
		}
		_, err := tx.AppendAudit(commands.AuditEntry{Time: t0, Actor: "U01ANN", Action: commands.ActionRequest, Ticket: "PAY-2"})
		return err
	})
	if got := commands.ErrorCode(err); got != commands.EUNAVAILABLE {
		t.Fatalf("Update that cannot be committed: code %q (%v), want %q", got, err, commands.EUNAVAILABLE)
	}
	if msg := commands.ErrorMessage(err); !strings.HasPrefix(msg, "could not record the change: ") || !strings.Contains(msg, "maximum size") {
		t.Errorf("the user would read %q; want it to say the change was not recorded, and why", msg)
	}

	// Nothing was written, and the store goes on working.
	seed(t, db, 1)
	got, _, err := chain(t, db)
	if err != nil || len(got) != 2 {
		t.Errorf("after a failed commit and one more write: %d audit entries, %v; want 2 verified", len(got), err)
	}
	var recent []commands.Release
	_ = db.View(context.Background(), func(tx commands.Tx) error { recent, err = tx.Recent(10); return err })
	for _, r := range recent {
		if r.Ticket == "PAY-2" {
			t.Errorf("the release of the failed commit was stored")
		}
	}
}

func TestPanicRollsBack(t *testing.T) {
	db := bolttest.Open(t)
	func() {
		defer func() {
			if r := recover(); r != "bug in fn" {
				t.Errorf("recovered %v, want the panic of fn to propagate", r)
			}
		}()
		_ = db.Update(context.Background(), func(tx commands.Tx) error {
			if _, err := tx.PutRelease(commands.Release{Ticket: "PAY-1", State: commands.StateRequested}); err != nil {
				return err
			}
			panic("bug in fn")
		})
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- db.Update(ctx, func(tx commands.Tx) error {
			rs, err := tx.Recent(10)
			if err == nil && len(rs) != 0 {
				err = fmt.Errorf("the panicking Update stored %d releases", len(rs))
			}
			return err
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Update after a panic: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("Update after a panic is stuck: the database stayed locked")
	}
}

func TestWriterWaitHonoursContext(t *testing.T) {
	db := bolttest.Open(t)
	inside, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = db.Update(context.Background(), func(commands.Tx) error {
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := db.Update(ctx, func(commands.Tx) error { return nil })
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("Update waiting behind a writer: %v after %s; want DeadlineExceeded after about 50ms", err, time.Since(start))
	}
}

func TestTxAfterReturn(t *testing.T) {
	db := bolttest.Open(t)
	var kept commands.Tx
	if err := db.Update(context.Background(), func(tx commands.Tx) error { kept = tx; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := kept.Locks(); err == nil {
		t.Errorf("a Tx used after its Update returned worked; want an error")
	}
	if err := kept.PutLock(commands.Lock{Component: "backend"}); err == nil {
		t.Errorf("a write on a Tx kept after its Update returned worked; want an error")
	}
}

func TestBadNames(t *testing.T) {
	db := bolttest.Open(t)
	for name, fn := range map[string]func(commands.Tx) error{
		"release without ticket": func(tx commands.Tx) error { _, err := tx.PutRelease(commands.Release{}); return err },
		"ticket with NUL": func(tx commands.Tx) error {
			_, err := tx.PutRelease(commands.Release{Ticket: "PAY-1\x00"})
			return err
		},
		"lock without component": func(tx commands.Tx) error { return tx.PutLock(commands.Lock{}) },
		"component with NUL":     func(tx commands.Tx) error { return tx.PutLock(commands.Lock{Component: "a\x00b"}) },
		"event without ID":       func(tx commands.Tx) error { return tx.PutEvent(commands.InboxEvent{}) },
		"freeze env with NUL": func(tx commands.Tx) error {
			return tx.PutLock(commands.Lock{Component: "a", Env: "qa\x00"})
		},
		"deployed without env": func(tx commands.Tx) error {
			return tx.PutDeployed(commands.Deployed{Component: "a", Release: 1})
		},
		"deployed without component": func(tx commands.Tx) error {
			return tx.PutDeployed(commands.Deployed{Env: "qa", Release: 1})
		},
		"deployed env with NUL": func(tx commands.Tx) error {
			return tx.PutDeployed(commands.Deployed{Env: "qa\x00a", Component: "b", Release: 1})
		},
	} {
		err := db.Update(context.Background(), fn)
		if got := commands.ErrorCode(err); got != commands.EINVALID {
			t.Errorf("%s: code %q (%v), want %q", name, got, err, commands.EINVALID)
		}
	}
}

func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	db := mustOpen(t, filepath.Join(dir, "dobrobot.db"))
	defer db.Close()
	seed(t, db, 50)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			err := db.Update(context.Background(), func(tx commands.Tx) error {
				_, err := tx.AppendAudit(commands.AuditEntry{Time: t0, Actor: "U01ANN", Action: commands.ActionLock, Detail: "during backup"})
				return err
			})
			if err != nil {
				t.Errorf("a write during the backup: %v", err)
				return
			}
			writes.Add(1)
		}
	})
	// Conditions, not pauses: the writer is going before the backup
	// starts, and goes on after it.
	waitWrites := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); writes.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the writer stalled at %d writes", writes.Load())
			}
		}
	}
	waitWrites(1)
	backup := filepath.Join(dir, "backup.db")
	f, err := os.OpenFile(backup, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	n, err := db.Backup(context.Background(), f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	waitWrites(writes.Load() + 1)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if fi, _ := os.Stat(backup); fi.Size() != n {
		t.Errorf("Backup reported %d bytes, the file has %d", n, fi.Size())
	}
	if writes.Load() < 2 {
		t.Errorf("%d writes around the backup, want one before and one after", writes.Load())
	}

	copyDB := mustOpen(t, backup)
	defer copyDB.Close()
	if err := copyDB.Check(); err != nil {
		t.Errorf("Check on the backup: %v", err)
	}
	backed, _, err := chain(t, copyDB)
	if err != nil {
		t.Fatalf("the backup's audit chain: %v", err)
	}
	live, _, err := chain(t, db)
	if err != nil {
		t.Fatalf("the live audit chain: %v", err)
	}
	if len(backed) < 50 || len(backed) > len(live) {
		t.Fatalf("the backup holds %d audit entries; want between 50 and the live %d", len(backed), len(live))
	}
	if diff := cmp.Diff(live[:len(backed)], backed); diff != "" {
		t.Errorf("the backup's chain is not a prefix of the live one (-live +backup):\n%s", diff)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Backup(ctx, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Backup on a cancelled context: %v, want context.Canceled", err)
	}
}

// TestTamper edits the audit bucket behind dobrobot's back: reading the log
// through Audit and a Verifier finds every edit.
func TestTamper(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.db")
	db := mustOpen(t, src)
	seed(t, db, 10)
	_, v, err := chain(t, db)
	if err != nil {
		t.Fatalf("the untouched chain: %v", err)
	}
	anchorSeq, anchorHash := v.Head() // as if anchored outside
	db.Close()
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	key := func(seq uint64) []byte { return []byte{0, 0, 0, 0, 0, 0, 0, byte(seq)} }

	tests := []struct {
		name    string
		tamper  func(b *bolt.Bucket) error
		wantSeq uint64 // where the Verifier reports the break; 0: the chain verifies but its head is not the anchor
	}{
		{"one byte of a detail", func(b *bolt.Bucket) error {
			v := bytes.Clone(b.Get(key(5)))
			i := bytes.Index(v, []byte(`"detail":"event`))
			if i < 0 {
				return fmt.Errorf("no detail in %s", v)
			}
			v[i+len(`"detail":"`)] = 'E'
			return b.Put(key(5), v)
		}, 5},
		{"an edit with its hash recomputed", func(b *bolt.Bucket) error {
			var e commands.AuditEntry
			if err := json.Unmarshal(b.Get(key(5)), &e); err != nil {
				return err
			}
			e.Actor = "U99MALLORY"
			e.Hash = e.ComputeHash()
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			return b.Put(key(5), v)
		}, 6},
		{"a deleted entry", func(b *bolt.Bucket) error { return b.Delete(key(5)) }, 6},
		{"two entries swapped", func(b *bolt.Bucket) error {
			v4, v5 := bytes.Clone(b.Get(key(4))), bytes.Clone(b.Get(key(5)))
			if err := b.Put(key(4), v5); err != nil {
				return err
			}
			return b.Put(key(5), v4)
		}, 5},
		{"the last entry cut off", func(b *bolt.Bucket) error { return b.Delete(key(10)) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dobrobot.db")
			if err := os.WriteFile(path, orig, 0o600); err != nil {
				t.Fatal(err)
			}
			rawUpdate(t, path, func(tx *bolt.Tx) error { return tt.tamper(tx.Bucket([]byte("audit"))) })
			db := mustOpen(t, path)
			defer db.Close()
			_, v, err := chain(t, db)
			if tt.wantSeq == 0 {
				seq, hash := v.Head()
				if err != nil || (seq == anchorSeq && hash == anchorHash) {
					t.Errorf("after %s: verify %v, head seq %d; want a verified chain whose head differs from the anchor (seq %d)", tt.name, err, seq, anchorSeq)
				}
				return
			}
			var ce *commands.ChainError
			if !errors.As(err, &ce) || ce.Seq != tt.wantSeq {
				t.Errorf("after %s: verify %v; want a ChainError at seq %d", tt.name, err, tt.wantSeq)
			}
		})
	}
}
