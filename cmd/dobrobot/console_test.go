package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

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

// runConsole types lines into dobrobot console on cfg, one a line, and
// returns what it printed; an exit other than 0 ends the test.
func runConsole(t *testing.T, cfg string, lines ...string) string {
	t.Helper()
	code, out, errs := run(t, strings.Join(lines, "\n")+"\n", nil, "--log-level", "warn", "--config", cfg, "console")
	if code != 0 {
		t.Fatalf("console: exit %d\n%s%s", code, out, errs)
	}
	return out
}

// wantSaid fails the test for each of wants that the console's output
// does not contain.
func wantSaid(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q:\n%s", want, out)
		}
	}
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

// editLastAudit replaces old with new in the newest audit entry of the bbolt
// file at path, as someone editing the database by hand would.
func editLastAudit(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte("audit"))
		k, v := bk.Cursor().Last()
		if !bytes.Contains(v, []byte(old)) {
			return fmt.Errorf("the last entry %s holds no %q", v, old)
		}
		return bk.Put(k, bytes.Replace(v, []byte(old), []byte(new), 1))
	}); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleRefusesBrokenAuditChain: the console checks the newest audit
// entries when it opens a database, as run does, and refuses one whose chain
// is broken, changing nothing (issue 12, item 9: it opened it and went on
// writing after the break).
func TestConsoleRefusesBrokenAuditChain(t *testing.T) {
	cfg, db := consoleConfig(t, "users: {approver: U0APPROVER}\n")
	if code, out, errs := run(t, "dobro PAY-1\n/as approver\naccept PAY-1\n", nil, "--log-level", "warn", "--config", cfg, "console"); code != 0 {
		t.Fatalf("console: exit %d\n%s%s", code, out, errs)
	}
	editLastAudit(t, db, "U0APPROVER", "U0MALLORY")
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "queue\n", nil, "--log-level", "warn", "--config", cfg, "console")
	if code != exitRuntime {
		t.Errorf("console on a broken chain: exit %d, want %d\n%s%s", code, exitRuntime, out, errs)
	}
	if want := "the audit log does not verify (audit chain broken at seq 2"; !strings.Contains(errs, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errs)
	}
	if strings.Contains(out, "queue") {
		t.Errorf("the console ran a command on a broken chain:\n%s", out)
	}
	if after, err := os.ReadFile(db); err != nil || !bytes.Equal(before, after) {
		t.Errorf("the database file was changed (%v)", err)
	}
}

// TestConsoleRefusesRunDatabase: a configuration with a slack section is
// run's; the console refuses its database (exit 2, naming --as-operator)
// unless told --as-operator, and then records who opened it, and every
// command of the session says via console (issue 12, item 9).
func TestConsoleRefusesRunDatabase(t *testing.T) {
	cfg, db := consoleConfig(t, "slack: {app_token: \"${SLACK_APP_TOKEN}\", bot_token: \"${SLACK_BOT_TOKEN}\", channel: C0RELEASE}\nusers: {me: U0OPS}\n")
	env := map[string]string{"SLACK_APP_TOKEN": "xapp-s3cret", "SLACK_BOT_TOKEN": "xoxb-s3cret"}
	code, out, errs := run(t, "dobro PAY-1\n", env, "--config", cfg, "console")
	if code != exitUsage {
		t.Errorf("console on run's database: exit %d, want %d\n%s%s", code, exitUsage, out, errs)
	}
	if !strings.Contains(errs, "--as-operator") || !strings.Contains(errs, "slack") {
		t.Errorf("the refusal does not explain --as-operator:\n%s", errs)
	}
	if fileExists(db) {
		t.Errorf("the refused console created %s", db)
	}

	code, out, errs = run(t, "dobro PAY-1\n", env, "--log-level", "warn", "--config", cfg, "console", "--as-operator")
	if code != 0 {
		t.Fatalf("console --as-operator: exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out+errs, "s3cret") {
		t.Errorf("a token is in the output:\n%s%s", out, errs)
	}
	code, export, errs := run(t, "", nil, "audit", "export", "--db", db)
	if code != 0 {
		t.Fatalf("export: %d %s", code, errs)
	}
	var got []string
	var detail string
	sc := bufio.NewScanner(strings.NewReader(export))
	for sc.Scan() {
		var e commands.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{string(e.Action), e.Ticket, e.Actor, e.Via}, " "))
		if e.Action == commands.ActionOperator {
			detail = e.Detail
		}
	}
	want := []string{"operator  U0OPS console", "request PAY-1 U0OPS console"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	host, _ := os.Hostname()
	if u, err := user.Current(); err == nil && !strings.Contains(detail, u.Username) || !strings.Contains(detail, host) {
		t.Errorf("the operator entry's detail %q does not name the OS user and host %q", detail, host)
	}
	if code, out, _ := run(t, "", nil, "audit", "verify", "--db", db); code != 0 {
		t.Errorf("audit verify: exit %d %s", code, out)
	}

	// Another file than run's is the console's own, as before.
	other := filepath.Join(t.TempDir(), "scratch.db")
	if code, out, errs := run(t, "queue\n", env, "--log-level", "warn", "--config", cfg, "console", "--db", other); code != 0 {
		t.Errorf("console --db on a file of its own: exit %d\n%s%s", code, out, errs)
	}
}
