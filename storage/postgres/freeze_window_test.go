package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/clocktest"
)

// TestFreezeWindowOnPostgres runs a weekly freeze window through the
// scheduler on PostgreSQL: planned at the start (a window's key is a hash
// that PostgreSQL must accept as a release ID), started, ended, each once,
// and the next start stored.
func TestFreezeWindowOnPostgres(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	t0 := time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC) // Friday 17:00 in Berlin
	clk := clocktest.New(t0)
	db := openStore(t, dsn, Options{Schema: schema, Fence: func() (int64, bool) { return 1, true }})
	if err := exec(t, dsn, "UPDATE "+schema+".leader SET epoch = 1"); err != nil {
		t.Fatal(err)
	}
	spec, err := cron.ParseStandard("CRON_TZ=Europe/Berlin 0 18 * * FRI")
	if err != nil {
		t.Fatal(err)
	}
	svc := commands.NewService(commands.Config{
		Store: db, Clock: clk, Log: zerolog.Nop(),
		Policy:  commands.Policy{Approvers: []string{"U0APPROVER"}},
		Freezes: []commands.FreezeWindow{{Name: "weekend", Cron: spec, Duration: 63 * time.Hour, Reason: "weekend freeze"}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	n := clk.Created()
	go func() { svc.Schedule(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := clk.WaitCreated(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := clk.Step(ctx, 70*time.Hour); err != nil { // past the start (17:00 UTC) and the end (Monday 08:00 UTC)
		t.Fatal(err)
	}
	got := scalar[[]string](t, dsn, "SELECT coalesce(array_agg(action || ' ' || actor ORDER BY seq), '{}') FROM "+schema+".audit")
	if diff := cmp.Diff([]string{"freeze-start dobrobot", "freeze-end dobrobot"}, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	var next commands.Due
	if err := db.View(ctx, func(tx commands.Tx) error {
		var err error
		next, _, err = tx.NextDue()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC); next.Kind != commands.DueFreezeWindow || !next.At.Equal(want) || next.Repeat != 2 {
		t.Errorf("next due %+v; want the start of %s, the third boundary", next, want)
	}
}
