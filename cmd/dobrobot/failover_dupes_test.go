package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/postgres"
)

// TestFailoverDuringCatchUp is issue 19's double-post case: a leader is
// killed (or frozen) a moment into catching up on a backlog spread over
// many lanes (a reply to each requester, in their DM or ephemeral, the
// approver's DMs, the cards), every lane with a message on the wire. The next leader must send
// the whole backlog and post at most the one message a fault can catch
// between Slack's answer and its record: the others reached Slack with
// their outbox ID in their metadata, and a new term looks for them before
// sending again. It logs the duplicates per fault. (Before: all 20 DM
// replies were posted twice after the kill.)
func TestFailoverDuringCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three dobrobot processes and PostgreSQL")
	}
	for _, fault := range []struct {
		name string
		sig  syscall.Signal
	}{{"kill -9", syscall.SIGKILL}, {"SIGSTOP", syscall.SIGSTOP}} {
		t.Run(fault.name, func(t *testing.T) { catchUpFault(t, fault.name, fault.sig) })
	}
}

// catchUpFault is one run of TestFailoverDuringCatchUp, with the second
// leader stopped by sig.
func catchUpFault(t *testing.T, fault string, sig syscall.Signal) {
	dsn := pgDSN(t)
	schema := pgSchema(t, dsn)
	bin := buildBinary(t)
	slack := fakeslack.New(t)
	// As Slack does: an event not acknowledged, or written to a socket that
	// is closing (a standby's, as its instance starts leading), comes again
	// on another connection.
	retries := make([]time.Duration, 60)
	for i := range retries {
		retries[i] = 200 * time.Millisecond
	}
	slack.SetRetries(time.Second, retries...)

	const requests = 20
	dir := t.TempDir()
	var tickets, requesters strings.Builder
	tickets.WriteString("tickets:\n")
	for n := 1; n <= requests; n++ {
		fmt.Fprintf(&tickets, "  - {key: PAY-%d, summary: Change %d, status: Ready, components: [backend]}\n", n, n)
		fmt.Fprintf(&requesters, "%sU0REQ%02d", map[bool]string{true: "", false: ", "}[n == 1], n)
	}
	if err := os.WriteFile(filepath.Join(dir, "tickets.yaml"), []byte(tickets.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "dobrobot.yaml")
	body := `
slack: {app_token: "${SLACK_APP_TOKEN}", bot_token: "${SLACK_BOT_TOKEN}", api_url: ` + slack.URL + `, channel: C0RELEASE}
storage: {kind: postgres, dsn: "${DOBROBOT_PG_DSN}", schema: ` + schema + `, leader_timeout: 2s}
tracker: {kind: file, file: tickets.yaml, url: https://jira.example.com}
roles: {requesters: [` + requesters.String() + `], approvers: [U0APPROVER], admins: [U0ADMIN]}
components: [backend]
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "SLACK_APP_TOKEN="+fakeslack.AppToken, "SLACK_BOT_TOKEN="+fakeslack.BotToken,
		"DOBROBOT_CONFIG="+cfg, "DOBROBOT_PG_DSN="+dsn)
	ctx := context.Background()
	store, err := postgres.Open(ctx, dsn, postgres.Options{Schema: schema, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	procs := []*proc{startProc(t, "a", bin, env, "run"), startProc(t, "b", bin, env, "run")}
	leader := func(after int64, hellos int) (*proc, int64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			term, err := store.Term(ctx)
			if err == nil && term.Epoch > after && term.Held && slack.Hellos() > hellos {
				pid, _ := strconv.Atoi(term.Holder[strings.LastIndexByte(term.Holder, ':')+1:])
				for _, p := range procs {
					if p.cmd.Process.Pid == pid {
						return p, term.Epoch
					}
				}
				t.Fatalf("term %d is held by %s, none of the test's processes", term.Epoch, term.Holder)
			}
		}
		t.Fatalf("no new leader connected to Slack after term %d", after)
		return nil, 0
	}
	first, epoch := leader(0, 0)
	// Both instances hold their two connections (the leader's, the
	// standby's) before the requests come.
	if err := slack.WaitConnections(4, 0, 20*time.Second); err != nil {
		t.Fatal(err)
	}

	// A Slack outage for posts builds a backlog: every request is handled,
	// its card, the approver's DM and the reply wait in the outbox. Half of
	// the requests come by DM (the reply is a post in that DM), half by
	// mention (the reply is ephemeral, which Slack keeps no history of).
	slack.Fail("chat.postMessage", fakeslack.Failure{Status: http.StatusServiceUnavailable})
	slack.Fail("chat.postEphemeral", fakeslack.Failure{Status: http.StatusServiceUnavailable})
	byDM := func(n int) bool { return n%2 == 1 }
	for n := 1; n <= requests; n++ {
		user, text := fmt.Sprintf("U0REQ%02d", n), fmt.Sprintf("dobro PAY-%d", n)
		ev := fakeslack.Mention(user, "C0RELEASE", text)
		if byDM(n) {
			ev = fakeslack.DM(user, text)
		}
		if _, err := slack.Deliver(ev); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(30*time.Second, func() bool {
		out, err := store.Pending(ctx, 0)
		return err == nil && len(out) >= 3*requests
	}) {
		t.Fatal("the backlog did not build up")
	}

	// The leader dies; the outage ends; the next leader catches up and is
	// killed or frozen once Slack has taken a few of its posts.
	hellos := slack.Hellos()
	first.signal(syscall.SIGKILL)
	slack.ClearFailures()
	second, epoch2 := leader(epoch, hellos)
	procs = append(procs, startProc(t, "c", bin, env, "run"))
	const after = 6
	if !slack.WaitFor(20*time.Second, func(st fakeslack.State) bool {
		n := 0
		for _, c := range st.Calls {
			if c.Method == "chat.postMessage" && c.Error == "" && c.Status == http.StatusOK {
				n++
			}
		}
		return n >= after
	}) {
		t.Fatalf("%s posted nothing", second.name)
	}
	hellos = slack.Hellos()
	second.signal(sig)
	faultAt := time.Now()
	third, epoch3 := leader(epoch2, hellos)
	t.Logf("terms: %s %d → %s %d (%s after Slack answered %d of its posts) → %s %d", first.name, epoch, second.name, epoch2, fault, after, third.name, epoch3)
	if sig == syscall.SIGSTOP {
		// Thawed, the deposed leader must send nothing more.
		second.signal(syscall.SIGCONT)
	}

	if !waitFor(60*time.Second, func() bool {
		out, err := store.Pending(ctx, 1)
		return err == nil && len(out) == 0
	}) {
		t.Fatal("the outbox was not emptied within 60 s")
	}

	// Each message once; at most one sent again for the fault.
	type message struct {
		what string
		in   []fakeslack.Message
	}
	var lost, doubled []string
	for n := 1; n <= requests; n++ {
		ref := fmt.Sprintf("|PAY-%d>", n)
		requester := fmt.Sprintf("U0REQ%02d", n)
		reply := message{"ephemeral reply to the requester", slack.Ephemerals(requester)}
		if byDM(n) {
			reply = message{"reply in the requester's DM", slack.Messages(fakeslack.DMChannel(requester))}
		}
		for _, m := range []message{
			{"card", slack.Messages("C0RELEASE")},
			{"DM to the approver", slack.Messages(fakeslack.DMChannel("U0APPROVER"))},
			reply,
		} {
			copies := 0
			for _, msg := range m.in {
				if msg.ThreadTS == "" && strings.Contains(msg.Text, ref) && !strings.Contains(msg.Text, "already") {
					copies++
				}
			}
			switch {
			case copies == 0:
				lost = append(lost, fmt.Sprintf("%s of PAY-%d", m.what, n))
			case copies > 1:
				doubled = append(doubled, fmt.Sprintf("%s of PAY-%d ×%d", m.what, n, copies))
			}
		}
	}
	t.Logf("duplicates for the %s during the catch-up (at %s): %d %v", fault, faultAt.Format("15:04:05.000"), len(doubled), doubled)
	if len(lost) > 0 {
		t.Errorf("messages lost: %v", lost)
	}
	if len(doubled) > 1 {
		t.Errorf("%d messages sent twice for one %s, want at most the one on the wire: %v", len(doubled), fault, doubled)
	}
	var rels []commands.Release
	if err := store.View(ctx, func(tx commands.Tx) error {
		var err error
		rels, err = tx.Recent(0)
		return err
	}); err != nil || len(rels) != requests {
		t.Errorf("%d releases (%v), want %d", len(rels), err, requests)
	}
	for _, p := range procs {
		if !p.exited() {
			p.signal(syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(40 * time.Second):
			t.Errorf("%s did not stop after SIGTERM", p.name)
		}
	}
}
