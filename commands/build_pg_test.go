package commands_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/postgres"
)

// TestBuildPostgres: on PostgreSQL a delivery is answered the same by a
// Service on another connection (a restart, or the next leader), and an
// instance that does not lead stores nothing and answers unavailable, so
// that CI's retry reaches the leader and is judged there.
func TestBuildPostgres(t *testing.T) {
	dsn := os.Getenv("DOBROBOT_PG_DSN")
	if dsn == "" {
		t.Skip("DOBROBOT_PG_DSN is not set: the PostgreSQL test is skipped (bash .ci/postgres start sets it up)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_build_" + hex.EncodeToString(b[:])
	var leads atomic.Bool
	leads.Store(true)
	open := func() *postgres.DB {
		db, err := postgres.Open(context.Background(), dsn, postgres.Options{Schema: schema, MaxConns: 2,
			Fence: func() (int64, bool) { return 0, leads.Load() }})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return db
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	first := open()
	defer first.Close()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	service := func(db commands.Store) *commands.Service {
		return commands.NewService(commands.Config{
			Store:   db,
			Tracker: &fakeTracker{tickets: map[string]commands.Ticket{"PAY-2": readyTicket("PAY-2", "backend")}, errs: map[string]error{}},
			Policy:  commands.Policy{Envs: []commands.EnvPolicy{{Name: "qa", Components: []string{"backend"}, Approvals: 1, AutoDeploy: true}}},
			Now:     func() time.Time { return now },
			Log:     zerolog.Nop(),
		})
	}
	ctx := context.Background()
	build := ciBuild("pg-1", "PAY-2", "qa", "1.0.0")
	got, err := service(first).Build(ctx, build)
	if err != nil {
		t.Fatal(err)
	}
	if got.Outcome != commands.BuildChanged || got.State != commands.StateDeploying {
		t.Fatalf("first answer %+v, want changed, deploying", got)
	}

	second := open()
	defer second.Close()
	again, err := service(second).Build(ctx, build)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(commands.BuildAnswer{Outcome: commands.BuildSeen, Release: got.Release, State: got.State, First: &got}, again); diff != "" {
		t.Errorf("answer on another connection (-want +got):\n%s", diff)
	}

	leads.Store(false)
	standby := ciBuild("pg-2", "PAY-2", "qa", "1.0.1")
	standby.Status = commands.BuildFailure
	if _, err := service(second).Build(ctx, standby); commands.ErrorCode(err) != commands.EUNAVAILABLE {
		t.Errorf("Build on a standby: %v (code %s), want unavailable", err, commands.ErrorCode(err))
	}
	leads.Store(true)
	err = second.View(ctx, func(tx commands.Tx) error {
		if _, ok, err := tx.Event(standby.Delivery); err != nil || ok {
			t.Errorf("the standby's delivery is stored (%v, %v)", ok, err)
		}
		rel, err := tx.LastRelease("PAY-2")
		if err == nil && (rel.CI == nil || rel.CI.Status != commands.BuildSuccess || rel.CI.Build != "pg-1") {
			t.Errorf("release's CI status %+v, want pg-1's success", rel.CI)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
