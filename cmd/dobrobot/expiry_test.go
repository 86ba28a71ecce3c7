package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/tracker/fakejira"
)

// TestExpiryConfig: approval_ttl and tracker.recheck_on_start reach the
// core; absent means off, and a TTL under 1s is refused with its key.
func TestExpiryConfig(t *testing.T) {
	tests := []struct {
		yaml      string
		wantErr   string
		wantTTL   time.Duration
		wantCheck bool
	}{
		{"", "", 0, false},
		{"approval_ttl: 24h\n", "", 24 * time.Hour, false},
		{"approval_ttl: 1s\ntracker: {kind: file, recheck_on_start: true}\n", "", time.Second, true},
		{"approval_ttl: 10ms\n", "approval_ttl is 10ms: use at least 1s", 0, false},
		{"approval_ttl: later\n", `"later" is not a duration`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			c, err := parseConfig([]byte("components: [backend]\n"+tt.yaml), lookupIn(nil))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := time.Duration(c.ApprovalTTL); got != tt.wantTTL {
				t.Errorf("approval_ttl %s, want %s", got, tt.wantTTL)
			}
			if c.Tracker.RecheckOnStart != tt.wantCheck {
				t.Errorf("recheck_on_start %v, want %v", c.Tracker.RecheckOnStart, tt.wantCheck)
			}
		})
	}
}

// TestRecheckWithJira: tracker.recheck_on_start through the real Jira
// adapter against fakejira, over three console runs on one database: a
// ticket whose fix version changed after the approval is refused and its
// approval voided; with Jira failing, dep start is refused with "try
// again" and the release stays accepted; Jira back, it starts.
func TestRecheckWithJira(t *testing.T) {
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
  timeout: 1s
  projects: [PAY]
  ready_statuses: [Ready for Release]
  require_fix_version: true
  recheck_on_start: true
roles: {approvers: [U0APPROVER], admins: [U0ADMIN]}
components: [backend, payments]
users: {approver: U0APPROVER}
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"JIRA_TOKEN": "s3cret-token"}
	console := func(script string) string {
		t.Helper()
		code, out, errs := run(t, script, env, "--log-level", "error", "--config", cfg, "console")
		if code != 0 {
			t.Fatalf("console: exit %d\n%s%s", code, out, errs)
		}
		return out
	}
	pay1 := fakejira.Fixtures()[0]
	if pay1.Key != "PAY-1" {
		t.Fatalf("the first fixture is %s", pay1.Key)
	}
	console("dobro PAY-1 no_need_admin\n/as approver\naccept PAY-1\n")
	pay1.FixVersions = []string{"2.5.0"}
	jira.AddIssue(pay1)
	out := console("dep start PAY-1\n")
	for _, want := range []string{"PAY-1 was not started: the ticket changed since the approval (fix version changed from 2.4.0 to 2.5.0)", "DM to approver"} {
		if !strings.Contains(out, want) {
			t.Errorf("dep start of a changed ticket: output lacks %q\n%s", want, out)
		}
	}

	// Approved again, for 2.5.0 now; then Jira fails.
	console("/as approver\naccept PAY-1\n")
	jira.Fail("PAY-1", fakejira.Failure{Status: 503})
	out = console("dep start PAY-1\n")
	if !strings.Contains(out, "Could not reach the tracker to check PAY-1 again: not started, nothing changed; try again.") {
		t.Errorf("dep start with Jira failing:\n%s", out)
	}
	jira.Heal()
	out = console("dep start PAY-1\n")
	if !strings.Contains(out, "Deploy of PAY-1 started") {
		t.Errorf("dep start with Jira back:\n%s", out)
	}
}
