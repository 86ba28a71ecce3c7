package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// lockedBuffer is a bytes.Buffer the console's printer and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestConsoleShowsReminder: with reminders.approval: 1s, a console that
// waits for input prints the approval reminder as it falls due, once
// (repeat is off), and the audit log records it as dobrobot's.
func TestConsoleShowsReminder(t *testing.T) {
	cfg, db := consoleConfig(t, "reminders: {approval: 1s}\n")
	in, feed := io.Pipe()
	var out, errs lockedBuffer
	done := make(chan int)
	go func() {
		done <- Main(context.Background(), []string{"--log-level", "warn", "--config", cfg, "console"}, in, &out, &errs, lookupIn(nil))
	}()
	if _, err := io.WriteString(feed, "dobro PAY-1\n"); err != nil {
		t.Fatal(err)
	}
	const reminder = "✉ DM to U0APPROVER: ⏰ Reminder: @me still asks for dobro on PAY-1 — Checkout"
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), reminder) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // waiting for it to come, not proving its absence
	}
	feed.Close()
	if code := <-done; code != 0 {
		t.Fatalf("console: exit %d\n%s%s", code, out.String(), errs.String())
	}
	if got := strings.Count(out.String(), "Reminder:"); got != 1 {
		t.Errorf("the console printed %d reminders, want 1:\n%s", got, out.String())
	}
	want := []string{"request PAY-1 U00CONSOLE", "remind PAY-1 dobrobot"}
	if diff := cmp.Diff(want, exported(t, db)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

// TestRemindersConfig: durations as short as 1s are taken; shorter ones
// are refused with the key named; absent means off.
func TestRemindersConfig(t *testing.T) {
	tests := []struct {
		yaml    string
		wantErr string
		want    RemindersConfig
	}{
		{"", "", RemindersConfig{}},
		{"reminders: {approval: 2h, repeat: 1h}\n", "", RemindersConfig{Approval: Duration(2 * time.Hour), Repeat: Duration(time.Hour)}},
		{"reminders: {approval: 1s}\n", "", RemindersConfig{Approval: Duration(time.Second)}},
		{"reminders: {approval: 10ms}\n", "reminders.approval is 10ms: use at least 1s", RemindersConfig{}},
		{"reminders: {approval: 1h, repeat: 1ns}\n", "reminders.repeat is 1ns", RemindersConfig{}},
		{"reminders: {approval: soon}\n", `"soon" is not a duration`, RemindersConfig{}},
		{"reminders: {claim: 15m, start: 1h, deploying: 2h, escalate_after: 2}\n", "", RemindersConfig{Claim: Duration(15 * time.Minute), Start: Duration(time.Hour), Deploying: Duration(2 * time.Hour), EscalateAfter: 2}},
		{"reminders: {deploying: 1ms}\n", "reminders.deploying is 1ms", RemindersConfig{}},
		{"reminders: {escalate_after: -1}\n", "reminders.escalate_after is -1", RemindersConfig{}},
		{"reminders: {quiet_hours: {from: \"20:00\", to: \"09:00\", tz: Europe/Moscow, weekends: true}}\n", "", RemindersConfig{QuietHours: &QuietHoursConfig{From: "20:00", To: "09:00", TZ: "Europe/Moscow", Weekends: true}}},
		{"reminders: {quiet_hours: {from: \"25:00\", to: \"09:00\"}}\n", `reminders.quiet_hours.from: "25:00" is not a time of day`, RemindersConfig{}},
		{"reminders: {quiet_hours: {from: \"20:00\", to: \"09:00\", tz: Mars/Olympus}}\n", `reminders.quiet_hours.tz: "Mars/Olympus" is not a time zone`, RemindersConfig{}},
		{"reminders: {quiet_hours: {from: \"20:00\", to: \"20:00\"}}\n", "from and to are the same time", RemindersConfig{}},
		{"reminders: {snooze: 15m}\n", "field snooze not found", RemindersConfig{}},
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
			if diff := cmp.Diff(tt.want, c.Reminders); diff != "" {
				t.Errorf("reminders (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRemindersCore: the section reaches the core as written; quiet hours
// without tz are in the configured timezone.
func TestRemindersCore(t *testing.T) {
	c, err := parseConfig([]byte("components: [backend]\ntimezone: Europe/Berlin\nreminders: {claim: 15m, start: 1h, deploying: 2h, repeat: 1h, escalate_after: 2, quiet_hours: {from: \"20:30\", to: \"09:00\", weekends: true}}\n"), lookupIn(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Reminders.core(c.Timezone)
	if got.Quiet.Zone == nil || got.Quiet.Zone.String() != "Europe/Berlin" {
		t.Fatalf("quiet hours zone %v, want Europe/Berlin", got.Quiet.Zone)
	}
	got.Quiet.Zone = nil
	want := commands.Reminders{Claim: 15 * time.Minute, Start: time.Hour, Deploying: 2 * time.Hour, Repeat: time.Hour, EscalateAfter: 2,
		Quiet: commands.QuietHours{From: 20*time.Hour + 30*time.Minute, To: 9 * time.Hour, Weekends: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("core reminders (-want +got):\n%s", diff)
	}
}

// TestConsoleDeployingReminderAndExtend: with reminders.deploying: 1s the
// console prints the "still deploying?" reminder with its buttons, and
// extend (what its Extend button types) snoozes it, audited.
func TestConsoleDeployingReminderAndExtend(t *testing.T) {
	cfg, db := consoleConfig(t, "users: {approver: U0APPROVER}\nreminders: {deploying: 1s, repeat: 1h}\n")
	in, feed := io.Pipe()
	var out, errs lockedBuffer
	done := make(chan int)
	go func() {
		done <- Main(context.Background(), []string{"--log-level", "warn", "--config", cfg, "console"}, in, &out, &errs, lookupIn(nil))
	}()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(out.String(), s) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // waiting for it to come, not proving its absence
		}
		if !strings.Contains(out.String(), s) {
			t.Errorf("the console never printed %q:\n%s%s", s, out.String(), errs.String())
		}
	}
	if _, err := io.WriteString(feed, "dobro PAY-1 no_need_admin\n/as approver\naccept PAY-1\n/as me\ndep start PAY-1\n"); err != nil {
		t.Fatal(err)
	}
	waitFor("Still deploying?")
	waitFor("extend PAY-1")
	if _, err := io.WriteString(feed, "extend PAY-1\n"); err != nil {
		t.Fatal(err)
	}
	waitFor("Extended: PAY-1 stays deploying")
	feed.Close()
	if code := <-done; code != 0 {
		t.Fatalf("console: exit %d\n%s%s", code, out.String(), errs.String())
	}
	if got := strings.Count(out.String(), "Still deploying?"); got != 2 { // the requester's and the admin's
		t.Errorf("the console printed %d deploying reminders, want 2:\n%s", got, out.String())
	}
	var got []string
	for _, e := range exported(t, db) {
		if strings.HasPrefix(e, "remind ") || strings.HasPrefix(e, "extend ") {
			got = append(got, e)
		}
	}
	if diff := cmp.Diff([]string{"remind PAY-1 dobrobot", "extend PAY-1 U00CONSOLE"}, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}
