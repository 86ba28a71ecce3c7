package storage

import (
	"context"
	"fmt"
	"slices"

	"github.com/dobrobot/dobrobot/commands"
)

// DefaultRecentAudit is how many of the newest audit entries dobrobot run
// verifies at start-up.
const DefaultRecentAudit = 10000

// VerifyRecent checks the newest n entries of the audit chain (all of them
// when there are fewer) in one read snapshot: their seqs follow each other
// and match their keys, each entry's prev_hash is the hash of the entry
// before it (the one before the window included, or the genesis hash), and
// each hash matches its entry's contents. It returns how many entries it
// checked, and a *commands.ChainError at the first break. It costs O(n),
// whatever the length of the chain; `dobrobot audit verify` checks the whole
// chain.
func (db *DB) VerifyRecent(ctx context.Context, n int) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	var checked int
	err := db.View(ctx, func(t commands.Tx) error {
		b, err := t.(*tx).bucket(bucketAudit)
		if err != nil {
			return err
		}
		// Read backwards: the window, then the entry before it (the anchor).
		var window []commands.AuditEntry
		var before *commands.AuditEntry
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var e commands.AuditEntry
			if err := decodeAudit(v, &e); err != nil {
				return &commands.ChainError{Seq: decodeID(k), Reason: fmt.Sprintf("the entry cannot be read (%v)", err)}
			}
			if e.Seq != decodeID(k) {
				return &commands.ChainError{Seq: decodeID(k), Reason: fmt.Sprintf("the entry stored under seq %d says seq %d", decodeID(k), e.Seq)}
			}
			if len(window) == n {
				before = &e
				break
			}
			window = append(window, e)
			if len(window)%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		slices.Reverse(window)
		if err := commands.VerifyTail(before, window); err != nil {
			return err
		}
		checked = len(window)
		return nil
	})
	return checked, err
}
