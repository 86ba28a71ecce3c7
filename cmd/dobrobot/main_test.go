package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/cmd/internal/audit"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
	"github.com/dobrobot/dobrobot/tracker/fakejira"
	"github.com/google/go-cmp/cmp"
)

// run calls Main in-process and returns its exit code, stdout and stderr.
func run(t *testing.T, stdin string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errb, lookupIn(env))
	return code, out.String(), errb.String()
}

// TestConsoleRelease pipes a whole release through the demo console, with its
// real hooks (sleep and true): done in qa, then production requested by
// itself, approved twice and claimed. It then exports and verifies the
// audit log.
func TestConsoleRelease(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.db")
	script := strings.Join([]string{
		"dobro DEMO-1 version 2.4.0",
		"dobro DEMO-3",
		"dep start DEMO-1",
		"queue",
		"dep finish DEMO-1",
		"/as approver",
		"accept DEMO-1",
		"/as lead",
		"accept DEMO-1",
		"/as admin",
		"here DEMO-1",
		"frobnicate",
	}, "\n")
	code, out, errs := run(t, script, nil, "--log-level", "warn", "console", "--db", db)
	if code != 0 {
		t.Fatalf("console exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{
		"→ to me only: DEMO-1 in qa, version 2.4.0 is in the queue (#1), accepted: qa needs no approval.",
		"DEMO-3 cannot be released: status is In Progress, needs Ready for Release. Not queued.",
		"↳ thread of DEMO-1: start hook succeeded",
		"• backend is locked in qa by DEMO-1",
		"▣ card DEMO-1: DEMO-1 in qa, version 2.4.0 — DONE — Faster checkout",
		"✉ DM to approver: Done in qa, requested by itself for @me (request: auto): DEMO-1 in production, version 2.4.0 — Faster checkout.",
		"[Approve] → accept DEMO-1 in production",
		"→ to approver only: You approved DEMO-1 (1 of 2): it needs 1 more.",
		"→ to lead only: You accepted DEMO-1.",
		"✉ DM to admin: DEMO-1 in production, version 2.4.0 was accepted and needs an admin",
		"→ to admin only: You claimed DEMO-1.",
		`"frobnicate" is not a command`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q\n%s", want, out)
		}
	}

	code, out, errs = run(t, "", nil, "audit", "export", "--db", db)
	if code != 0 {
		t.Fatalf("audit export exited %d: %s", code, errs)
	}
	var got []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e commands.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		got = append(got, string(e.Action)+" "+e.Ticket+" "+e.Actor)
	}
	want := []string{
		"request DEMO-1 U00CONSOLE",
		"accept DEMO-1 U00CONSOLE", // approval: none in qa
		"refused DEMO-3 U00CONSOLE",
		"start DEMO-1 U00CONSOLE",
		"started DEMO-1 U00CONSOLE",
		"finish DEMO-1 U00CONSOLE",
		"request DEMO-1 U00CONSOLE", // production, by request: auto
		"approve DEMO-1 U0APPROVER",
		"accept DEMO-1 U0LEAD",
		"claim DEMO-1 U0ADMIN",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("exported audit (-want +got):\n%s", diff)
	}

	code, out, _ = run(t, "", nil, "audit", "export", "--db", db, "--format", "csv", "--ticket", "demo-3")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil {
		t.Fatalf("csv export: exit %d, %v", code, err)
	}
	if diff := cmp.Diff(commands.AuditColumns, rows[0]); diff != "" {
		t.Errorf("csv header (-want +got):\n%s", diff)
	}
	if len(rows) != 2 || rows[1][4] != "DEMO-3" || rows[1][3] != "refused" {
		t.Errorf("csv rows for DEMO-3 = %v", rows[1:])
	}

	code, out, _ = run(t, "", nil, "audit", "export", "--db", db, "--since", time.Now().Add(time.Hour).Format(time.RFC3339))
	if code != 0 || out != "" {
		t.Errorf("export since the future: exit %d, %q", code, out)
	}

	code, out, errs = run(t, "", nil, "audit", "verify", "--db", db)
	if code != 0 || !strings.HasPrefix(out, "audit chain ok: 10 entries, head ") {
		t.Errorf("audit verify: exit %d, %q %q", code, out, errs)
	}

	backup := filepath.Join(t.TempDir(), "copy.db")
	if code, out, errs = run(t, "", nil, "backup", "--db", db, "--out", backup); code != 0 {
		t.Fatalf("backup: exit %d %q %q", code, out, errs)
	}
	if code, out, _ = run(t, "", nil, "audit", "verify", "--db", backup); code != 0 || !strings.HasPrefix(out, "audit chain ok: 10 entries") {
		t.Errorf("verify of the backup: exit %d, %q", code, out)
	}
}

func TestLockedDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "held.db")
	db, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	code, _, errs := run(t, "queue\n", nil, "console", "--db", path)
	if code != exitRuntime {
		t.Errorf("second instance exited %d, want %d", code, exitRuntime)
	}
	if !strings.Contains(errs, "another dobrobot running?") {
		t.Errorf("stderr = %q, want it to name the lock", errs)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("second instance took %v to give up", d)
	}
}

func TestUsageAndConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `
slack: {app_token: "${APP}", bot_token: "${BOT}", channel: C0REL, api_url: "http://127.0.0.1:1"}
storage: {path: `+filepath.Join(dir, "x.db")+`}
tracker: {kind: file, file: tickets.yaml, timeout: 3s}
roles: {approvers: [U01], admins: [U02]}
components: [Backend]
`)
	write("tickets.yaml", "tickets:\n  - {key: PAY-1, summary: x, status: Ready}\n")
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		contains string
	}{
		{"unknown verb", []string{"deploy"}, nil, exitUsage, "unexpected argument deploy"},
		{"version", []string{"version"}, nil, exitOK, "dobrobot dev"},
		{"no config for config check", []string{"config", "check"}, nil, exitUsage, "needs a configuration"},
		{"missing file", []string{"--config", filepath.Join(dir, "nope.yaml"), "config", "check"}, nil, exitUsage, "no such file"},
		{"unknown key", []string{"--config", write("typo.yaml", "componets: [a]\n"), "config", "check"}, nil, exitUsage, "field componets not found"},
		{"bad duration", []string{"--config", write("dur.yaml", "tracker: {timeout: soon}\n"), "config", "check"}, nil, exitUsage, `"soon" is not a duration`},
		{"bad role", []string{"--config", write("role.yaml", "roles: {admins: [ann]}\n"), "config", "check"}, nil, exitUsage, `"ann" is not a Slack user`},
		{"bad component", []string{"--config", write("comp.yaml", "components: [all]\n"), "config", "check"}, nil, exitUsage, `"all" is not a valid component`},
		{"both hook kinds", []string{"--config", write("hook.yaml", "hooks: {start: {exec: [x], webhook: {url: https://x}}}\n"), "config", "check"}, nil, exitUsage, "not both"},
		{"empty file", []string{"--config", write("empty.yaml", ""), "config", "check"}, nil, exitUsage, "the file is empty"},
		{"config check, slack vars unset", []string{"--config", good, "config", "check"}, nil, exitUsage, "slack.app_token (line 2): ${APP} is not set; slack.bot_token (line 2): ${BOT} is not set"},
		{"config check ok, slack vars empty", []string{"--config", good, "config", "check"}, map[string]string{"APP": "", "BOT": ""}, exitOK, "slack.app_token is empty; slack.bot_token is empty"},
		{"config from the environment, Slack unreachable", []string{"config", "check"}, map[string]string{"DOBROBOT_CONFIG": good, "APP": "xapp-1", "BOT": "xoxb-1"}, exitRuntime, "Slack: could not reach http://127.0.0.1:1/"},
		{"run without slack tokens", []string{"--config", good, "run"}, map[string]string{"APP": "", "BOT": ""}, exitUsage, "slack.app_token is empty"},
		{"export a missing database", []string{"audit", "export", "--db", filepath.Join(dir, "none.db")}, nil, exitUsage, "no database at"},
		{"export a bad ticket", []string{"audit", "export", "--ticket", "PAY-1;rm"}, nil, exitUsage, "is not a ticket key"},
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
		})
	}
}

func TestConfigExpansionCannotInjectYAML(t *testing.T) {
	c, err := parseConfig([]byte("slack: {bot_token: \"${BOT}\", channel: C1}\ncomponents: [a]\n"), func(k string) (string, bool) {
		return "xoxb-1\ncomponents: [evil]", true
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Slack.BotToken != "xoxb-1\ncomponents: [evil]" || !cmp.Equal(c.Components, []string{"a"}) {
		t.Errorf("expansion changed the structure: %+v", c)
	}
}

func TestDemoConfig(t *testing.T) {
	c := DemoConfig()
	if len(c.Tracker.Tickets) < 4 || len(c.Roles.Approvers) == 0 || len(c.Roles.Admins) == 0 || c.Users["approver"] == "" {
		t.Errorf("demo config is incomplete: %+v", c)
	}
}

// TestAuditDocScript runs the re-check script of docs/audit.md on an export,
// so the documented bytes stay the hashed ones.
func TestAuditDocScript(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	doc, err := os.ReadFile("../../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```python\n")
	script, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/audit.md has no python block")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "a.db")
	if code, out, errs := run(t, "dobro DEMO-2 no_need_admin tab\there & <b>\n/as approver\naccept DEMO-2\nreject DEMO-2 é ✓\n", nil, "--log-level", "warn", "console", "--db", db); code != 0 {
		t.Fatalf("console: %d %s %s", code, out, errs)
	}
	code, export, _ := run(t, "", nil, "audit", "export", "--db", db)
	if code != 0 || strings.Count(export, "\n") != 3 {
		t.Fatalf("export: %d %q", code, export)
	}
	// A log from before via existed, continued by entries with one, then by
	// entries with an environment and a version (one with no via).
	var mixed []byte
	prevSeq, prevHash := uint64(0), commands.GenesisHash
	for _, f := range [][3]string{{"", "", ""}, {"", "", ""}, {commands.SourceSlack, "", ""}, {commands.SourceDobrobot, "", ""},
		{commands.SourceSlack, "qa", "v2.4.0"}, {"", "production", ""}, {commands.SourceDobrobot, "", "v2.4.1"}} {
		e := commands.Seal(commands.AuditEntry{Time: time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC), Actor: "U0ANN",
			Action: commands.ActionRequest, Ticket: "PAY-1", To: commands.StateRequested, Via: f[0], Env: f[1], Version: f[2]}, prevSeq, prevHash)
		mixed, _ = audit.AppendLine(mixed, e)
		prevSeq, prevHash = e.Seq, e.Hash
	}
	if !strings.Contains(export, `"via":"console"`) {
		t.Errorf("the console's entries do not say via console:\n%s", export)
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"intact", export, "ok, head"},
		{"edited", strings.Replace(export, "DEMO-2", "DEMO-9", 1), "broken at seq 1"},
		{"via edited", strings.Replace(export, `"via":"console"`, `"via":"slack"`, 1), "broken at seq 1"},
		{"old and new entries", string(mixed), "ok, head " + prevHash},
		{"env edited", strings.Replace(string(mixed), `"env":"qa"`, `"env":"production"`, 1), "broken at seq 5"},
		{"version dropped", strings.Replace(string(mixed), `,"version":"v2.4.1"`, "", 1), "broken at seq 7"},
	} {
		path := filepath.Join(dir, tc.name+".jsonl")
		if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
			t.Fatal(err)
		}
		scriptPath := filepath.Join(dir, "verify.py")
		if err := os.WriteFile(scriptPath, []byte(script), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(python, scriptPath, path).CombinedOutput()
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: the documented script says %q, want %q", tc.name, out, tc.want)
		}
	}
}

// TestJiraEndToEnd runs the console with the real Jira adapter against
// fakejira: config check, a dobro that passes every rule with comment
// write-back, the failures named, and a rejected token.
func TestJiraEndToEnd(t *testing.T) {
	jira := fakejira.New(t)
	jira.SetCredentials("bot@example.com", "s3cret-token")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "jira.yaml")
	body := `
storage: {path: ` + filepath.Join(dir, "j.db") + `}
tracker:
  kind: jira
  url: ` + jira.URL + `
  user: bot@example.com
  token: ${JIRA_TOKEN}
  timeout: 2s
  projects: [PAY]
  ready_statuses: [Ready for Release]
  require_assignee: true
  require_fix_version: true
  required_fields: [customfield_10010]
  comment_on: [start, finish]
roles: {approvers: [U0APPROVER], admins: [U0ADMIN]}
components: [backend, payments]
users: {approver: U0APPROVER}
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"JIRA_TOKEN": "s3cret-token"}
	code, out, errs := run(t, "", env, "--config", cfg, "config", "check")
	if code != 0 || !strings.Contains(out, "Jira: ok as bot@example.com") {
		t.Errorf("config check: exit %d\n%s%s", code, out, errs)
	}
	script := "dobro PAY-1 no_need_admin\ndobro PAY-2\ndobro PAY-404\n/as approver\naccept PAY-1\n/as me\ndep start PAY-1\ndep finish PAY-1\n"
	code, out, errs = run(t, script, env, "--config", cfg, "console")
	if code != 0 {
		t.Fatalf("console: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"PAY-1 is in the queue (#1)",
		"PAY-2 cannot be released: status is In Progress, needs Ready for Release; no assignee; no fix version; field customfield_10010 is empty. Not queued.",
		"PAY-404 was not found or is not visible",
		"card PAY-1: PAY-1 — DONE — Faster checkout",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q\n%s", want, out)
		}
	}
	var comments []string
	for _, c := range jira.Comments() {
		comments = append(comments, c.Key+": "+c.Body[:strings.Index(c.Body, " by ")])
	}
	if diff := cmp.Diff([]string{"PAY-1: dobrobot: release started", "PAY-1: dobrobot: release finished"}, comments); diff != "" {
		t.Errorf("comments (-want +got):\n%s", diff)
	}
	if strings.Contains(out+errs, "s3cret-token") {
		t.Error("the Jira token appears in the output or logs")
	}

	env["JIRA_TOKEN"] = "expired"
	code, out, errs = run(t, "", env, "--config", cfg, "config", "check")
	if code != exitRuntime || !strings.Contains(out, "Jira: 401") {
		t.Errorf("config check with a bad token: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = run(t, "dobro PAY-1\n", env, "--log-level", "error", "--config", cfg, "console")
	if code != 0 || !strings.Contains(out, "Not queued.") || !strings.Contains(out, "DM to U0ADMIN") {
		t.Errorf("dobro with a rejected token: exit %d\n%s", code, out)
	}
}
