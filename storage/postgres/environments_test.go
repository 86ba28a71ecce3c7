package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/dobrobot/dobrobot/commands"
)

// TestEnvironmentsMigration: a schema of version 3, as the release before
// environments left it (a release requested, backend locked by a deploying
// one, ios frozen, each with its audit entries), opens, migrates to version
// 4 in Open's one transaction, verifies and replays to its state, and reads
// as the default environment. The old freeze is the freeze of every
// environment: a freeze in qa is another row, and DeleteLock by "" removes
// the old one only. What is where starts empty. A read-only Open of the old
// schema asks for the upgrade first.
func TestEnvironmentsMigration(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	ctx := context.Background()
	q := newQueries(schema)

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	sql := "CREATE SCHEMA " + q.schema + ";\n"
	for _, m := range migrations[:3] {
		sql += q.expand(m)
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, q.setVersion, "3"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	rel := func(id uint64, ticket string, state commands.State, locks ...string) commands.Release {
		return commands.Release{ID: id, Ticket: ticket, State: state, Requester: "U0ANN", Components: locks, Locks: locks,
			Created: t0, Updated: t0, Version: 1}
	}
	rels := []commands.Release{rel(1, "PAY-1", commands.StateDeploying, "backend"), rel(2, "PAY-2", commands.StateRequested)}
	for _, r := range rels {
		data, _ := json.Marshal(r)
		if _, err := conn.Exec(ctx, q.insertRelease, int64(r.ID), r.Ticket, true, int64(r.Version), data); err != nil {
			t.Fatal(err)
		}
	}
	oldLocks := []commands.Lock{
		{Component: "backend", Release: 1, Ticket: "PAY-1", By: "U0ANN", Since: t0},
		{Component: "ios", By: "U0ADMIN", Since: t0, Reason: "store review"},
	}
	for _, l := range oldLocks {
		data, _ := json.Marshal(l)
		if _, err := conn.Exec(ctx, q.expand(`INSERT INTO {s}.locks (component, release, data) VALUES ($1, $2, $3)`), l.Component, int64(l.Release), data); err != nil {
			t.Fatal(err)
		}
	}
	seq, hash := uint64(0), commands.GenesisHash
	for i, e := range []commands.AuditEntry{
		{Actor: "U0ANN", Action: commands.ActionRequest, Ticket: "PAY-1", To: commands.StateRequested},
		{Actor: "U0BOB", Action: commands.ActionAccept, Ticket: "PAY-1", From: commands.StateRequested, To: commands.StateAccepted},
		{Actor: "U0ANN", Action: commands.ActionStart, Ticket: "PAY-1", From: commands.StateAccepted, To: commands.StateDeploying, Detail: "backend"},
		{Actor: "U0ANN", Action: commands.ActionRequest, Ticket: "PAY-2", To: commands.StateRequested},
		{Actor: "U0ADMIN", Action: commands.ActionLock, Detail: "ios: store review"},
	} {
		e.Time = t0.Add(time.Duration(i) * time.Minute)
		e = commands.Seal(e, seq, hash)
		_, err := conn.Exec(ctx, q.expand(`INSERT INTO {s}.audit (seq, time, at, actor, action, ticket, from_state, to_state, detail, prev_hash, hash, epoch)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0)`),
			int64(e.Seq), e.Time.Format(commands.TimeFormat), e.Time, e.Actor, string(e.Action), e.Ticket, string(e.From), string(e.To), e.Detail, e.PrevHash, e.Hash)
		if err != nil {
			t.Fatal(err)
		}
		seq, hash = e.Seq, e.Hash
	}

	if _, err := Open(ctx, dsn, Options{Schema: schema, ReadOnly: true}); err == nil {
		t.Errorf("a read-only Open of a version 3 schema succeeded; want it to ask for the upgrade")
	}
	db := openStore(t, dsn, Options{Schema: schema})
	if v := scalar[string](t, dsn, "SELECT value FROM "+schema+".meta WHERE key = 'schema'"); v != fmt.Sprint(SchemaVersion) {
		t.Errorf("schema version %s after Open, want %d", v, SchemaVersion)
	}
	if _, err := commands.VerifyStore(ctx, db, nil); err != nil {
		t.Fatalf("the old schema's chain or state does not verify after the migration: %v", err)
	}

	type row struct{ Ticket, Env string }
	got := map[string]any{}
	if err := db.View(ctx, func(tx commands.Tx) error {
		for _, ticket := range []string{"PAY-1", "PAY-2"} {
			open, err := tx.OpenReleases(ticket)
			if err != nil {
				return err
			}
			var rows []row
			for _, r := range open {
				rows = append(rows, row{r.Ticket, r.EnvName()})
			}
			got["open "+ticket] = rows
		}
		locks, err := tx.Locks()
		got["locks"] = locks
		if err != nil {
			return err
		}
		d, err := tx.Deployed()
		got["deployed"] = len(d)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	utc := cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })
	want := map[string]any{
		"open PAY-1": []row{{"PAY-1", commands.DefaultEnv}},
		"open PAY-2": []row{{"PAY-2", commands.DefaultEnv}},
		"locks":      oldLocks,
		"deployed":   0,
	}
	if diff := cmp.Diff(want, got, utc); diff != "" {
		t.Errorf("the old schema after the migration (-want +got):\n%s", diff)
	}

	qa := commands.Lock{Component: "ios", Env: "qa", By: "U0ADMIN", Since: t0}
	var steps [][]commands.Lock
	err = db.Update(ctx, func(tx commands.Tx) error {
		if err := tx.PutLock(qa); err != nil {
			return err
		}
		for _, env := range []string{"", "qa"} {
			if err := tx.DeleteLock("ios", 0, env); err != nil {
				return err
			}
			ls, err := tx.Locks()
			if err != nil {
				return err
			}
			steps = append(steps, ls)
		}
		return tx.PutDeployed(commands.Deployed{Env: "qa", Component: "backend", Release: 1, Ticket: "PAY-1", By: "U0ANN", Done: t0})
	})
	if err != nil {
		t.Fatal(err)
	}
	wantSteps := [][]commands.Lock{{oldLocks[0], qa}, {oldLocks[0]}}
	if diff := cmp.Diff(wantSteps, steps, utc); diff != "" {
		t.Errorf("locks after deleting the old freeze, then the qa one (-want +got):\n%s", diff)
	}
}
