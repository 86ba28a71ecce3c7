package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot"
	"github.com/dobrobot/dobrobot/bot/fakeslack"
)

// slackConns is how many Socket Mode connections dobrobot run keeps open.
const slackConns = bot.DefaultConnections

// TestRunBinary runs the real binary against fakeslack: a release request
// gets its card, a second instance on the same database gives up within 3 s
// without calling Slack, and SIGTERM stops the bot cleanly.
func TestRunBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	slack := fakeslack.New(t)
	dir := t.TempDir()
	tickets := filepath.Join(dir, "tickets.yaml")
	if err := os.WriteFile(tickets, []byte("tickets:\n  - {key: PAY-1, summary: Faster checkout, status: Ready, components: [backend]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "dobrobot.yaml")
	body := `
slack: {app_token: "${SLACK_APP_TOKEN}", bot_token: "${SLACK_BOT_TOKEN}", api_url: ` + slack.URL + `, channel: C0RELEASE}
storage: {path: ` + filepath.Join(dir, "bot.db") + `}
tracker: {kind: file, file: tickets.yaml, url: https://jira.example.com}
roles: {approvers: [U0APPROVER], admins: [U0ADMIN]}
components: [backend]
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "SLACK_APP_TOKEN="+fakeslack.AppToken, "SLACK_BOT_TOKEN="+fakeslack.BotToken, "DOBROBOT_CONFIG="+cfg)

	var check bytes.Buffer
	cc := exec.Command(bin, "config", "check")
	cc.Env, cc.Stdout, cc.Stderr = env, &check, &check
	if err := cc.Run(); err != nil || !strings.Contains(check.String(), "Slack: ok as dobrobot (U0DOBROBOT)") {
		t.Errorf("config check: %v\n%s", err, check.String())
	}
	if slack.WaitFor(0, func(st fakeslack.State) bool { return st.Connections > 0 }) {
		t.Error("config check opened a Socket Mode connection")
	}

	var logs bytes.Buffer
	first := exec.Command(bin, "run")
	first.Env, first.Stdout, first.Stderr = env, &logs, &logs
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	if !slack.WaitFor(10*time.Second, func(st fakeslack.State) bool { return st.Connections == slackConns }) {
		t.Fatalf("the bot did not connect\n%s", logs.String())
	}
	env1, err := slack.Deliver(fakeslack.Mention("U0ANN", "C0RELEASE", "dobro PAY-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !slack.WaitFor(10*time.Second, func(st fakeslack.State) bool { return st.Acked(env1.EnvelopeID) && st.Count("chat.postMessage") >= 2 }) {
		t.Fatalf("no ack or no card/DM\n%s", logs.String())
	}
	card := slack.Messages("C0RELEASE")
	if len(card) != 1 || !strings.Contains(card[0].Text, "PAY-1") {
		t.Errorf("release channel messages = %+v, want one card for PAY-1", card)
	}

	// A second instance on the same database: exits 1 within 3 s, names
	// the lock, never opens a Slack connection.
	opens := slack.Calls("apps.connections.open")
	var out bytes.Buffer
	second := exec.Command(bin, "run")
	second.Env, second.Stdout, second.Stderr = env, &out, &out
	start := time.Now()
	err = second.Run()
	if code := second.ProcessState.ExitCode(); code != 1 || err == nil {
		t.Errorf("second instance: exit %d (%v), want 1", code, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("second instance took %v", d)
	}
	if !strings.Contains(out.String(), "another dobrobot running?") {
		t.Errorf("second instance said %q", out.String())
	}
	if got := slack.Calls("apps.connections.open"); len(got) != len(opens) {
		t.Errorf("the second instance called apps.connections.open")
	}

	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("bot exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("bot did not stop after SIGTERM\n%s", logs.String())
	}
	for _, secret := range []string{fakeslack.AppToken, fakeslack.BotToken} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a token appears in the logs")
		}
	}
}
