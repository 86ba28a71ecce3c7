package storage_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// These benchmarks run under make bench (cmd/dobrobench prints the figures);
// with -cpuprofile they show where the time goes.

// BenchmarkBoltUpdate is the physical reference: one raw bbolt read-write
// transaction putting one key, fsync on.
func BenchmarkBoltUpdate(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	name := []byte("k")
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(name); return err }); err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 100)
	b.ResetTimer()
	for i := range b.N {
		if err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(name).Put(binary.BigEndian.AppendUint64(nil, uint64(i)), val)
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceive is the bot's persist-before-ack: one inbox record per
// transaction.
func BenchmarkReceive(b *testing.B) {
	db, err := storage.Open(filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("Ev%010d", i)
		err := db.Update(ctx, func(tx commands.Tx) error {
			if _, ok, err := tx.Event(id); err != nil || ok {
				return err
			}
			return tx.PutEvent(commands.InboxEvent{ID: id, Message: commands.Message{EventID: id, User: "U0ANN", Text: "queue"}, Received: time.Now()})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestMain removes the audit benchmarks' shared database.
func TestMain(m *testing.M) {
	code := m.Run()
	if auditDBDir != "" {
		os.RemoveAll(auditDBDir)
	}
	os.Exit(code)
}

const benchEntries = 100_000

var (
	auditDBOnce sync.Once
	auditDBPath string
	auditDBErr  error
	auditDBDir  string
)

// auditDB returns a database holding benchEntries audit entries, built once
// per test binary run.
func auditDB(b *testing.B) string {
	auditDBOnce.Do(func() {
		dir, err := os.MkdirTemp("", "storage-bench-")
		if err != nil {
			auditDBErr = err
			return
		}
		auditDBDir = dir
		auditDBPath = filepath.Join(dir, "audit.db")
		db, err := storage.Open(auditDBPath)
		if err != nil {
			auditDBErr = err
			return
		}
		defer db.Close()
		t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		for n := 0; n < benchEntries; {
			auditDBErr = db.Update(context.Background(), func(tx commands.Tx) error {
				for range 10_000 {
					n++
					if _, err := tx.AppendAudit(commands.AuditEntry{Time: t0.Add(time.Duration(n) * time.Minute), Actor: "U0ANN",
						Action: commands.ActionRefused, Ticket: fmt.Sprintf("PAY-%d", n/10), Detail: "dep start: backend is locked by PAY-3 (dep start 12 min ago by <@U0BOB>)."}); err != nil {
						return err
					}
				}
				return nil
			})
			if auditDBErr != nil {
				return
			}
		}
	})
	if auditDBErr != nil {
		b.Fatal(auditDBErr)
	}
	return auditDBPath
}

// BenchmarkAuditScan is the physical reference for the audit log: a raw
// bbolt cursor over the audit bucket, decoding nothing. Reported per entry.
func BenchmarkAuditScan(b *testing.B) {
	path := auditDB(b)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.ResetTimer()
	var n int
	for range b.N {
		_ = db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte("audit")).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				n += len(v)
			}
			return nil
		})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchEntries), "ns/entry")
}

// BenchmarkAuditExport is audit export's work: Store.Audit decoding each
// entry and a JSON encoder writing it as a line.
func BenchmarkAuditExport(b *testing.B) {
	db := openAuditDB(b)
	b.ResetTimer()
	for range b.N {
		enc := json.NewEncoder(io.Discard)
		enc.SetEscapeHTML(false)
		if err := db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error { return enc.Encode(e) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchEntries), "ns/entry")
}

// BenchmarkAuditVerify is audit verify's work: Store.Audit and the hash
// chain's Verifier.
func BenchmarkAuditVerify(b *testing.B) {
	db := openAuditDB(b)
	b.ResetTimer()
	for range b.N {
		v := commands.NewVerifier()
		if err := db.Audit(context.Background(), commands.AuditFilter{}, v.Add); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchEntries), "ns/entry")
}

func openAuditDB(b *testing.B) *storage.DB {
	db, err := storage.Open(auditDB(b), storage.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}
