//go:build !linux

package storage

// dropMapped does nothing where madvise(MADV_DONTNEED) is not used.
func (db *DB) dropMapped(size int64) {}
