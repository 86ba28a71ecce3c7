package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// crashIterations is how many random kills TestRandomKills survives;
// DOBROBOT_CRASH_ITERATIONS raises it for a longer run.
func crashIterations() int {
	if n, err := strconv.Atoi(os.Getenv("DOBROBOT_CRASH_ITERATIONS")); err == nil && n > 0 {
		return n
	}
	return 30
}

// TestRandomKills runs a mixed workload (requests, approvals, claims,
// starts, finishes, cancels and reads on six tickets, with Slack
// redelivering what was not acked) and kills the bot with SIGKILL at random
// times, checking the invariants after every kill; then it lets a last run
// settle and checks that every acknowledged command was processed and that
// every success the users saw is in the audit log (docs/reliability.md, T15).
func TestRandomKills(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{hookSleep: 50 * time.Millisecond})
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)
	tickets := []string{"PAY-1", "PAY-2", "PAY-3", "PAY-4", "PAY-5", "PAY-6"}
	// Each ticket mostly walks its release forward; now and then a random
	// command (often refused: out of order, wrong person) or a cancel.
	type step struct{ user, verb string }
	flow := []step{{requester, "dobro"}, {approver, "accept"}, {admin, "here"}, {requester, "dep start"}, {requester, "dep finish"}}
	odd := []step{{admin, "cancel"}, {requester, "accept"}, {requester, "status"}, {requester, "queue"}, {admin, "dep start"}, {approver, "reject"}}
	next := make([]int, len(tickets))
	pick := func() string {
		i := rng.IntN(len(tickets))
		st := flow[next[i]]
		if rng.IntN(5) == 0 {
			st = odd[rng.IntN(len(odd))]
		} else {
			next[i] = (next[i] + 1) % len(flow)
		}
		if st.verb == "queue" {
			return st.user + " queue"
		}
		return st.user + " " + st.verb + " " + tickets[i]
	}
	iterations := crashIterations()
	start := time.Now()
	sent := 0
	for i := range iterations {
		p := w.start("")
		until := time.Now().Add(time.Duration(20+rng.IntN(400)) * time.Millisecond)
		for time.Now().Before(until) {
			user, text, _ := strings.Cut(pick(), " ")
			if _, err := w.slack.Deliver(mention(user, text)); err == nil {
				sent++
			}
			time.Sleep(time.Duration(5+rng.IntN(20)) * time.Millisecond)
		}
		p.kill()
		w.inspect(tickets...)
		if t.Failed() {
			t.Fatalf("invariants broken after kill %d (seed %d)\n%s", i+1, seed, p.logs)
		}
	}
	// Last runs with no new commands: Slack's retries and the inbox bring
	// every acknowledged command to its end. On a loaded machine that can
	// take more than one run (each is killed too).
	var s snapshot
	unprocessed := func() []string {
		var out []string
		for id, ev := range s.events {
			if w.acked(id) && !ev.Processed {
				out = append(out, fmt.Sprintf("%s (%q)", id, ev.Message.Text))
			}
		}
		return out
	}
	settle, settleRuns := time.Now(), 0
	for {
		settleRuns++
		p := w.start("")
		time.Sleep(2 * time.Second)
		p.kill()
		s = w.inspect(tickets...)
		if len(unprocessed()) == 0 || time.Since(settle) > 40*time.Second {
			break
		}
	}
	for _, e := range unprocessed() {
		t.Errorf("event %s was acknowledged but never processed", e)
	}
	// Every success a user saw was committed.
	seen := map[commands.Action]*regexp.Regexp{
		commands.ActionRequest: regexp.MustCompile(`(PAY-\d)> is in the queue \(#`),
		commands.ActionAccept:  regexp.MustCompile(`^You accepted (PAY-\d)\.`),
		commands.ActionClaim:   regexp.MustCompile(`^You claimed (PAY-\d)\.`),
		commands.ActionStart:   regexp.MustCompile(`^Deploy of (PAY-\d) started\.`),
		commands.ActionCancel:  regexp.MustCompile(`^(PAY-\d) is cancelled\.`),
	}
	confirmed := 0
	for _, m := range w.slack.Ephemerals("") {
		for action, re := range seen {
			match := re.FindStringSubmatch(m.Text)
			if match == nil {
				continue
			}
			confirmed++
			if !slices.ContainsFunc(s.audit, func(e commands.AuditEntry) bool { return e.Action == action && e.Ticket == match[1] }) {
				t.Errorf("the user saw %q, but the audit log has no %s of %s", m.Text, action, match[1])
			}
		}
	}
	spawns := w.spawns()
	t.Logf("%d kills survived in %v: %d commands sent, %d acked, %d successes confirmed, %d audit entries, %d hooks spawned; settled in %d more runs",
		iterations, time.Since(start).Round(time.Millisecond), sent, len(w.slack.Acks()), confirmed, len(s.audit), len(spawns), settleRuns)
}
