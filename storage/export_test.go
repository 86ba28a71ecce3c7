package storage

import bolt "go.etcd.io/bbolt"

// WithMaxSize returns o with the file capped at n bytes, so a test can make a
// commit fail as on a full disk.
func WithMaxSize(o Options, n int) Options {
	o.maxSize = n
	return o
}

// Bolt returns db's bbolt handle, for tests of its settings.
func (db *DB) Bolt() *bolt.DB { return db.bolt }

// DecodeAudit is decodeAudit, for the codec benchmarks.
var DecodeAudit = decodeAudit
