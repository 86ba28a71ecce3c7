package main

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/tracker/fakejira"
)

// The secret scan (docs/reliability.md, T63): the real binary at debug level,
// through a whole release and the failures that make code log the most
// (Jira's 401 and 429, Slack's 429, a failing webhook, refused tokens, a
// config check), and then not one secret in anything it wrote.

// Secrets of the scan. The Slack tokens are fakeslack's.
const (
	scanJiraUser      = "bot@example.com"
	scanJiraToken     = "jira-api-token-S3CRET-0123456789"
	scanWebhookSecret = "whsec-S3CRET-9876543210"
)

// secretPatterns are what must never appear in a log: token prefixes, the
// secrets themselves, and the headers that carry them.
func secretPatterns() []string {
	basic := base64.StdEncoding.EncodeToString([]byte(scanJiraUser + ":" + scanJiraToken))
	return []string{"xoxb-", "xapp-", "xoxp-", fakeslack.BotToken, fakeslack.AppToken, scanJiraToken, basic,
		scanWebhookSecret, "Authorization:", `"Authorization"`, `"authorization"`, "Bearer "}
}

// secretHits returns each pattern found in logs, with the line around it.
func secretHits(logs string) []string {
	var out []string
	for _, p := range secretPatterns() {
		if i := strings.Index(logs, p); i >= 0 {
			start := strings.LastIndexByte(logs[:i], '\n') + 1
			end := strings.IndexByte(logs[i:], '\n')
			if end < 0 {
				end = len(logs) - i
			}
			out = append(out, p+" in: "+logs[start:i+end])
		}
	}
	return out
}

func TestNoSecretsInLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	slack := fakeslack.New(t)
	jira := fakejira.New(t)
	jira.SetCredentials(scanJiraUser, scanJiraToken)
	ready := func(key string) fakejira.Issue {
		return fakejira.Issue{Key: key, Summary: "Release " + key, Status: "Ready for Release",
			Assignee:    &fakejira.User{AccountID: "5b10", DisplayName: "Ann", EmailAddress: "ann@example.com"},
			FixVersions: []string{"1.0"}, Components: []string{"backend"}}
	}
	for _, k := range []string{"PAY-1", "PAY-2", "PAY-3"} {
		jira.AddIssue(ready(k))
	}
	jira.Fail("PAY-2", fakejira.Failure{Status: http.StatusUnauthorized, Times: 1})
	jira.Fail("PAY-3", fakejira.Failure{Status: http.StatusTooManyRequests, RetryAfter: "1", Times: 1})
	var hookCalls atomic.Int32
	webhook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hookCalls.Add(1) == 1 {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(webhook.Close)
	slack.Fail("chat.postMessage", fakeslack.Failure{Status: http.StatusTooManyRequests, RetryAfter: 1, Times: 1})

	dir := t.TempDir()
	cfg := filepath.Join(dir, "dobrobot.yaml")
	body := `
slack: {app_token: "${SLACK_APP_TOKEN}", bot_token: "${SLACK_BOT_TOKEN}", api_url: ` + slack.URL + `, channel: C0RELEASE}
storage: {path: ` + filepath.Join(dir, "bot.db") + `}
tracker:
  kind: jira
  url: ` + jira.URL + `
  user: ` + scanJiraUser + `
  token: ${JIRA_TOKEN}
  ready_statuses: ["Ready for Release"]
  comment_on: [start, finish]
roles: {approvers: [U0APPROVER], admins: [U0ADMIN]}
components: [backend]
hooks:
  start: {webhook: {url: "` + webhook.URL + `/deploy", secret: "${DOBROBOT_WEBHOOK_SECRET}"}, timeout: 20s}
  finish: {exec: ["true"], timeout: 1m}
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "SLACK_APP_TOKEN="+fakeslack.AppToken, "SLACK_BOT_TOKEN="+fakeslack.BotToken,
		"JIRA_TOKEN="+scanJiraToken, "DOBROBOT_WEBHOOK_SECRET="+scanWebhookSecret, "DOBROBOT_CONFIG="+cfg)
	logs := &syncBuffer{}
	runBin := func(env []string, args ...string) int {
		cmd := exec.Command(bin, append([]string{"--log-level", "debug"}, args...)...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, logs, logs
		_ = cmd.Run()
		return cmd.ProcessState.ExitCode()
	}

	// A config check, and refused tokens: each names what is wrong, never the secret.
	if code := runBin(env, "config", "check"); code != 0 {
		t.Errorf("config check: exit %d\n%s", code, logs.String())
	}
	if code := runBin(append(env, "SLACK_BOT_TOKEN=xoxb-wrong-S3CRET", "JIRA_TOKEN=wrong-jira-S3CRET"), "config", "check"); code == 0 {
		t.Error("config check accepted wrong tokens")
	}
	if code := runBin(append(env, "SLACK_APP_TOKEN=xapp-wrong-S3CRET"), "run"); code == 0 {
		t.Error("run accepted a wrong app token")
	}

	// A whole release, with failures on the way.
	bot := exec.Command(bin, "--log-level", "debug", "run")
	bot.Env, bot.Stdout, bot.Stderr = env, logs, logs
	if err := bot.Start(); err != nil {
		t.Fatal(err)
	}
	defer bot.Process.Kill()
	if !slack.WaitFor(15*time.Second, func(st fakeslack.State) bool { return st.Connections == slackConns }) {
		t.Fatalf("the bot did not connect\n%s", logs.String())
	}
	step := func(what string, env fakeslack.Envelope, done func() bool) {
		t.Helper()
		if _, err := slack.Send(env); err != nil {
			t.Fatal(err)
		}
		if !waitFor(30*time.Second, done) {
			t.Fatalf("%s: not done in 30 s\n%s", what, logs.String())
		}
	}
	replied := func(user, text string) func() bool {
		return func() bool {
			for _, m := range append(slack.Ephemerals(user), slack.Messages(fakeslack.DMChannel(user))...) {
				if strings.Contains(m.Text, text) {
					return true
				}
			}
			return false
		}
	}
	mention := func(user, text string) fakeslack.Envelope {
		return slack.EventEnvelope(fakeslack.Mention(user, "C0RELEASE", text))
	}
	step("dobro", mention("U0ANN", "dobro PAY-1"), replied("U0ANN", "is in the queue"))
	step("accept", slack.ClickEnvelope(fakeslack.Click{User: "U0APPROVER", Channel: fakeslack.DMChannel("U0APPROVER"),
		ActionID: "dobrobot.0", Value: "accept PAY-1"}), replied("U0APPROVER", "You accepted PAY-1"))
	step("here", mention("U0ADMIN", "here PAY-1"), replied("U0ADMIN", "You claimed PAY-1"))
	step("dep start", slack.EventEnvelope(fakeslack.DM("U0ANN", "dep start PAY-1")), func() bool {
		return hookCalls.Load() >= 2 && len(jira.Comments()) >= 1
	})
	step("dep finish", mention("U0ANN", "dep finish PAY-1"), replied("U0ANN", "PAY-1 is done"))
	step("a 401 from Jira", mention("U0ANN", "dobro PAY-2"), replied("U0ADMIN", "rejects dobrobot's credentials"))
	step("a 429 from Jira", mention("U0ANN", "dobro PAY-3"), replied("U0ANN", "PAY-3"))
	if err := bot.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := bot.Wait(); err != nil {
		t.Errorf("bot: %v", err)
	}

	out := logs.String()
	if !strings.Contains(out, `"level":"debug"`) || !strings.Contains(out, "webhook") || !strings.Contains(out, "401") {
		t.Fatalf("the logs lack debug lines or the failures: the scan proves little\n%s", out)
	}
	if os.Getenv("DOBROBOT_SHOW_LOGS") != "" {
		t.Log(out)
	}
	for _, hit := range secretHits(out) {
		t.Errorf("secret in the logs: %s", hit)
	}
	t.Logf("FIGURE secret scan: %d bytes (%d lines) of debug logs from config check, refused tokens and a whole release with Jira 401/429, Slack 429 and a failing webhook: 0 matches of %d patterns",
		len(out), strings.Count(out, "\n"), len(secretPatterns()))
}
