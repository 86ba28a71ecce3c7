package main

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/postgres"
)

// ackDelays returns, for each event ID in ids, how long after its first
// envelope was sent the first ack of any of its envelopes came (a negative
// duration: never acked).
func ackDelays(sent []fakeslack.Sent, acks []fakeslack.Ack, ids []string) map[string]time.Duration {
	first := map[string]time.Time{}
	event := map[string]string{} // envelope ID → event ID
	for _, s := range sent {
		if _, ok := first[s.EventID]; !ok {
			first[s.EventID] = s.Time
		}
		event[s.EnvelopeID] = s.EventID
	}
	acked := map[string]time.Time{}
	for _, a := range acks {
		id := event[a.EnvelopeID]
		if at, ok := acked[id]; id != "" && (!ok || a.Time.Before(at)) {
			acked[id] = a.Time
		}
	}
	out := make(map[string]time.Duration, len(ids))
	for _, id := range ids {
		at, ok := acked[id]
		if !ok {
			out[id] = -1
			continue
		}
		out[id] = at.Sub(first[id])
	}
	return out
}

// TestStandbysAcknowledge runs three `dobrobot run` processes on one
// PostgreSQL schema. Every instance, the standbys too, holds Socket Mode
// connections; fakeslack gives each event to one of them at random. Each
// event must be acknowledged within Slack's 3 s, those that reach a
// standby recorded by it in the shared inbox, and the leader must carry out
// every one of them exactly once, while the standbys post nothing. Then the
// approver accepts each request with a click (which Slack never sends
// again): each is acknowledged in time and carried out too.
func TestStandbysAcknowledge(t *testing.T) {
	const (
		instances = 3
		events    = 9
	)
	c := startCluster(t, clusterOptions{instances: instances, tickets: events, logLevel: "debug"})
	lead, epoch := c.leader(0, 20*time.Second)
	if !c.slack.WaitFor(20*time.Second, func(st fakeslack.State) bool { return st.Connections == instances*slackConns }) {
		t.Fatalf("the standbys hold no Socket Mode connections: %d open, want %d (%d per instance)",
			c.slack.Connections(), instances*slackConns, slackConns)
	}
	t.Logf("%s leads term %d; %d connections open", lead.name, epoch, c.slack.Connections())

	var ids []string
	for n := 1; n <= events; n++ {
		env, err := c.slack.Deliver(fakeslack.Mention(fmt.Sprintf("U0REQ%02d", n), "C0RELEASE", fmt.Sprintf("dobro PAY-%d", n)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, env.EventID())
	}
	rels := c.settled(30*time.Second, func(rels []commands.Release) bool { return len(rels) >= events })

	var late []string
	for id, d := range ackDelays(c.slack.Sent(), c.slack.Acks(), ids) {
		if d < 0 || d > ackDeadline {
			late = append(late, fmt.Sprintf("%s (%v)", id, d))
		}
	}
	if len(late) > 0 {
		t.Errorf("events not acknowledged within %v: %v", ackDeadline, late)
	}
	var tickets []string
	for _, r := range rels {
		tickets = append(tickets, r.Ticket)
	}
	slices.Sort(tickets)
	if want := events; len(tickets) != want || len(slices.Compact(slices.Clone(tickets))) != want {
		t.Errorf("releases %v, want one for each of PAY-1 to PAY-%d", tickets, events)
	}
	// Clicks, which Slack never sends again: the approver accepts each
	// request with its button, whichever instance's connection gets it.
	var clicks []string
	for n := 1; n <= events; n++ {
		var accept fakeslack.Button
		for _, b := range c.slack.Buttons(fakeslack.DMChannel("U0APPROVER")) {
			if b.Value == fmt.Sprintf("accept PAY-%d", n) {
				accept = b
			}
		}
		if accept.Value == "" {
			t.Fatalf("no accept button for PAY-%d in the approver's DMs", n)
		}
		env, err := c.slack.SendClick(fakeslack.ClickOn("U0APPROVER", accept))
		if err != nil {
			t.Fatal(err)
		}
		clicks = append(clicks, env.EnvelopeID)
	}
	c.settled(30*time.Second, func(rels []commands.Release) bool {
		for _, r := range rels {
			if r.State != commands.StateAccepted {
				return false
			}
		}
		return true
	})
	for i, env := range clicks {
		if d, ok := c.slack.AckLatency(env); !ok || d > ackDeadline {
			t.Errorf("the click on accept PAY-%d was acknowledged %t, after %v; want within %v", i+1, ok, d, ackDeadline)
		}
	}

	recorded := 0
	for _, p := range c.procs {
		n := strings.Count(p.logs.String(), "recorded an event for the leader")
		if p == lead && n > 0 {
			t.Errorf("the leader %s recorded %d events for a leader, as a standby does", p.name, n)
		}
		recorded += n
	}
	if recorded == 0 {
		t.Errorf("no standby recorded an event: fakeslack gave all %d to the leader's %d of %d connections", 2*events, slackConns, instances*slackConns)
	}
	t.Logf("%d of %d events and clicks came through a standby", recorded, 2*events)
	// Only the leader posts: every audit entry is of its term.
	for i, e := range c.auditEpochs() {
		if e != epoch {
			t.Errorf("audit entry %d has epoch %d, want the leader's %d", i+1, e, epoch)
		}
	}
	// A standby's Slack client refuses every call but the two it needs
	// (postgres.StandbyRequests, tested there): none was even tried.
	for _, p := range c.procs {
		if strings.Contains(p.logs.String(), postgres.ErrStandby.Error()) {
			t.Errorf("%s tried a Slack call while standing by", p.name)
		}
		// The siblings' connections are no second deployment.
		if strings.Contains(p.logs.String(), "another connection to this Slack app is open") {
			t.Errorf("%s warns of another connection to the Slack app: its siblings'", p.name)
		}
	}
}

// TestFreezeDelaysFewEvents freezes the leader of three instances (SIGSTOP)
// while a stream of direct messages arrives, thaws it later, and reports the
// share of the events sent during the freeze that were acknowledged more
// than 3 s after Slack sent them: on real Slack each of those waits for the
// next retry. Only the frozen instance's own connections may hold events
// back: the share must stay near its share of the connections.
func TestFreezeDelaysFewEvents(t *testing.T) {
	const (
		instances     = 3
		leaderTimeout = 2 * time.Second
		freeze        = 6 * time.Second
		every         = 50 * time.Millisecond
	)
	c := startCluster(t, clusterOptions{instances: instances, leaderTimeout: leaderTimeout, logLevel: "debug"})
	lead, epoch := c.leader(0, 20*time.Second)
	if !c.slack.WaitFor(20*time.Second, func(st fakeslack.State) bool { return st.Connections >= slackConns }) {
		t.Fatalf("the leader did not connect to Slack")
	}
	// Whatever connections the other instances open, they open at start.
	_ = c.slack.WaitFor(10*time.Second, func(st fakeslack.State) bool { return st.Connections == instances*slackConns })
	conns := c.slack.Connections()

	var ids []string
	users := map[string]string{}
	send := func(n int) {
		user := fmt.Sprintf("U0DM%04d", n)
		env, err := c.slack.Deliver(fakeslack.DM(user, "help"))
		if err != nil {
			t.Fatalf("deliver event %d: %v", n, err)
		}
		ids = append(ids, env.EventID())
		users[env.EventID()] = user
	}
	lead.signal(syscall.SIGSTOP)
	frozen := time.Now()
	for n := 0; time.Since(frozen) < freeze; n++ {
		send(n)
		time.Sleep(every)
	}
	lead.signal(syscall.SIGCONT)
	next, epoch2 := c.leader(epoch, 20*time.Second)

	// Every event is carried out: each user got an answer by DM.
	answered := func(st fakeslack.State) bool {
		got := map[string]bool{}
		for _, call := range st.Calls {
			if call.Error == "" && call.Method == "chat.postMessage" {
				got[call.Args.Get("channel")] = true
			}
		}
		for _, u := range users {
			if !got[fakeslack.DMChannel(u)] {
				return false
			}
		}
		return true
	}
	if !c.slack.WaitFor(60*time.Second, answered) {
		t.Fatalf("not every event sent during the freeze was answered within 60 s")
	}
	c.settled(30*time.Second, func([]commands.Release) bool { return true })

	delayed := 0
	var worst time.Duration
	for _, d := range ackDelays(c.slack.Sent(), c.slack.Acks(), ids) {
		if d < 0 || d > ackDeadline {
			delayed++
		}
		worst = max(worst, d)
	}
	share := float64(delayed) / float64(len(ids))
	t.Logf("freeze of %s (leader of term %d) for %v, %s took over (term %d); %d connections open before: "+
		"%d of %d events sent during the freeze acknowledged after more than %v (%.0f%%; slowest ack %v)",
		lead.name, epoch, freeze, next.name, epoch2, conns, delayed, len(ids), ackDeadline, 100*share, worst.Round(time.Millisecond))
	// The frozen instance holds 1/instances of the connections; allow for
	// fakeslack's random choice.
	if limit := 1.5 / instances; share > limit {
		t.Errorf("%.0f%% of the events sent during a freeze were acknowledged late, want at most %.0f%%", 100*share, 100*limit)
	}
}
