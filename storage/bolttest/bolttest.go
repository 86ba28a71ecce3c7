// Package bolttest opens bbolt stores for tests: the real store on a file
// in a temporary directory. It is kept apart from storage/storagetest, the
// contract suite, which imports no implementation.
package bolttest

import (
	"path/filepath"
	"testing"

	"github.com/dobrobot/dobrobot/storage"
)

// Open opens a new bbolt store on a file in a temporary directory and
// closes it when tb ends.
func Open(tb testing.TB) *storage.DB {
	tb.Helper()
	db, err := storage.Open(filepath.Join(tb.TempDir(), "dobrobot.db"))
	if err != nil {
		tb.Fatalf("bolttest: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("bolttest: %v", err)
		}
	})
	return db
}
