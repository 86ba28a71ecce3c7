package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/storagetest"
)

// TestPostgresVerbs checks what each verb does with storage.kind postgres:
// the ones that need a bbolt file refuse with a hint, the others say what is
// missing, and with a database config check says who leads.
func TestPostgresVerbs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("tickets.yaml", "tickets:\n  - {key: PAY-1, summary: x, status: Ready}\n")
	schema := "dobrobot"
	if dsn := os.Getenv("DOBROBOT_PG_DSN"); dsn != "" {
		schema = pgSchema(t, dsn)
	}
	cfg := write("pg.yaml", `
slack: {app_token: "${APP}", bot_token: "${BOT}", channel: C0REL, api_url: "http://127.0.0.1:1"}
storage: {kind: postgres, dsn: "${PG}", schema: `+schema+`}
tracker: {kind: file, file: tickets.yaml}
roles: {approvers: [U01], admins: [U02]}
`)
	unset := map[string]string{"APP": "xapp-1", "BOT": "xoxb-1"}
	emptyPG := map[string]string{"APP": "xapp-1", "BOT": "xoxb-1", "PG": ""}
	unreachable := map[string]string{"APP": "xapp-1", "BOT": "xoxb-1", "PG": "postgres://bot:s3cret@127.0.0.1:1/db?sslmode=disable"}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		contains string
	}{
		{"a storage kind that does not exist", []string{"--config", write("kind.yaml", "storage: {kind: mysql}\n"), "config", "check"}, nil, exitUsage,
			`storage.kind is "mysql": use bbolt`},
		{"too many Slack connections", []string{"--config", write("conns.yaml", "slack: {connections: 11}\n"), "config", "check"}, nil, exitUsage,
			"slack.connections is 11: use 1 to 4"},
		{"run, the DSN's variable unset", []string{"--config", cfg, "run"}, unset, exitUsage, "storage.dsn (line 3): ${PG} is not set"},
		{"run without a DSN", []string{"--config", cfg, "run"}, emptyPG, exitUsage, "storage.dsn is empty"},
		{"audit verify without a DSN", []string{"--config", cfg, "audit", "verify"}, emptyPG, exitUsage, "storage.dsn is empty"},
		{"audit export, database unreachable", []string{"--config", cfg, "audit", "export"}, unreachable, exitRuntime, "postgres: cannot reach the database"},
		{"config check, database unreachable", []string{"--config", cfg, "config", "check"}, unreachable, exitRuntime, "storage: postgres: cannot reach the database"},
		{"console", []string{"--config", cfg, "console"}, emptyPG, exitUsage, "the console works on a bbolt file, and storage.kind is postgres: give --db FILE"},
		{"backup", []string{"--config", cfg, "backup", "--out", filepath.Join(dir, "copy.db")}, emptyPG, exitUsage, "back the database up with pg_dump"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, "", tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
			if !strings.Contains(out+errs, tt.contains) {
				t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", tt.contains, out, errs)
			}
			if strings.Contains(out+errs, "s3cret") {
				t.Errorf("the output shows the database password:\n%s%s", out, errs)
			}
		})
	}

	dsn := os.Getenv("DOBROBOT_PG_DSN")
	if dsn == "" {
		return
	}
	env := map[string]string{"APP": "xapp-1", "BOT": "xoxb-1", "PG": dsn}
	for _, want := range []string{
		"storage: PostgreSQL ok; schema " + schema + " holds no dobrobot data yet",
		"storage: PostgreSQL ok (schema " + schema + "); no dobrobot has led yet",
	} {
		_, out, errs := run(t, "", env, "--config", cfg, "config", "check")
		if !strings.Contains(out, want) {
			t.Errorf("config check: output lacks %q\nstdout: %s\nstderr: %s", want, out, errs)
		}
		// Opening the store for writing creates the schema.
		c, err := LoadConfig(cfg, lookupIn(env))
		if err != nil {
			t.Fatal(err)
		}
		db, err := (&app{}).openPostgres(context.Background(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

// TestLeaderOnly checks that the Slack transport of a deposed leader sends
// nothing: not a request, nor a write on a connection opened while it led.
func TestLeaderOnly(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	var leading atomic.Bool
	leading.Store(true)
	base := leaderConns(leading.Load)
	defer base.CloseIdleConnections()
	c := &http.Client{Transport: leaderOnly{base: base, leading: leading.Load}}

	post := func() error {
		resp, err := c.Post(srv.URL+"/api/chat.postMessage", "application/json", strings.NewReader(`{"text":"hi"}`))
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := post(); err != nil || calls.Load() != 1 {
		t.Fatalf("a leader's call: %v, %d calls", err, calls.Load())
	}
	leading.Store(false)
	if err := post(); !errors.Is(err, errNotLeader) || calls.Load() != 1 {
		t.Errorf("a deposed leader's call: %v, %d calls; want errNotLeader and no call", err, calls.Load())
	}
	// Past RoundTrip's check (as when frozen right after it), the pooled
	// connection still refuses to write.
	direct := &http.Client{Transport: base}
	resp, err := direct.Post(srv.URL+"/api/chat.postMessage", "application/json", strings.NewReader(`{"text":"hi"}`))
	if err == nil {
		resp.Body.Close()
	}
	// The refused write closes the connection, so the transport may report
	// that instead of errNotLeader.
	if err == nil || calls.Load() != 1 {
		t.Errorf("a write on a leader's connection after the lease ran out: %v, %d calls; want an error and no call", err, calls.Load())
	}
}

// TestLeaderStore checks that a deposed leader's bot sees an empty outbox.
func TestLeaderStore(t *testing.T) {
	db := storagetest.Open(t)
	ctx := context.Background()
	if err := db.Update(ctx, func(tx commands.Tx) error {
		_, err := tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U01", Text: "hi"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var leading atomic.Bool
	s := leaderStore{Store: db, leading: leading.Load}
	for _, lead := range []bool{true, false} {
		leading.Store(lead)
		es, err := s.Pending(ctx, 10)
		if want := map[bool]int{true: 1, false: 0}[lead]; err != nil || len(es) != want {
			t.Errorf("Pending while leading=%t: %d effects, %v; want %d", lead, len(es), err, want)
		}
	}
}
