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
		anchor := commands.GenesisHash
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
				if e.ComputeHash() != e.Hash {
					return &commands.ChainError{Seq: e.Seq, Reason: "hash does not match the entry's contents (edited?)"}
				}
				anchor = e.Hash
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
		if len(window) > 0 && window[0].Seq != 1 && anchor == commands.GenesisHash {
			return &commands.ChainError{Seq: window[0].Seq, Reason: fmt.Sprintf("the oldest entry has seq %d, expected 1 (entries are missing)", window[0].Seq)}
		}
		prev := anchor
		for i, e := range window {
			switch {
			case i > 0 && e.Seq != window[i-1].Seq+1:
				return &commands.ChainError{Seq: e.Seq, Reason: fmt.Sprintf("expected seq %d (an entry is missing or out of order)", window[i-1].Seq+1)}
			case e.PrevHash != prev:
				return &commands.ChainError{Seq: e.Seq, Reason: "prev_hash does not match the previous entry's hash"}
			case e.ComputeHash() != e.Hash:
				return &commands.ChainError{Seq: e.Seq, Reason: "hash does not match the entry's contents (edited?)"}
			}
			prev = e.Hash
		}
		checked = len(window)
		return nil
	})
	return checked, err
}
