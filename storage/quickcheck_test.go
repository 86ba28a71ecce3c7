package storage_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// rootPage returns the root page of a bucket of the file at path.
func rootPage(t *testing.T, path, bucket string) int {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var root int
	_ = b.View(func(tx *bolt.Tx) error { root = int(tx.Bucket([]byte(bucket)).Root()); return nil })
	if root == 0 {
		t.Fatalf("bucket %s is inline: seed more", bucket)
	}
	return root
}

// TestQuickCheck: the start-up check finds damage in the pages of the open
// work (here the inbox) and leaves the history's pages (here the audit log)
// to Check.
func TestQuickCheck(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.db")
	db := mustOpen(t, src)
	seed(t, db, 300)
	err := db.Update(context.Background(), func(tx commands.Tx) error {
		for i := range 300 {
			id := fmt.Sprintf("Ev%06d", i)
			if err := tx.PutEvent(commands.InboxEvent{ID: id, Message: commands.Message{EventID: id, User: "U01ANN", Text: "queue"}, Received: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.QuickCheck(); err != nil {
		t.Fatalf("QuickCheck on a sound file: %v", err)
	}
	db.Close()
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := os.Getpagesize()

	for _, tc := range []struct {
		bucket    string
		quickSees bool
	}{{"inbox", true}, {"audit", false}} {
		t.Run(tc.bucket, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dobrobot.db")
			data := bytes.Clone(orig)
			page := rootPage(t, src, tc.bucket)
			for i := page * pageSize; i < (page+1)*pageSize; i++ {
				data[i] = 0xA5
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := storage.Open(path, storage.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			quick := db.QuickCheck()
			if got := quick != nil; got != tc.quickSees {
				t.Errorf("QuickCheck with the root page of %s overwritten: %v; want an error: %t", tc.bucket, quick, tc.quickSees)
			}
			if quick != nil && !strings.Contains(quick.Error(), path) {
				t.Errorf("QuickCheck's error does not name the file: %v", quick)
			}
			if err := db.Check(); err == nil {
				t.Errorf("Check accepted the file with the root page of %s overwritten", tc.bucket)
			}
		})
	}
}
