package postgres

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/dobrobot/dobrobot/commands"
)

// TestWriterLockWait holds the writer lock (the leader row) from another
// session while an Update waits for it. The Update's wait is bounded by
// lock_timeout: it gives up, checks the fence and queues again, so it
// leaves the queue by itself (which is what keeps a frozen leader's queued
// writes from holding up a takeover). A write whose process still leads gets
// the row once it is free and runs fn once; one whose process was deposed
// meanwhile is refused while the row is still held, and writes nothing.
func TestWriterLockWait(t *testing.T) {
	dsn := testDSN(t)
	tests := []struct {
		name    string
		deposed bool // the process loses its lease while the write waits
		wantErr error
		wantFn  int32
		wantLog int
	}{
		{name: "the row frees", wantFn: 1, wantLog: 1},
		{name: "deposed while waiting", deposed: true, wantErr: ErrFenced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema := newSchema(t, dsn)
			var leading atomic.Bool
			leading.Store(true)
			db := openStore(t, dsn, Options{Schema: schema, IdleInTransaction: 500 * time.Millisecond,
				Fence: func() (int64, bool) { return 0, leading.Load() }})
			ctx := context.Background()
			holder, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Close(ctx)
			held, err := holder.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = held.Rollback(ctx) }()
			if _, err := held.Exec(ctx, "SELECT epoch FROM "+schema+".leader WHERE id = 1 FOR UPDATE"); err != nil {
				t.Fatal(err)
			}

			var ran atomic.Int32
			done := make(chan error, 1)
			go func() {
				done <- db.Update(ctx, func(tx commands.Tx) error {
					ran.Add(1)
					_, err := tx.AppendAudit(commands.AuditEntry{Time: time.Now(), Actor: "U01ANN", Action: commands.ActionLock})
					return err
				})
			}()
			// The write waits on the row, gives up after lock_timeout and
			// queues again: its wait starts anew.
			waitStart := func() (time.Time, bool) {
				var at time.Time
				err := pgx.ErrNoRows
				if c, cerr := pgx.Connect(ctx, dsn); cerr == nil {
					err = c.QueryRow(ctx, `SELECT query_start FROM pg_stat_activity
						WHERE wait_event_type = 'Lock' AND query LIKE '%"'||$1||'".leader WHERE id = 1 FOR UPDATE%'`, schema).Scan(&at)
					c.Close(ctx)
				}
				return at, err == nil
			}
			var first time.Time
			if !waitUntil(10*time.Second, func() bool { var ok bool; first, ok = waitStart(); return ok }) {
				t.Fatal("the write does not wait on the leader row")
			}
			if !waitUntil(10*time.Second, func() bool { at, ok := waitStart(); return ok && at.After(first) }) {
				t.Fatal("the write waits on the leader row without a bound: it never queued again")
			}

			if tt.deposed {
				leading.Store(false)
				select {
				case err = <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("a deposed write still waits on the row the other session holds")
				}
				if err := held.Rollback(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := held.Rollback(ctx); err != nil {
					t.Fatal(err)
				}
				select {
				case err = <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("the write did not get the row once it was free")
				}
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Update: %v, want %v", err, tt.wantErr)
			}
			got := struct{ Fn, Log int }{int(ran.Load()), int(scalar[int64](t, dsn, "SELECT count(*) FROM "+schema+".audit"))}
			want := struct{ Fn, Log int }{int(tt.wantFn), tt.wantLog}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("fn runs and audit entries (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWriterLockWaitOnlyForTheRow checks that the bound on the wait for the
// leader row does not apply to the statements of fn: they wait for locks as
// the session is configured (no lock_timeout by default), so an operator's
// lock on a table delays a write rather than failing it.
func TestWriterLockWaitOnlyForTheRow(t *testing.T) {
	dsn := testDSN(t)
	db := openStore(t, dsn, Options{Schema: newSchema(t, dsn), IdleInTransaction: 500 * time.Millisecond})
	var got string
	err := db.Update(context.Background(), func(ct commands.Tx) error {
		t := ct.(*tx)
		return t.pg.QueryRow(t.ctx, `SELECT current_setting('lock_timeout')`).Scan(&got)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != "0" {
		t.Errorf("lock_timeout inside Update's fn = %q, want the session's default, 0", got)
	}
}

// waitUntil polls cond until it holds or timeout passes, and reports
// whether it held.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
