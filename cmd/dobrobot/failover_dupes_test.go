package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
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
	const requests = 20
	var requesters []string
	for n := 1; n <= requests; n++ {
		requesters = append(requesters, fmt.Sprintf("U0REQ%02d", n))
	}
	// As Slack does: an event not acknowledged, or written to a socket that
	// is closing (a standby's, as its instance starts leading), comes again
	// on another connection.
	c := startCluster(t, clusterOptions{instances: 2, leaderTimeout: 2 * time.Second, ack: time.Second, retries: every(60, 200*time.Millisecond),
		tickets: requests, requesters: requesters})
	ctx, slack, store := context.Background(), c.slack, c.store
	first, epoch := c.leaderHello(0, 0, 30*time.Second)
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
	second, epoch2 := c.leaderHello(epoch, hellos, 30*time.Second)
	c.start()
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
	third, epoch3 := c.leaderHello(epoch2, hellos, 30*time.Second)
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
	c.terminate()
}
