package storage

import "syscall"

// dropMapped lets the kernel take back from this process the pages of the
// database file it has read through bbolt's memory map, size bytes from its
// start: they stay in the page cache, and a later read maps them again
// (bbolt writes with pwrite, never through the map, so what a read sees is
// unchanged). A long read — audit export or verify of years of history —
// otherwise keeps every page it touched resident, and the process's memory
// grows with the file. Call it only inside a read transaction, which keeps
// bbolt from moving the map.
func (db *DB) dropMapped(size int64) {
	if size <= 0 {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, db.bolt.Info().Data, uintptr(size), syscall.MADV_DONTNEED)
}
