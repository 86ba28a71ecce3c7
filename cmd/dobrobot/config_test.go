package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// lookupIn returns an environment lookup over vars: a key that is absent is
// unset, a key mapped to "" is set and empty.
func lookupIn(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// TestConfigUnsetVariable: an unset ${VAR} is a configuration error naming
// the key and the variable, never an empty string (issue 12, item 7:
// storage.path "${STATE_DIRECTORY}/dobrobot.db" became /dobrobot.db).
// ${VAR:-default} gives a default for unset or empty, like the shell; a set,
// empty variable is set; a $ that does not start ${NAME} stays as written.
func TestConfigUnsetVariable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		yaml    string
		env     map[string]string
		want    string   // storage.path after expansion
		wantErr []string // each must be in the error
	}{
		{name: "unset", yaml: `storage: {path: "${STATE_DIRECTORY}/dobrobot.db"}`,
			wantErr: []string{"storage.path", "${STATE_DIRECTORY} is not set", "line 1"}},
		{name: "set", yaml: `storage: {path: "${STATE_DIRECTORY}/dobrobot.db"}`, env: map[string]string{"STATE_DIRECTORY": "/var/lib/dobrobot"},
			want: "/var/lib/dobrobot/dobrobot.db"},
		{name: "set and empty is set", yaml: `storage: {path: "${PREFIX}dobrobot.db"}`, env: map[string]string{"PREFIX": ""},
			want: "dobrobot.db"},
		{name: "default when unset", yaml: `storage: {path: "${STATE_DIRECTORY:-/var/lib/dobrobot}/dobrobot.db"}`,
			want: "/var/lib/dobrobot/dobrobot.db"},
		{name: "default when empty", yaml: `storage: {path: "${STATE_DIRECTORY:-/var/lib/dobrobot}/dobrobot.db"}`, env: map[string]string{"STATE_DIRECTORY": ""},
			want: "/var/lib/dobrobot/dobrobot.db"},
		{name: "no default when set", yaml: `storage: {path: "${STATE_DIRECTORY:-/var/lib/dobrobot}/dobrobot.db"}`, env: map[string]string{"STATE_DIRECTORY": "/srv"},
			want: "/srv/dobrobot.db"},
		{name: "empty default", yaml: `storage: {path: "${PREFIX:-}dobrobot.db"}`,
			want: "dobrobot.db"},
		{name: "a default is not expanded again", yaml: `storage: {path: "${A:-$HOME}/x"}`, env: map[string]string{"HOME": "/home/x"},
			want: "$HOME/x"},
		{name: "a lone $ and $$ stay as written", yaml: `storage: {path: "pa$$w$rd$"}`,
			want: "pa$$w$rd$"},
		{name: "$ before a reference is kept", yaml: `storage: {path: "$${X}"}`, env: map[string]string{"X": "1"},
			want: "$1"},
		{name: "not a name: kept", yaml: `storage: {path: "${1}${A B}${}"}`,
			want: "${1}${A B}${}"},
		{name: "every unset one, with its key", yaml: "storage: {path: x}\nhooks:\n  start: {exec: [deploy, \"${ENVIRONMENT}\"]}\ntracker: {kind: jira, url: \"${JIRA_URL}\", token: \"${JIRA_TOKEN}\"}\n",
			wantErr: []string{"hooks.start.exec[1] (line 3): ${ENVIRONMENT} is not set", "tracker.url (line 4): ${JIRA_URL} is not set", "tracker.token (line 4): ${JIRA_TOKEN} is not set", "${VAR:-default}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig([]byte(tc.yaml), lookupIn(tc.env))
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error; storage.path = %q", c.Storage.Path)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c.Storage.Path); diff != "" {
				t.Errorf("storage.path (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConfigUnsetVariableExit: through the command line, an unset variable
// is exit 2 for every verb that loads the file, before anything is created,
// and the error shows no secret from the variables that are set.
func TestConfigUnsetVariableExit(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	body := `
slack: {app_token: "${SLACK_APP_TOKEN}", bot_token: "${SLACK_BOT_TOKEN}", channel: C0REL, api_url: "http://127.0.0.1:1"}
storage: {path: "${STATE_DIRECTORY}dobrobot.db"}
tracker: {kind: file, tickets: [{key: PAY-1, summary: x, status: Ready}]}
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLACK_APP_TOKEN": "xapp-s3cret", "SLACK_BOT_TOKEN": "xoxb-s3cret"}
	// Unset, the path was ./dobrobot.db before the fix (not /dobrobot.db, so
	// that a failing run of this test leaves nothing outside dir).
	t.Chdir(dir)
	for _, args := range [][]string{{"config", "check"}, {"run"}, {"console"}, {"audit", "verify"}} {
		code, out, errs := run(t, "queue\n", env, append([]string{"--config", cfg}, args...)...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s%s", args, code, exitUsage, out, errs)
		}
		if want := "storage.path (line 3): ${STATE_DIRECTORY} is not set"; !strings.Contains(errs, want) {
			t.Errorf("%v: stderr lacks %q:\n%s", args, want, errs)
		}
		if strings.Contains(out+errs, "s3cret") {
			t.Errorf("%v: a secret is in the output:\n%s%s", args, out, errs)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Errorf("the directory holds %v (%v), want only the config: nothing created", entries, err)
	}
}

// TestConfigCheckReportsEveryProblem: config check lists every problem —
// every bad hook, not only the first — and says ok only when there is none,
// on its last line (issue 12, item 12: it printed "ok" first, then the first
// bad hook only).
func TestConfigCheckReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.yaml", `
storage: {path: `+filepath.Join(dir, "x.db")+`}
tracker: {kind: file, file: no-such-tickets.yaml}
roles: {approvers: [U01], admins: [U02]}
hooks:
  start: {webhook: {url: "http://example.com/deploy", secret: k}}
  finish: {webhook: {url: "https://deploy.example.com/finish", secret: ""}}
  cancel: {exec: [/usr/local/bin/rollback]}
`)
	code, out, errs := run(t, "", nil, "--config", bad, "config", "check")
	if code != exitRuntime {
		t.Errorf("exit %d, want %d\n%s%s", code, exitRuntime, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, want := range []string{"tracker.file: ", "hooks.start.webhook: ", "hooks.finish.webhook: "} {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, want) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d lines start with %q, want 1:\n%s", n, want, out)
		}
	}
	if strings.Contains(out, ": ok\n") || strings.HasSuffix(out, ": ok\n") {
		t.Errorf("config check says ok although it found problems:\n%s", out)
	}
	if want := "config " + bad + ": 3 problems"; lines[len(lines)-1] != want {
		t.Errorf("last line %q, want %q", lines[len(lines)-1], want)
	}

	good := write("good.yaml", `
storage: {path: `+filepath.Join(dir, "y.db")+`}
tracker: {kind: file, tickets: [{key: PAY-1, summary: x, status: Ready}]}
roles: {approvers: [U01], admins: [U02]}
hooks: {start: {exec: [/usr/local/bin/deploy]}}
`)
	code, out, errs = run(t, "", nil, "--config", good, "config", "check")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if want := "config " + good + ": ok (1 warning above)"; code != 0 || lines[len(lines)-1] != want {
		t.Errorf("exit %d, last line %q, want 0 and %q\n%s%s", code, lines[len(lines)-1], want, out, errs)
	}
	if strings.Count(out, ": ok") != 1 {
		t.Errorf("ok is said %d times, want once, at the end:\n%s", strings.Count(out, ": ok"), out)
	}
}
