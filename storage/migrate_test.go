package storage_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// TestMigrateFromSchema1 opens a file as schema 1 wrote it (with the index
// of processed inbox events): Open upgrades it to the current schema, the
// index is gone, the inbox records are kept, and the prune at start-up
// still forgets the old processed events and only those.
func TestMigrateFromSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	events := []commands.InboxEvent{
		{ID: "EvOLD", Message: commands.Message{EventID: "EvOLD", User: "U0ANN", Text: "queue"}, Received: t0, Processed: true},
		{ID: "EvNEW", Message: commands.Message{EventID: "EvNEW", User: "U0ANN", Text: "queue"}, Received: t0.Add(72 * time.Hour), Processed: true},
		{ID: "EvPENDING", Message: commands.Message{EventID: "EvPENDING", User: "U0BOB", Text: "dobro PAY-1"}, Received: t0},
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"meta", "releases", "open", "tickets", "locks", "audit", "inbox", "inbox_pending", "inbox_processed", "outbox"} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		for _, e := range events {
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := tx.Bucket([]byte("inbox")).Put([]byte(e.ID), v); err != nil {
				return err
			}
			idx := "inbox_pending"
			if e.Processed {
				idx = "inbox_processed"
			}
			// Schema 1's index key: the time (12 bytes), then the event ID.
			key := binary.BigEndian.AppendUint64(nil, uint64(e.Received.Unix())^(1<<63))
			key = append(binary.BigEndian.AppendUint32(key, uint32(e.Received.Nanosecond())), e.ID...)
			if err := tx.Bucket([]byte(idx)).Put(key, []byte{}); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := storage.Open(path)
	if err != nil {
		t.Fatalf("Open of a schema 1 file: %v", err)
	}
	defer db.Close()
	var (
		schema    string
		processed bool
	)
	if err := db.Bolt().View(func(tx *bolt.Tx) error {
		schema = string(tx.Bucket([]byte("meta")).Get([]byte("schema")))
		processed = tx.Bucket([]byte("inbox_processed")) != nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(storage.SchemaVersion); schema != want || processed {
		t.Errorf("after Open: schema %q, inbox_processed bucket there = %t; want %q, false", schema, processed, want)
	}

	ctx := context.Background()
	var pruned int
	if err := db.Update(ctx, func(tx commands.Tx) error {
		pruned, err = tx.PruneEvents(t0.Add(48 * time.Hour))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if pruned != 1 {
		t.Errorf("PruneEvents pruned %d, want 1 (EvOLD)", pruned)
	}
	var got []string
	if err := db.View(ctx, func(tx commands.Tx) error {
		for _, e := range events {
			if _, ok, err := tx.Event(e.ID); err != nil {
				return err
			} else if ok {
				got = append(got, e.ID)
			}
		}
		pending, err := tx.PendingEvents()
		for _, e := range pending {
			got = append(got, "pending "+e.ID)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"EvNEW", "EvPENDING", "pending EvPENDING"}, got); diff != "" {
		t.Errorf("inbox after the upgrade and the prune (-want +got):\n%s", diff)
	}
}
