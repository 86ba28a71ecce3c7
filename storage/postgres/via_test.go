package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/dobrobot/dobrobot/commands"
)

// TestAuditViaMigration: a schema of version 1, whose audit table has no via
// column, with entries written then, opens, migrates, keeps verifying, and
// takes new entries with via that verify after the old ones (issue 12, item
// 9). A read-only Open of the old schema asks for the upgrade first.
func TestAuditViaMigration(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	ctx := context.Background()
	q := newQueries(schema)

	// Version 1 as an older dobrobot left it, with three entries.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+q.schema+";\n"+q.expand(migrations[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, q.setVersion, "1"); err != nil {
		t.Fatal(err)
	}
	seq, hash := uint64(0), commands.GenesisHash
	var old []commands.AuditEntry
	for i := range 3 {
		e := commands.Seal(commands.AuditEntry{Time: time.Date(2025, 3, 3, 9, i, 0, 5, time.UTC), Actor: "U0ANN",
			Action: commands.ActionRequest, Ticket: fmt.Sprintf("PAY-%d", i+1), To: commands.StateRequested}, seq, hash)
		_, err := conn.Exec(ctx, q.expand(`INSERT INTO {s}.audit (seq, time, at, actor, action, ticket, from_state, to_state, detail, prev_hash, hash, epoch)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0)`),
			int64(e.Seq), e.Time.Format(commands.TimeFormat), e.Time, e.Actor, string(e.Action), e.Ticket, string(e.From), string(e.To), e.Detail, e.PrevHash, e.Hash)
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, e)
		seq, hash = e.Seq, e.Hash
	}

	if _, err := Open(ctx, dsn, Options{Schema: schema, ReadOnly: true}); err == nil {
		t.Errorf("a read-only Open of a version 1 schema succeeded; want it to ask for the upgrade")
	}
	db := openStore(t, dsn, Options{Schema: schema})
	if v := scalar[string](t, dsn, "SELECT value FROM "+schema+".meta WHERE key = 'schema'"); v != fmt.Sprint(SchemaVersion) {
		t.Errorf("schema version %s after Open, want %d", v, SchemaVersion)
	}
	if n, err := db.VerifyRecent(ctx, 10); err != nil || n != 3 {
		t.Errorf("VerifyRecent after the migration: %d, %v", n, err)
	}
	if err := db.Update(ctx, func(tx commands.Tx) error {
		_, err := tx.AppendAudit(commands.AuditEntry{Time: time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC), Actor: "U0ROOT",
			Action: commands.ActionOperator, Detail: "root on host", Via: commands.SourceConsole})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []commands.AuditEntry
	v := commands.NewVerifier()
	if err := db.Audit(ctx, commands.AuditFilter{}, func(e commands.AuditEntry) error {
		got = append(got, e)
		return v.Add(e)
	}); err != nil {
		t.Fatalf("the whole chain after the migration: %v", err)
	}
	if diff := cmp.Diff(old, got[:3], cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("the old entries changed (-before +after):\n%s", diff)
	}
	if len(got) != 4 || got[3].Via != commands.SourceConsole {
		t.Errorf("the new entry: %+v", got[3:])
	}
	if n, err := db.VerifyRecent(ctx, 2); err != nil || n != 2 {
		t.Errorf("VerifyRecent over old and new: %d, %v", n, err)
	}
}
