package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

func TestVerifyRecent(t *testing.T) {
	ctx := context.Background()
	empty := mustOpen(t, filepath.Join(t.TempDir(), "empty.db"))
	if n, err := empty.VerifyRecent(ctx, 10); n != 0 || err != nil {
		t.Errorf("empty chain: VerifyRecent = %d, %v; want 0, nil", n, err)
	}
	empty.Close()

	src := filepath.Join(t.TempDir(), "src.db")
	db := mustOpen(t, src)
	seed(t, db, 20)
	for _, tc := range []struct{ n, want int }{{0, 0}, {1, 1}, {5, 5}, {19, 19}, {20, 20}, {1000, 20}} {
		got, err := db.VerifyRecent(ctx, tc.n)
		if got != tc.want || err != nil {
			t.Errorf("VerifyRecent(%d) = %d, %v; want %d, nil", tc.n, got, err, tc.want)
		}
	}
	db.Close()
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	key := func(seq uint64) []byte { return []byte{0, 0, 0, 0, 0, 0, 0, byte(seq)} }
	edit := func(seq uint64) func(*bolt.Bucket) error {
		return func(b *bolt.Bucket) error {
			v := bytes.Clone(b.Get(key(seq)))
			i := bytes.Index(v, []byte(`"detail":"event`))
			if i < 0 {
				return fmt.Errorf("no detail in %s", v)
			}
			v[i+len(`"detail":"`)] = 'E'
			return b.Put(key(seq), v)
		}
	}
	for _, tc := range []struct {
		name    string
		tamper  func(*bolt.Bucket) error
		n       int
		wantSeq uint64 // 0: not detected within the window
	}{
		{"an edit inside the window", edit(18), 5, 18},
		{"an edit of the anchor", edit(15), 5, 15},
		{"an edit before the window", edit(3), 5, 0},
		{"an edit, whole chain", edit(3), 100, 3},
		{"a deleted entry", func(b *bolt.Bucket) error { return b.Delete(key(17)) }, 5, 18},
		{"the first entries deleted", func(b *bolt.Bucket) error { return b.Delete(key(1)) }, 100, 2},
		{"an entry under the wrong key", func(b *bolt.Bucket) error { return b.Put(key(19), bytes.Clone(b.Get(key(20)))) }, 5, 19},
		{"an unreadable entry", func(b *bolt.Bucket) error { return b.Put(key(20), []byte("{")) }, 5, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dobrobot.db")
			if err := os.WriteFile(path, orig, 0o600); err != nil {
				t.Fatal(err)
			}
			rawUpdate(t, path, func(tx *bolt.Tx) error { return tc.tamper(tx.Bucket([]byte("audit"))) })
			db := mustOpen(t, path)
			defer db.Close()
			_, err := db.VerifyRecent(ctx, tc.n)
			var ce *commands.ChainError
			switch {
			case tc.wantSeq == 0 && err != nil:
				t.Errorf("VerifyRecent(%d) = %v; want no error (the edit is older than the window)", tc.n, err)
			case tc.wantSeq != 0 && (!errors.As(err, &ce) || ce.Seq != tc.wantSeq):
				t.Errorf("VerifyRecent(%d) = %v; want a ChainError at seq %d", tc.n, err, tc.wantSeq)
			}
		})
	}
}

// TestVerifyRecentCost: the start-up check of the newest 10,000 entries of
// a longer chain stays under a second (RELIABILITY T56: about 0.1 s here, 0.4 s
// under the race detector; the bound leaves room for a loaded machine).
func TestVerifyRecentCost(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 30,000 entries")
	}
	db := mustOpen(t, filepath.Join(t.TempDir(), "dobrobot.db"))
	defer db.Close()
	ctx := context.Background()
	for batch := range 3 {
		err := db.Update(ctx, func(tx commands.Tx) error {
			for i := range 10000 {
				if _, err := tx.AppendAudit(commands.AuditEntry{Time: t0, Actor: "U01ANN", Action: commands.ActionRequest,
					Ticket: fmt.Sprintf("PAY-%d", batch*10000+i+1), To: commands.StateRequested, Detail: "components: backend"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	n, err := db.VerifyRecent(ctx, storage.DefaultRecentAudit)
	took := time.Since(start)
	if n != storage.DefaultRecentAudit || err != nil {
		t.Fatalf("VerifyRecent = %d, %v", n, err)
	}
	t.Logf("verified the newest %d of 30000 entries in %v", n, took)
	if took > 2*time.Second {
		t.Errorf("VerifyRecent took %v, want < 1s (2s under load)", took)
	}
}
