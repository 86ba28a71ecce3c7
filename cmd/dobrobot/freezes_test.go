package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestConfigFreezes: the timezone and freezes sections are checked at load,
// each mistake named with its window; a good section gives the core its
// windows, a recurring one starting in its own zone.
func TestConfigFreezes(t *testing.T) {
	tests := []struct {
		name, extra string
		want        string // a problem the load reports; "" for none
	}{
		{"good", `timezone: Europe/Berlin
freezes:
  - {name: weekend, cron: "0 18 * * FRI", duration: 63h, tz: Europe/Berlin, environments: [production], reason: weekend freeze, announce: 1h}
  - {name: xmas, from: "2026-12-24T00:00", until: "2026-12-27T09:00", tz: Europe/Berlin}
`, ""},
		{"bad timezone", "timezone: Mars/Olympus\n", `timezone: "Mars/Olympus" is not a time zone`},
		{"bad cron", `freezes: [{name: w, cron: "0 18 * FRI", duration: 1h}]`, `freezes.w: cron "0 18 * FRI"`},
		{"six fields", `freezes: [{name: w, cron: "0 0 18 * * FRI", duration: 1h}]`, `freezes.w: cron "0 0 18 * * FRI"`},
		{"no duration", `freezes: [{name: w, cron: "0 18 * * FRI"}]`, "freezes.w: a recurring window needs a duration"},
		{"both kinds", `freezes: [{name: w, cron: "0 18 * * FRI", duration: 1h, from: "2026-12-24T00:00", until: "2026-12-25T00:00"}]`, "freezes.w: give cron and duration"},
		{"neither kind", `freezes: [{name: w}]`, "freezes.w: give cron and duration (a recurring window) or from and until"},
		{"until before from", `freezes: [{name: w, from: "2026-12-24T00:00", until: "2026-12-23T00:00"}]`, "freezes.w: until (2026-12-23T00:00) must come after from"},
		{"bad from", `freezes: [{name: w, from: "Christmas", until: "2026-12-23T00:00"}]`, `freezes.w: from: "Christmas" is not a time`},
		{"bad tz", `freezes: [{name: w, cron: "0 18 * * FRI", duration: 1h, tz: Europe/Nowhere}]`, `freezes.w: tz "Europe/Nowhere" is not a time zone`},
		{"unknown environment", `freezes: [{name: w, cron: "0 18 * * FRI", duration: 1h, environments: [prod]}]`, `freezes.w.environments: "prod" is not an environment (production)`},
		{"name twice", `freezes: [{name: w, cron: "0 18 * * FRI", duration: 1h}, {name: W, cron: "0 18 * * SAT", duration: 1h}]`, "freezes.W: the name is used twice"},
		{"bad name", `freezes: [{name: "two words", cron: "0 18 * * FRI", duration: 1h}]`, `name "two words"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "c.yaml")
			body := "storage: {path: " + filepath.Join(dir, "c.db") + "}\ntracker: {kind: file, tickets: [{key: PAY-1, summary: x, status: Ready}]}\nroles: {approvers: [U01], admins: [U02]}\n" + tc.extra
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(path, lookupIn(nil))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("load: %v; want a problem saying %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.location().String(); got != "Europe/Berlin" {
				t.Errorf("timezone %s", got)
			}
			ws := c.freezes()
			if len(ws) != 2 {
				t.Fatalf("%d windows, want 2", len(ws))
			}
			// Friday 18:00 in Berlin is 17:00 UTC in winter and 16:00 in summer.
			got := []time.Time{
				ws[0].Cron.Next(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)).UTC(),
				ws[0].Cron.Next(time.Date(2027, 6, 7, 0, 0, 0, 0, time.UTC)).UTC(),
				ws[1].From, ws[1].Until,
			}
			want := []time.Time{
				time.Date(2026, 11, 27, 17, 0, 0, 0, time.UTC), time.Date(2027, 6, 11, 16, 0, 0, 0, time.UTC),
				time.Date(2026, 12, 23, 23, 0, 0, 0, time.UTC), time.Date(2026, 12, 27, 8, 0, 0, 0, time.UTC),
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("window times (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConsoleFreezes: in the console an admin freezes from chat and
// everyone lists the freezes, the configured window among them, in the
// configured timezone.
func TestConsoleFreezes(t *testing.T) {
	cfg, db := consoleConfig(t, `timezone: Europe/Berlin
freezes:
  - {name: weekend, cron: "0 18 * * FRI", duration: 63h, environments: [production], reason: weekend freeze}
`)
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(body), "admins: [U0ADMIN]", "admins: [U00CONSOLE]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "freeze until 2h db migration\nfreezes\n", nil, "--log-level", "warn", "--config", cfg, "console")
	if code != 0 {
		t.Fatalf("console: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"Froze every environment until ", "u00console-", "• weekend: production, from ", " CE", "db migration (unfreeze u00console-"} {
		if !strings.Contains(out, want) {
			t.Errorf("console output does not say %q:\n%s", want, out)
		}
	}
	var starts int
	for _, e := range exported(t, db) {
		if strings.HasPrefix(e, "lock ") { // a freeze from chat is audited as the lock of all it is
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("%d lock entries, want 1: %v", starts, exported(t, db))
	}
}

// TestConfigurationDocFreezes: the freezes example of docs/configuration.md
// loads as written.
func TestConfigurationDocFreezes(t *testing.T) {
	page, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(page), "```yaml\ntimezone: Europe/Berlin\n")
	if !ok {
		t.Fatal("docs/configuration.md has no freezes example starting with timezone: Europe/Berlin")
	}
	block, _, _ = strings.Cut(block, "```")
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	body := "storage: {path: " + filepath.Join(dir, "c.db") + "}\ntracker: {kind: file, tickets: [{key: PAY-1, summary: x, status: Ready}]}\nroles: {approvers: [U01], admins: [U02]}\ntimezone: Europe/Berlin\n" + block
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path, lookupIn(nil))
	if err != nil {
		t.Fatalf("the example does not load: %v\n%s", err, block)
	}
	if got := len(c.freezes()); got != 2 {
		t.Errorf("%d windows, want 2", got)
	}
}
