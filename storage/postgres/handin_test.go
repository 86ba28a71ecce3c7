package postgres

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// TestHandIn checks the unfenced path a deposed leader hands a hook's
// result in through (issue 19, item 4): where Update is refused, HandIn
// runs, tells fn that this process does not lead, commits what fn wrote
// under the current term's epoch, and writes nothing when fn refuses.
func TestHandIn(t *testing.T) {
	dsn := testDSN(t)
	for _, tc := range []struct {
		name      string
		mine      int64 // the fence's epoch
		ok        bool  // the fence's lease
		current   int64 // the epoch in the leader row
		refuse    bool  // fn returns an error
		wantLeads bool
	}{
		{"the leader", 1, true, 1, false, true},
		{"deposed: a newer term began", 1, true, 2, false, false},
		{"deposed: its lease ran out", 1, false, 1, false, false},
		{"deposed, and fn refuses", 1, true, 2, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schema := newSchema(t, dsn)
			var leading atomic.Bool
			leading.Store(tc.ok)
			db := openStore(t, dsn, Options{Schema: schema, Fence: func() (int64, bool) { return tc.mine, leading.Load() }})
			if err := exec(t, dsn, "UPDATE "+schema+".leader SET epoch = $1", tc.current); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			write := func(tx commands.Tx) error {
				if _, err := tx.PutRelease(commands.Release{Ticket: "PAY-1", State: commands.StateDeploying}); err != nil {
					return err
				}
				_, err := tx.AppendAudit(commands.AuditEntry{Time: time.Now(), Actor: "U1", Action: commands.ActionStarted, Ticket: "PAY-1",
					From: commands.StateDeploying, To: commands.StateDeploying, Detail: "start hook ok in 1s (attempt 0123)"})
				return err
			}
			updateErr := db.Update(ctx, write)
			if fenced := errors.Is(updateErr, ErrFenced); fenced == tc.wantLeads {
				t.Fatalf("Update: %v; want it refused: %t", updateErr, !tc.wantLeads)
			}
			if tc.wantLeads {
				return // the leader's Update wrote; HandIn is Update for it
			}
			refusal := errors.New("the release no longer waits on this attempt")
			var leads bool
			err := db.HandIn(ctx, func(tx commands.Tx, l bool) error {
				leads = l
				if err := write(tx); err != nil {
					return err
				}
				if tc.refuse {
					return refusal
				}
				return nil
			})
			if tc.refuse != errors.Is(err, refusal) || (!tc.refuse && err != nil) {
				t.Fatalf("HandIn: %v", err)
			}
			if leads != tc.wantLeads {
				t.Errorf("HandIn told fn leads = %t, want %t", leads, tc.wantLeads)
			}
			var n int
			if err := db.View(ctx, func(tx commands.Tx) error {
				rels, err := tx.Recent(0)
				n = len(rels)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			want := 1
			if tc.refuse {
				want = 0
			}
			if n != want {
				t.Errorf("releases after HandIn = %d, want %d", n, want)
			}
			epochs := epochsOf(t, dsn, schema)
			if len(epochs) != want || (want == 1 && epochs[0] != tc.current) {
				t.Errorf("audit epochs after HandIn = %v, want %d entries of the current term %d", epochs, want, tc.current)
			}
		})
	}
}
