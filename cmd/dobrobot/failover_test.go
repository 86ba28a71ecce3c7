package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/cmd/internal/monitor"
	"github.com/dobrobot/dobrobot/commands"
)

// TestFailover runs two real `dobrobot run` processes on one PostgreSQL
// schema against fakeslack (which, like Slack, gives each event to one open
// connection at random and redelivers what is not acked) while a stream of
// dobro requests arrives. The leader is killed with SIGKILL, later frozen
// with SIGSTOP until a standby took over and then thawed, and finally
// stopped with SIGTERM. Afterwards no request is lost or applied twice, no
// message is lost or sent twice, the audit chain verifies, and the epochs of
// the audit entries never interleave. It logs the failover times.
func TestFailover(t *testing.T) {
	const (
		requests      = 16
		leaderTimeout = 2 * time.Second
	)
	c := startCluster(t, clusterOptions{instances: 2, leaderTimeout: leaderTimeout, ack: time.Second,
		retries: every(60, 200*time.Millisecond), tickets: requests, http: true})
	ctx, slack, store := context.Background(), c.slack, c.store
	first, epoch := c.leaderHello(0, 0, 20*time.Second)
	t.Logf("%s leads term %d", first.name, epoch)
	checkHealth(t, c.procs[:2], first, epoch)

	// The stream: one dobro every 150 ms, each from its own requester, held
	// back (as Slack holds it) while no connection is open.
	var sent atomic.Int32
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		for n := 1; n <= requests; n++ {
			ev := fakeslack.Mention(fmt.Sprintf("U0REQ%02d", n), "C0RELEASE", fmt.Sprintf("dobro PAY-%d", n))
			for {
				_, err := slack.Deliver(ev)
				if err == nil {
					break
				}
				if !errors.Is(err, fakeslack.ErrNoConnection) {
					t.Errorf("deliver PAY-%d: %v", n, err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			sent.Add(1)
			time.Sleep(150 * time.Millisecond)
		}
	}()
	waitSent := func(n int32) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for sent.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("the stream is stuck at %d requests", sent.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// 1. kill -9 the leader mid-stream; start a fresh standby in its place.
	waitSent(4)
	hellos := slack.Hellos()
	start := time.Now()
	first.signal(syscall.SIGKILL)
	killedAt := start
	second, epoch2 := c.leaderHello(epoch, hellos, 15*time.Second)
	killFailover := time.Since(start)
	c.start()

	// 2. Freeze the new leader; a standby takes over once the database
	// ended the frozen one's session. Thaw it after a while: it must find
	// itself deposed, drop its Slack connection and stand by.
	waitSent(8)
	hellos = slack.Hellos()
	start = time.Now()
	second.signal(syscall.SIGSTOP)
	frozenAt := start
	third, epoch3 := c.leaderHello(epoch2, hellos, 15*time.Second)
	freezeFailover := time.Since(start)
	waitSent(11)
	second.signal(syscall.SIGCONT)
	// The thawed ex-leader drops its leader's connections and stands by,
	// holding a standby's: each of the two live instances holds its own.
	if !waitFor(10*time.Second, func() bool {
		return strings.Contains(second.logs.String(), "no longer leading: disconnected from Slack")
	}) {
		t.Fatalf("the thawed ex-leader %s kept its leader's Slack connections", second.name)
	}
	if !slack.WaitFor(10*time.Second, func(st fakeslack.State) bool { return st.Connections == 2*slackConns }) {
		t.Fatalf("%d Slack connections open after the thaw, want %d: the leader's and the thawed standby's", slack.Connections(), 2*slackConns)
	}
	thawed := time.Now()

	// 3. SIGTERM the leader: it finishes, hands over and exits 0.
	waitSent(13)
	hellos = slack.Hellos()
	start = time.Now()
	third.signal(syscall.SIGTERM)
	fourth, epoch4 := c.leaderHello(epoch3, hellos, 45*time.Second)
	termFailover := time.Since(start)
	select {
	case <-third.done:
		if third.err != nil {
			t.Errorf("%s after SIGTERM: %v", third.name, third.err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not exit within 10 s of handing over", third.name)
	}
	<-streamDone

	t.Logf("terms: %s %d → %s %d → %s %d → %s %d", first.name, epoch, second.name, epoch2, third.name, epoch3, fourth.name, epoch4)
	t.Logf("failover after kill -9: %v; after SIGSTOP: %v (leader_timeout %v); after SIGTERM: %v (its outbox drained first)",
		killFailover.Round(time.Millisecond), freezeFailover.Round(time.Millisecond), leaderTimeout, termFailover.Round(time.Millisecond))
	if killFailover > 5*time.Second {
		t.Errorf("failover after kill -9 took %v, want ≤ 5 s", killFailover)
	}
	if freezeFailover > leaderTimeout+5*time.Second {
		t.Errorf("failover after a freeze took %v, want ≤ leader_timeout + 5 s", freezeFailover)
	}

	// Everything settles: every request is a release, no event waits in
	// the inbox, the outbox is empty and every card is in the channel.
	settled := func() (bool, string) {
		var rels []commands.Release
		var pending []commands.InboxEvent
		err := store.View(ctx, func(tx commands.Tx) error {
			var err error
			if rels, err = tx.Recent(0); err != nil {
				return err
			}
			pending, err = tx.PendingEvents()
			return err
		})
		if err != nil {
			return false, err.Error()
		}
		out, err := store.Pending(ctx, 0)
		if err != nil {
			return false, err.Error()
		}
		cards := len(slack.Messages("C0RELEASE"))
		return len(rels) >= requests && len(pending) == 0 && len(out) == 0 && cards >= requests,
			fmt.Sprintf("%d releases, %d events pending, %d messages in the outbox, %d cards", len(rels), len(pending), len(out), cards)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		ok, state := settled()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled 40 s after the stream ended: %s", state)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("settled %v after the thaw", time.Since(thawed).Round(time.Millisecond))

	// No request lost or applied twice.
	var lost, twice []string
	counts := map[string]int{}
	err := store.View(ctx, func(tx commands.Tx) error {
		rels, err := tx.Recent(0)
		for _, r := range rels {
			counts[r.Ticket]++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	requestsAudited := map[string]int{}
	v := commands.NewVerifier()
	if err := store.Audit(ctx, commands.AuditFilter{}, func(e commands.AuditEntry) error {
		if e.Action == commands.ActionRequest {
			requestsAudited[e.Ticket]++
		} else {
			t.Errorf("unexpected audit entry %d: %s %s %q", e.Seq, e.Action, e.Ticket, e.Detail)
		}
		return v.Add(e)
	}); err != nil {
		t.Errorf("the audit chain does not verify: %v", err)
	}
	for n := 1; n <= requests; n++ {
		ticket := fmt.Sprintf("PAY-%d", n)
		switch {
		case counts[ticket] == 0:
			lost = append(lost, ticket)
		case counts[ticket] > 1 || requestsAudited[ticket] > 1:
			twice = append(twice, ticket)
		}
	}
	// No message lost or sent twice: one card per release, one DM to the
	// approver, one reply to each requester, none saying "already". A
	// leader killed or frozen after Slack took a message and before the
	// outbox recorded it sent leaves it in the outbox; the next leader
	// finds a posted one by the outbox ID in its metadata, but cannot read
	// an ephemeral reply back, nor see a post still on the wire. So a
	// double is accepted only when its first copy reached Slack in the
	// moment before a kill -9 or SIGSTOP, and at most one per fault.
	type message struct{ what, method, channel, user string }
	var lostMsgs, doubled, inFlight []string
	perFault := map[string]int{}
	for n := 1; n <= requests; n++ {
		ref := fmt.Sprintf("|PAY-%d>", n)
		requester := fmt.Sprintf("U0REQ%02d", n)
		for _, m := range []message{
			{"card", "chat.postMessage", "C0RELEASE", ""},
			{"DM to the approver", "chat.postMessage", fakeslack.DMChannel("U0APPROVER"), ""},
			{"reply to the requester", "chat.postEphemeral", "C0RELEASE", requester},
		} {
			var posts []time.Time
			for _, c := range slack.Calls(m.method) {
				if c.Error == "" && c.Args.Get("channel") == m.channel && (m.user == "" || c.Args.Get("user") == m.user) &&
					strings.Contains(c.Args.Get("text"), ref) {
					posts = append(posts, c.Time)
				}
			}
			switch {
			case len(posts) == 0:
				lostMsgs = append(lostMsgs, fmt.Sprintf("%s of PAY-%d", m.what, n))
			case len(posts) == 2 && justBefore(posts[0], killedAt):
				perFault["kill -9"]++
				inFlight = append(inFlight, fmt.Sprintf("%s of PAY-%d (kill -9)", m.what, n))
			case len(posts) == 2 && justBefore(posts[0], frozenAt):
				perFault["SIGSTOP"]++
				inFlight = append(inFlight, fmt.Sprintf("%s of PAY-%d (SIGSTOP)", m.what, n))
			case len(posts) > 1:
				doubled = append(doubled, fmt.Sprintf("%s of PAY-%d ×%d (first at %s; kill at %s, freeze at %s)", m.what, n, len(posts),
					posts[0].Format("15:04:05.000"), killedAt.Format("15:04:05.000"), frozenAt.Format("15:04:05.000")))
			}
		}
	}
	for _, m := range slack.Ephemerals("") {
		if strings.Contains(m.Text, "already") {
			doubled = append(doubled, "a reply saying "+m.Text)
		}
	}
	if len(inFlight) > 0 {
		t.Logf("sent again after being in flight at a kill or freeze: %v", inFlight)
	}
	t.Logf("requests: %d, lost %d, applied twice %d; messages lost %d, sent twice %d (+%d in flight at a kill or freeze)",
		requests, len(lost), len(twice), len(lostMsgs), len(doubled), len(inFlight))
	if len(lost)+len(twice) > 0 {
		t.Errorf("requests lost: %v; applied twice: %v", lost, twice)
	}
	if len(lostMsgs)+len(doubled) > 0 {
		t.Errorf("messages lost: %v; sent twice: %v", lostMsgs, doubled)
	}
	t.Logf("duplicates per fault: kill -9 %d, SIGSTOP %d, SIGTERM 0 (its outbox drained)", perFault["kill -9"], perFault["SIGSTOP"])
	for fault, n := range perFault {
		if n > 1 {
			t.Errorf("%d messages sent twice for the %s, want at most the one on the wire: %v", n, fault, inFlight)
		}
	}
	if n, _ := v.Head(); n != requests {
		t.Errorf("the audit log has %d entries, want %d", n, requests)
	}

	// The epochs of the audit entries never go back: no two terms'
	// transactions interleave, and the deposed leaders wrote nothing after.
	epochs := c.auditEpochs()
	for i := 1; i < len(epochs); i++ {
		if epochs[i] < epochs[i-1] {
			t.Errorf("audit entry %d has epoch %d after an entry of epoch %d: terms interleave", i+1, epochs[i], epochs[i-1])
		}
	}
	if epochs[len(epochs)-1] > epoch4 {
		t.Errorf("an entry has epoch %d, after the last term %d", epochs[len(epochs)-1], epoch4)
	}

	checkHealth(t, []*proc{second, fourth}, fourth, epoch4)

	// queue says who leads.
	if _, err := slack.Deliver(fakeslack.Mention("U0WHO", "C0RELEASE", "queue")); err != nil {
		t.Fatal(err)
	}
	leads := fmt.Sprintf("Answered by %s (leader, term %d).", fourth.holder(), epoch4)
	answered := func(st fakeslack.State) bool {
		for _, c := range st.Calls {
			if c.Method == "chat.postEphemeral" && c.Args.Get("user") == "U0WHO" {
				return true
			}
		}
		return false
	}
	if !slack.WaitFor(10*time.Second, answered) {
		t.Errorf("no answer to queue")
	} else if got := slack.Ephemerals("U0WHO")[0].Text; !strings.HasSuffix(got, leads) {
		t.Errorf("queue answered %q, want it to end with %q", got, leads)
	}

	// The verbs that read work on PostgreSQL too.
	var out syncBuffer
	verify := exec.Command(c.bin, "audit", "verify")
	verify.Env, verify.Stdout, verify.Stderr = c.env, &out, &out
	if err := verify.Run(); err != nil || !strings.Contains(out.String(), fmt.Sprintf("audit chain ok: %d entries", requests)) {
		t.Errorf("dobrobot audit verify: %v\n%s", err, out.String())
	}

	c.terminate()
	for _, p := range c.procs {
		logs := p.logs.String()
		for _, secret := range []string{fakeslack.AppToken, fakeslack.BotToken} {
			if strings.Contains(logs, secret) {
				t.Errorf("a token appears in the logs of %s", p.name)
			}
		}
	}
	if !strings.Contains(second.logs.String(), "lost the leadership") {
		t.Errorf("the thawed ex-leader %s did not log that it lost the leadership", second.name)
	}
}

var listening = regexp.MustCompile(`"addr":"(127\.0\.0\.1:\d+)"[^\n]*http listening`)

// checkHealth checks what /healthz of each of procs says: the leader is
// connected, the others stand by, and all name the leader and its term.
func checkHealth(t *testing.T, procs []*proc, leader *proc, term int64) {
	t.Helper()
	for _, p := range procs {
		// A standby may still be starting when another instance leads.
		var m []string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if m = listening.FindStringSubmatch(p.logs.String()); m != nil || time.Now().After(deadline) {
				break
			}
		}
		if m == nil {
			t.Errorf("%s did not log the address of its http listener", p.name)
			continue
		}
		wantRole, wantSlack := "standby", "standby"
		if p == leader {
			wantRole, wantSlack = "leader", "connected"
		}
		host, _ := os.Hostname()
		want := monitor.Health{Status: "ok", Database: "ok", Slack: wantSlack, Role: wantRole,
			Leader: host + ":" + strconv.Itoa(leader.cmd.Process.Pid), Term: term}
		var got monitor.Health
		deadline := time.Now().Add(5 * time.Second)
		for {
			got = monitor.Health{}
			resp, err := http.Get("http://" + m[1] + "/healthz")
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
			}
			if err != nil {
				t.Errorf("/healthz of %s: %v", p.name, err)
				break
			}
			if cmp.Equal(want, got) || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("/healthz of %s (-want +got):\n%s", p.name, diff)
		}
	}
}

// justBefore reports whether a message that reached Slack at posted was in
// flight when its sender was killed or frozen at stopped: the process may
// have died before it heard Slack's answer or recorded it.
func justBefore(posted, stopped time.Time) bool {
	return !posted.Before(stopped.Add(-250*time.Millisecond)) && !posted.After(stopped.Add(50*time.Millisecond))
}
