package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/storagetest"
)

// testDSN returns the test database's DSN, or skips t when there is none.
func testDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("DOBROBOT_PG_DSN")
	if dsn == "" {
		tb.Skip("DOBROBOT_PG_DSN is not set, so the PostgreSQL tests are skipped: " +
			`eval "$(bash .ci/postgres start)" starts a throwaway PostgreSQL and sets it (make test in CI does)`)
	}
	return dsn
}

// newSchema returns a fresh schema name, dropped with everything in it when
// tb ends.
func newSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// openStore opens a store on schema, closed when tb ends.
func openStore(tb testing.TB, dsn string, o Options) *DB {
	tb.Helper()
	if o.MaxConns == 0 {
		o.MaxConns = 4
	}
	db, err := Open(context.Background(), dsn, o)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// exec runs SQL on its own connection, outside the store.
func exec(tb testing.TB, dsn, sql string, args ...any) error {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// scalar runs a query of one value on its own connection.
func scalar[T any](tb testing.TB, dsn, sql string, args ...any) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var v T
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return v
}

func TestContract(t *testing.T) {
	dsn := testDSN(t)
	storagetest.Run(t, func(t *testing.T) (commands.Store, func() commands.Store) {
		schema := newSchema(t, dsn)
		db := openStore(t, dsn, Options{Schema: schema})
		return db, func() commands.Store {
			db.Close()
			db = openStore(t, dsn, Options{Schema: schema})
			return db
		}
	})
}

// TestAuditIsAppendOnly checks that the database itself refuses to change
// or remove audit entries, whoever asks.
func TestAuditIsAppendOnly(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	db := openStore(t, dsn, Options{Schema: schema})
	err := db.Update(context.Background(), func(tx commands.Tx) error {
		_, err := tx.AppendAudit(commands.AuditEntry{Time: time.Now(), Actor: "U01ANN", Action: commands.ActionRequest, Ticket: "PAY-1"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"UPDATE " + schema + ".audit SET actor = 'U0MALLORY'",
		"DELETE FROM " + schema + ".audit",
		"TRUNCATE " + schema + ".audit",
	} {
		err := exec(t, dsn, sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || !strings.Contains(pe.Message, "append-only") {
			t.Errorf("%s: error %v, want the append-only refusal", sql, err)
		}
	}
	var n int
	if err := db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		n++
		if e.Actor != "U01ANN" {
			t.Errorf("entry %d was changed: actor %q", e.Seq, e.Actor)
		}
		return nil
	}); err != nil || n != 1 {
		t.Errorf("Audit: %d entries, %v; want 1, nil", n, err)
	}
}

// TestRoundTrip stores what JSON and text columns find awkward: NUL bytes
// and invalid UTF-8 in free text, nanosecond times, and refuses keys a text
// column cannot hold without spoiling the transaction.
func TestRoundTrip(t *testing.T) {
	dsn := testDSN(t)
	db := openStore(t, dsn, Options{Schema: newSchema(t, dsn)})
	ctx := context.Background()
	at := time.Date(2025, 3, 3, 9, 0, 0, 123456789, time.UTC)
	in := commands.Release{
		Ticket: "PAY-1", State: commands.StateFailed, Note: "a\x00b\xffc", Created: at, Updated: at,
		LastHook: &commands.HookResult{Output: "binary \x00\x01 output", Duration: time.Nanosecond, Ended: at},
	}
	var stored commands.Release
	var badTicket, badComponent, badEvent error
	err := db.Update(ctx, func(tx commands.Tx) error {
		var err error
		if stored, err = tx.PutRelease(in); err != nil {
			return err
		}
		_, badTicket = tx.PutRelease(commands.Release{Ticket: "PAY\x00-2"})
		badComponent = tx.PutLock(commands.Lock{Component: "back\xffend"})
		badEvent = tx.PutEvent(commands.InboxEvent{ID: "Ev\x00"})
		_, err = tx.AppendAudit(commands.AuditEntry{Time: at, Actor: "U01\x00ANN", Action: commands.ActionRequest, Ticket: "PAY-1", Detail: "x\xff"})
		return err
	})
	if err != nil {
		t.Fatalf("an Update whose fn carried on after refused writes: %v", err)
	}
	for name, err := range map[string]error{"ticket with NUL": badTicket, "component with bad UTF-8": badComponent, "event ID with NUL": badEvent} {
		if got := commands.ErrorCode(err); got != commands.EINVALID {
			t.Errorf("%s: error %v (code %q), want %q", name, err, got, commands.EINVALID)
		}
	}
	var got commands.Release
	if err := db.View(ctx, func(tx commands.Tx) error {
		var err error
		got, err = tx.Release(stored.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := in
	want.ID, want.Version = stored.ID, 1
	want.Note = "a\x00b\uFFFDc" // encoding/json's own replacement, as in bbolt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("release read back (-want +got):\n%s", diff)
	}
	v := commands.NewVerifier()
	if err := db.Audit(ctx, commands.AuditFilter{Since: at, Until: at.Add(time.Nanosecond)}, v.Add); err != nil {
		t.Fatalf("the entry at %v does not verify: %v", at, err)
	}
	if n, _ := v.Head(); n != 1 {
		t.Errorf("Audit for exactly [%v, +1ns) found %d entries, want 1 (times kept to the nanosecond)", at, n)
	}
}

// TestSchemaVersion checks that a schema written by a newer dobrobot is
// refused and left alone, and that two stores opening one schema at once
// both work (one migrates).
func TestSchemaVersion(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			db, err := Open(context.Background(), dsn, Options{Schema: schema, MaxConns: 2})
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("two stores opening a new schema at once: %v", err)
		}
	}
	ro, err := Open(context.Background(), dsn, Options{Schema: schema, ReadOnly: true})
	if err != nil {
		t.Fatalf("a read-only Open of an existing schema: %v", err)
	}
	if err := ro.Update(context.Background(), func(commands.Tx) error { return nil }); err == nil {
		t.Errorf("Update on a read-only store succeeded")
	}
	ro.Close()
	if _, err := Open(context.Background(), dsn, Options{Schema: schema + "_none", ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "holds no dobrobot data yet") {
		t.Errorf("a read-only Open of a missing schema: %v", err)
	}
	if n := scalar[int64](t, dsn, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema+"_none"); n != 0 {
		t.Errorf("a read-only Open created schema %s_none", schema)
	}
	if err := exec(t, dsn, "UPDATE "+schema+".meta SET value = '99' WHERE key = 'schema'"); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), dsn, Options{Schema: schema})
	if err == nil || !strings.Contains(err.Error(), "version 99, newer than this dobrobot knows") {
		t.Errorf("Open of a schema of version 99: %v", err)
	}

	for _, bad := range []string{"Dobrobot", "a-b", "x;drop", strings.Repeat("a", 64)} {
		if _, err := Open(context.Background(), dsn, Options{Schema: bad}); err == nil || !strings.Contains(err.Error(), "not a plain lower-case name") {
			t.Errorf("Open with schema %q: %v", bad, err)
		}
	}
}

// TestOpenErrors checks what an operator sees for a bad DSN: no password.
func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct{ dsn, want string }{
		{"", "no DSN given"},
		{"postgres://bot:s3cret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "cannot reach the database"},
		{"host=127.0.0.1 port=1 user=bot password=s3cret sslmode=disable connect_timeout=2", "cannot reach the database"},
		{"postgres://bot:s3cret@127.0.0.1:notaport/db", "does not parse"},
	} {
		_, err := Open(ctx, tc.dsn, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q): %v, want %q", tc.dsn, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error shows the password: %v", tc.dsn, err)
		}
	}
}

// TestVerifyRecent checks the start-up check of the newest entries, and that
// it finds an entry changed by an owner who switched the trigger off.
func TestVerifyRecent(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	db := openStore(t, dsn, Options{Schema: schema})
	ctx := context.Background()
	if n, err := db.VerifyRecent(ctx, 10); n != 0 || err != nil {
		t.Errorf("VerifyRecent of an empty log = %d, %v; want 0, nil", n, err)
	}
	err := db.Update(ctx, func(tx commands.Tx) error {
		for i := range 5 {
			if _, err := tx.AppendAudit(commands.AuditEntry{Time: time.Now(), Actor: "U01ANN", Action: commands.ActionLock, Detail: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ n, want int }{{3, 3}, {5, 5}, {10, 5}} {
		if got, err := db.VerifyRecent(ctx, tc.n); got != tc.want || err != nil {
			t.Errorf("VerifyRecent(%d) = %d, %v; want %d, nil", tc.n, got, err, tc.want)
		}
	}
	if err := exec(t, dsn, "ALTER TABLE "+schema+".audit DISABLE TRIGGER audit_append_only; UPDATE "+schema+".audit SET detail = 'edited' WHERE seq = 4"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 5} {
		_, err := db.VerifyRecent(ctx, n)
		var ce *commands.ChainError
		if !errors.As(err, &ce) || ce.Seq != 4 {
			t.Errorf("VerifyRecent(%d) after seq 4 was edited: %v, want a break at seq 4", n, err)
		}
	}
	if err := exec(t, dsn, "DELETE FROM "+schema+".audit WHERE seq = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.VerifyRecent(ctx, 10); err == nil || !strings.Contains(err.Error(), "expected 1") {
		t.Errorf("VerifyRecent(10) after seq 1 was deleted: %v", err)
	}
}

// TestFence checks the fence on its own: a store whose process believes it
// holds a term writes only while that term is the database's current one
// and the process says it still leads, and each audit entry records its term.
func TestFence(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	var (
		mine    atomic.Int64
		leading atomic.Bool
	)
	leading.Store(true)
	db := openStore(t, dsn, Options{Schema: schema, Fence: func() (int64, bool) { return mine.Load(), leading.Load() }})
	write := func() error {
		return db.Update(context.Background(), func(tx commands.Tx) error {
			_, err := tx.AppendAudit(commands.AuditEntry{Time: time.Now(), Actor: "U01ANN", Action: commands.ActionLock})
			return err
		})
	}
	setEpoch := func(e int64) {
		t.Helper()
		if err := exec(t, dsn, "UPDATE "+schema+".leader SET epoch = $1", e); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name           string
		mine, current  int64
		leading, fence bool
	}{
		{"the current term", 0, 0, true, false},
		{"a newer term began", 0, 1, true, true},
		{"this process holds the newer term", 1, 1, true, false},
		{"its lease ran out", 1, 1, false, true},
		{"a term this process never held", 3, 1, true, true},
	}
	var want []int64
	for _, s := range steps {
		mine.Store(s.mine)
		leading.Store(s.leading)
		setEpoch(s.current)
		err := write()
		if s.fence {
			if !errors.Is(err, ErrFenced) || commands.ErrorCode(err) != commands.EUNAVAILABLE || commands.ErrorMessage(err) == "" {
				t.Errorf("%s: %v, want ErrFenced (EUNAVAILABLE) with a message", s.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
		want = append(want, s.current)
	}
	if got := scalar[[]int64](t, dsn, "SELECT coalesce(array_agg(epoch ORDER BY seq), '{}') FROM "+schema+".audit"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit epochs %v, want %v", got, want)
	}
}
