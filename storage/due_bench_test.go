package storage_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// BenchmarkDue is the cost of a change to the scheduler's due times with n
// pending (issue 16: O(log n) per change, no scan):
//   - op: a PutDue of a new record at a random time and its DeleteDue,
//     inside a transaction, the commit not timed: the B+tree's work;
//   - txn: the same pair as a command pays it, in a transaction of its own,
//     commit and fsync included;
//   - next: NextDue, which the sleeping scheduler reads at each wake-up.
//
// ns/op should barely grow from 100 to 100,000 pending.
func BenchmarkDue(b *testing.B) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	at := func(r *rand.Rand) time.Time { return t0.Add(time.Duration(r.Int64N(int64(30 * 24 * time.Hour)))) }
	const kind commands.DueKind = "remind-approval"
	for _, pending := range []int{100, 10_000, 100_000} {
		db, err := storage.Open(filepath.Join(b.TempDir(), "due.db"))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		r := rand.New(rand.NewPCG(1, uint64(pending)))
		for from := 0; from < pending; from += 10_000 {
			err := db.Update(ctx, func(tx commands.Tx) error {
				for id := from + 1; id <= min(from+10_000, pending); id++ {
					if err := tx.PutDue(commands.Due{At: at(r), Kind: kind, Release: uint64(id)}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		next := uint64(pending)
		pair := func(tx commands.Tx) error {
			next++
			if err := tx.PutDue(commands.Due{At: at(r), Kind: kind, Release: next}); err != nil {
				return err
			}
			return tx.DeleteDue(next, kind)
		}
		b.Run(fmt.Sprintf("op/pending=%d", pending), func(b *testing.B) {
			const batch = 1000
			for i := 0; i < b.N; {
				err := db.Update(ctx, func(tx commands.Tx) error {
					for j := 0; j < batch && i < b.N; j, i = j+1, i+1 {
						if err := pair(tx); err != nil {
							return err
						}
					}
					b.StopTimer() // the commit is txn's
					return nil
				})
				b.StartTimer()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("txn/pending=%d", pending), func(b *testing.B) {
			for range b.N {
				if err := db.Update(ctx, pair); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("next/pending=%d", pending), func(b *testing.B) {
			err := db.View(ctx, func(tx commands.Tx) error {
				for range b.N {
					if _, ok, err := tx.NextDue(); err != nil || !ok {
						return fmt.Errorf("NextDue: %v, %v", ok, err)
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
