package postgres

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/clocktest"
)

// TestScheduleAcrossFailover runs the scheduler in two instances over one
// schema, both believing they lead, on one fake clock: only the holder of
// the current term fires an approval reminder (the other's firing is
// fenced and rolled back when it comes first, and finds nothing due when it
// comes after), and after a failover the new leader sends the next ones,
// so none is lost or sent twice.
func TestScheduleAcrossFailover(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clk := clocktest.New(t0)
	type instance struct {
		db    *DB
		epoch atomic.Int64
		svc   *commands.Service
	}
	setEpoch := func(e int64) {
		t.Helper()
		if err := exec(t, dsn, "UPDATE "+schema+".leader SET epoch = $1", e); err != nil {
			t.Fatal(err)
		}
	}
	var in [2]*instance
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for i := range in {
		x := &instance{}
		x.db = openStore(t, dsn, Options{Schema: schema, Fence: func() (int64, bool) { return x.epoch.Load(), true }})
		x.svc = commands.NewService(commands.Config{
			Store: x.db, Clock: clk, Log: zerolog.Nop(),
			Policy:    commands.Policy{Approvers: []string{"U0APPROVER"}},
			Reminders: commands.Reminders{Approval: time.Hour, Repeat: time.Hour},
		})
		in[i] = x
	}
	in[0].epoch.Store(1)
	in[1].epoch.Store(0) // a term that is over: its writes are fenced
	setEpoch(1)
	var rel commands.Release
	err := in[0].db.Update(ctx, func(tx commands.Tx) error {
		var err error
		rel, err = tx.PutRelease(commands.Release{Ticket: "PAY-1", State: commands.StateRequested, Requester: "U0ANN", NeedAdmin: true, Created: t0, Updated: t0})
		if err != nil {
			return err
		}
		return tx.PutDue(commands.Due{At: t0.Add(time.Hour), Kind: commands.DueRemindApproval, Release: rel.ID,
			Guard: commands.Guard{State: rel.State, Version: rel.Version}})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range in {
		n := clk.Created()
		go func() { x.svc.Schedule(ctx); done <- struct{}{} }()
		if err := clk.WaitCreated(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { cancel(); <-done; <-done }()

	// remindEntries returns the epochs of the remind entries so far.
	remindEntries := func() []int64 {
		t.Helper()
		return scalar[[]int64](t, dsn, "SELECT coalesce(array_agg(epoch ORDER BY seq), '{}') FROM "+schema+".audit WHERE action = 'remind'")
	}
	if err := clk.Step(ctx, 90*time.Minute); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{1}, remindEntries()); diff != "" {
		t.Errorf("after the first due time, remind entries by term (-want +got):\n%s", diff)
	}

	// Failover: the second instance takes term 2, the first is deposed.
	in[1].epoch.Store(2)
	setEpoch(2)
	if err := clk.Step(ctx, 2*time.Hour); err != nil { // the repeats at 2h and 3h
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{1, 2, 2}, remindEntries()); diff != "" {
		t.Errorf("after the failover, remind entries by term (-want +got):\n%s", diff)
	}
	dms := scalar[int64](t, dsn, "SELECT count(*) FROM "+schema+".outbox WHERE data->>'kind' = 'dm'")
	if dms != 3 {
		t.Errorf("%d reminder DMs in the outbox, want 3 (one per due time)", dms)
	}
}
