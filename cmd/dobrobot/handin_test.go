package main

import (
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/failpoint"
	"github.com/dobrobot/dobrobot/storage/postgres"
)

// TestHookHandedInAfterFreeze (issue 19, item 4): two real `dobrobot run`
// instances on one PostgreSQL schema, the start hook a real process. The
// leader is frozen (SIGSTOP) right after it spawned the hook; the hook ends
// during the freeze; the standby takes over and its recovery reports the
// hook interrupted. Thawed, the deposed instance hands the hook's result
// in: the release moves on by itself, the audit log records the result
// with its attempt ID and who handed it in, the hook ran once, and dep
// finish then runs the finish hook once.
func TestHookHandedInAfterFreeze(t *testing.T) {
	c := startCluster(t, clusterOptions{instances: 2, leaderTimeout: 2 * time.Second, hookSleep: time.Second,
		ack: time.Second, retries: []time.Duration{0, 500 * time.Millisecond, time.Second, 2 * time.Second},
		ticketsYAML: crashTickets, components: "[backend, payments, ios]",
		env: []string{failpoint.EnvVar + "="}, logLevel: "debug"})
	store := c.store
	first, epoch := c.leaderHello(0, 0, 30*time.Second)

	c.send(requester, "dobro PAY-2")
	c.waitReply(requester, "PAY-2> is in the queue")
	c.send(approver, "accept PAY-2")
	c.waitReply(approver, "You accepted PAY-2.")
	c.send(admin, "here PAY-2")
	c.waitReply(admin, "You claimed PAY-2.")
	hellos := c.slack.Hellos()
	c.send(requester, "dep start PAY-2")
	if !waitFor(20*time.Second, func() bool { return countSpawns(c.spawns(), "PAY-2", "start") == 1 }) {
		t.Fatalf("the start hook did not run within 20 s")
	}
	// The hook runs (1 s, in its own process group, so it goes on): freeze
	// its leader. It ends before the takeover (about leader_timeout).
	first.signal(syscall.SIGSTOP)
	frozenAt := time.Now()
	attempt := c.spawns()[0].attempt
	second, epoch2 := c.leaderHello(epoch, hellos, 30*time.Second)
	interrupted := waitEntry(t, store, "PAY-2", commands.ActionInterrupt, 0)
	t.Logf("%s froze in term %d; %s leads term %d after %v and reported attempt %s interrupted",
		first.name, epoch, second.name, epoch2, time.Since(frozenAt).Round(time.Millisecond), attempt)
	if !strings.Contains(interrupted.Detail, attempt) || !strings.Contains(interrupted.Detail, "may still hand in") {
		t.Errorf("the interruption's detail %q; want attempt %s and that its result may still be handed in", interrupted.Detail, attempt)
	}
	thawedAt := time.Now()
	first.signal(syscall.SIGCONT)

	started := waitEntry(t, store, "PAY-2", commands.ActionStarted, interrupted.Seq)
	t.Logf("FIGURE hand-in: the deposed instance's result was recorded %v after the thaw", time.Since(thawedAt).Round(time.Millisecond))
	for _, want := range []string{"start hook ok", "handed in by " + first.holder(), "(attempt " + attempt + ")"} {
		if !strings.Contains(started.Detail, want) {
			t.Errorf("the handed-in entry's detail %q does not say %q", started.Detail, want)
		}
	}
	rel := lastRelease(t, store, "PAY-2")
	if rel.State != commands.StateDeploying || rel.Running != nil || rel.LastHook == nil || !rel.LastHook.OK || rel.LastHook.Attempt != attempt {
		t.Fatalf("after the hand-in: %s, running %+v, last hook %+v; want deploying with attempt %s's success", rel.State, rel.Running, rel.LastHook, attempt)
	}
	c.waitMessage(func() []fakeslack.Message { return c.slack.Messages(channel) }, "it handed in the result", "a thread post of the hand-in")

	// The release moves on from there: dep finish runs the finish hook once.
	c.send(requester, "dep finish PAY-2")
	waitEntry(t, store, "PAY-2", commands.ActionFinish, started.Seq)
	spawns := c.spawns()
	if n, m := countSpawns(spawns, "PAY-2", "start"), countSpawns(spawns, "PAY-2", "finish"); n != 1 || m != 1 {
		t.Errorf("hook runs: start %d, finish %d; want one of each", n, m)
	}
	var out syncBuffer
	verify := exec.Command(c.bin, "audit", "verify")
	verify.Env, verify.Stdout, verify.Stderr = c.env, &out, &out
	if err := verify.Run(); err != nil || !strings.Contains(out.String(), "audit chain ok") {
		t.Errorf("dobrobot audit verify: %v\n%s", err, out.String())
	}
	if !strings.Contains(first.logs.String(), "lost the leadership") {
		t.Errorf("the thawed instance %s did not log that it lost the leadership", first.name)
	}
	for _, p := range c.procs {
		p.stop()
	}
}

// waitEntry waits up to 30 s for an audit entry of ticket with action after
// seq, and returns it.
func waitEntry(t *testing.T, store *postgres.DB, ticket string, action commands.Action, after uint64) commands.AuditEntry {
	t.Helper()
	var found commands.AuditEntry
	ok := waitFor(30*time.Second, func() bool {
		err := store.Audit(context.Background(), commands.AuditFilter{Ticket: ticket}, func(e commands.AuditEntry) error {
			if e.Seq > after && e.Action == action && found.Seq == 0 {
				found = e
			}
			return nil
		})
		return err == nil && found.Seq != 0
	})
	if !ok {
		t.Fatalf("no %s entry of %s after seq %d within 30 s", action, ticket, after)
	}
	return found
}

// lastRelease reads ticket's newest release.
func lastRelease(t *testing.T, store *postgres.DB, ticket string) commands.Release {
	t.Helper()
	var rel commands.Release
	if err := store.View(context.Background(), func(tx commands.Tx) error {
		var err error
		rel, err = tx.LastRelease(ticket)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return rel
}
