package postgres

import (
	"context"
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
		rows, err := t.pg.Query(ctx, db.q.expand(`SELECT `+auditColumns+`
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
		var before *commands.AuditEntry
		if len(window) > n {
			before, window = &window[n], window[:n]
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
