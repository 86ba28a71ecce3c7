package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// consoleConfig writes a console configuration (no slack section) with the
// given extra YAML and returns its path and its database's path.
func consoleConfig(t *testing.T, extra string) (cfg, db string) {
	t.Helper()
	dir := t.TempDir()
	db = filepath.Join(dir, "c.db")
	cfg = filepath.Join(dir, "c.yaml")
	body := "storage: {path: " + db + "}\n" +
		"tracker: {kind: file, tickets: [{key: PAY-1, summary: Checkout, status: Ready}]}\n" +
		"roles: {approvers: [U0APPROVER], admins: [U0ADMIN]}\n" + extra
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, db
}

// exported returns the audit log of db as "action ticket actor via" lines.
func exported(t *testing.T, db string) []string {
	t.Helper()
	code, out, errs := run(t, "", nil, "audit", "export", "--db", db)
	if code != 0 {
		t.Fatalf("audit export: exit %d %s", code, errs)
	}
	var got []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e commands.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		got = append(got, strings.Join([]string{string(e.Action), e.Ticket, e.Actor}, " "))
	}
	return got
}

// TestConsoleStartsAsUsersMe: the console starts as users.me when the
// configuration names one (issue 12, item 12: it always started as
// U00CONSOLE, whatever users.me said).
func TestConsoleStartsAsUsersMe(t *testing.T) {
	cfg, db := consoleConfig(t, "users: {me: U0MARY, approver: U0APPROVER}\n")
	code, out, errs := run(t, "/who\ndobro PAY-1\n", nil, "--log-level", "warn", "--config", cfg, "console")
	if code != 0 {
		t.Fatalf("console: exit %d\n%s%s", code, out, errs)
	}
	if want := "(you are me, U0MARY)"; !strings.Contains(out, want) {
		t.Errorf("console output lacks %q:\n%s", want, out)
	}
	if diff := cmp.Diff([]string{"request PAY-1 U0MARY"}, exported(t, db)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}

	// Without users.me, me is the console's own user, as before.
	cfg, db = consoleConfig(t, "users: {approver: U0APPROVER}\n")
	if code, out, errs := run(t, "/who\ndobro PAY-1\n", nil, "--log-level", "warn", "--config", cfg, "console"); code != 0 || !strings.Contains(out, "(you are me, U00CONSOLE)") {
		t.Errorf("console without users.me: exit %d\n%s%s", code, out, errs)
	}
	if diff := cmp.Diff([]string{"request PAY-1 U00CONSOLE"}, exported(t, db)); diff != "" {
		t.Errorf("audit without users.me (-want +got):\n%s", diff)
	}
}

// TestConfigUsersAreUserIDs: users maps names to user IDs; a value that is
// not one (users.me: mary) is refused when the file loads, not acted as.
func TestConfigUsersAreUserIDs(t *testing.T) {
	_, err := parseConfig([]byte("users: {me: mary, ann: U0ANN, qa: S0QA}\n"), lookupIn(nil))
	for _, want := range []string{`users.me: "mary" is not a Slack user ID`, `users.qa: "S0QA" is not a Slack user ID`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one saying %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "users.ann") {
		t.Errorf("error %v names a valid user", err)
	}
}
