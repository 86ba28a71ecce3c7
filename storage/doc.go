// Package storage keeps dobrobot's state in one embedded bbolt file and
// implements commands.Store on it.
//
// The file holds these buckets (keys in big-endian where they are numbers, so
// that bbolt's byte order is numeric order; values are JSON):
//
//	meta            "schema" → schema version in decimal ("1");
//	                "effect_seq" → be(last effect ID given out) and
//	                "events_with_effects" → be(inbox records carrying
//	                effects) (schema 5)
//	releases        be(ID) → Release
//	open            be(ID) → "" for each open release: the queue, O(open) to read
//	tickets         ticket "\x00" be(ID) → "" for every release: lookups by ticket
//	locks           component "\x00" be(release) → Lock; a freeze (release 0)
//	                adds its environment after be(0), nothing for a freeze
//	                of every environment (schema 3)
//	audit           be(seq) → AuditEntry, the hash chain
//	inbox           event ID → InboxEvent, with "outbox": [Effect, …] the
//	                undelivered effects emitted after it in its
//	                transaction (schema 5; see outbox.go)
//	inbox_pending   time(received) event ID → "" for events not yet processed
//	inbox_processed time(received) event ID → "" for processed events, oldest
//	                first (schema 1 only: schema 2 deleted it)
//	outbox          be(ID) → Effect emitted with no event before it (and
//	                every effect before schema 5)
//	due             time kind 0 be(release) → Due: the scheduler's due times
//	due_index       be(release) kind → time, to find a release's (schema 4)
//	deployed        env "\x00" component → Deployed: what is where (schema 3)
//
// The rules it follows: Open waits at most Options.Timeout for the file lock
// and says another dobrobot may hold it; fsync stays on for every commit and
// DB.Batch is never used; bytes read from bbolt are decoded (copied) before
// the transaction ends; a large initial memory map lets long reads (audit
// export, backup) run without stalling writers; a file that is not a bbolt
// file, not dobrobot's, or of a newer schema is refused and never written.
package storage
