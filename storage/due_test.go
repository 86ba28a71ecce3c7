package storage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// TestMigrateToDue opens files written before the scheduler: a schema 3
// file as the environments' binary writes it (made here by taking the due
// buckets out of a new file), and the schema 2 and schema 1 fixtures. Each
// is upgraded to the current schema with the due buckets, empty, takes a
// due time, and still verifies.
func TestMigrateToDue(t *testing.T) {
	schema3 := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "v3.db")
		db, err := storage.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Bolt().Update(func(tx *bolt.Tx) error {
			for _, name := range []string{"due", "due_index"} {
				if err := tx.DeleteBucket([]byte(name)); err != nil {
					return err
				}
			}
			return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("3"))
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	fixture := func(name string) func(t *testing.T) string {
		return func(t *testing.T) string {
			raw, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "old.db")
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}
	}
	for _, tt := range []struct {
		name string
		file func(t *testing.T) string
	}{
		{"schema 3", schema3},
		{"schema 2 fixture", fixture("schema2-demo.db")},
		{"schema 1 fixture", fixture("schema1-demo.db")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, err := storage.Open(tt.file(t))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer db.Close()
			var schema string
			if err := db.Bolt().View(func(tx *bolt.Tx) error {
				schema = string(tx.Bucket([]byte("meta")).Get([]byte("schema")))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprint(storage.SchemaVersion); schema != want {
				t.Errorf("schema after Open = %q, want %q", schema, want)
			}
			ctx := context.Background()
			d := commands.Due{At: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Kind: "remind-approval", Release: 1,
				Guard: commands.Guard{State: commands.StateRequested, Version: 1}}
			var before, after []commands.Due
			err = db.Update(ctx, func(tx commands.Tx) error {
				if before, err = tx.DueBefore(d.At, 0); err != nil {
					return err
				}
				if err := tx.PutDue(d); err != nil {
					return err
				}
				after, err = tx.DueBefore(d.At, 0)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(before) != 0 {
				t.Errorf("an upgraded file has dues: %v", before)
			}
			if diff := cmp.Diff([]commands.Due{d}, after); diff != "" {
				t.Errorf("DueBefore after PutDue (-want +got):\n%s", diff)
			}
			if err := db.Check(); err != nil {
				t.Errorf("Check: %v", err)
			}
			if _, err := commands.VerifyStore(ctx, db, nil); err != nil {
				t.Errorf("VerifyStore: %v", err)
			}
		})
	}
}
