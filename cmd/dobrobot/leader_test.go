package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
