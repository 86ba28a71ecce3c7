package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/dobrobot/dobrobot/commands"
)

// VerifyRecent checks the newest n entries of the audit chain (all of them
// when there are fewer) in one read snapshot, as storage.DB.VerifyRecent
// does: their seqs follow each other, each prev_hash is the hash of the
// entry before (the one before the window included, or the genesis hash),
// and each hash matches its entry's contents. It returns how many entries it
// checked, and a *commands.ChainError at the first break.
func (db *DB) VerifyRecent(ctx context.Context, n int) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	var checked int
	err := db.View(ctx, func(ct commands.Tx) error {
		t := ct.(*tx)
		rows, err := t.pg.Query(ctx, db.q.expand(`SELECT seq, time, actor, action, ticket, from_state, to_state, detail, prev_hash, hash
			FROM {s}.audit ORDER BY seq DESC LIMIT $1`), int64(n)+1)
		if err != nil {
			return unavailable(ctx, "could not read the audit log", err)
		}
		defer rows.Close()
		var window []commands.AuditEntry
		for rows.Next() {
			e, err := scanAudit(rows)
			if err != nil {
				return err
			}
			window = append(window, e)
		}
		if err := rows.Err(); err != nil {
			return unavailable(ctx, "could not read the audit log", err)
		}
		anchor := commands.GenesisHash
		if len(window) > n {
			before := window[n]
			if before.ComputeHash() != before.Hash {
				return &commands.ChainError{Seq: before.Seq, Reason: "hash does not match the entry's contents (edited?)"}
			}
			anchor, window = before.Hash, window[:n]
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
