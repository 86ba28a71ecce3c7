package bot

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
)

// Concurrency through Slack (RELIABILITY.md T5, T8, T9): envelopes arrive at
// once on the socket; each is recorded, acked and handled on its own
// goroutine by the real adapter.

// sendAll sends every envelope at once and waits for their acks.
func sendAll(t *testing.T, fs *fakeslack.Server, envs []fakeslack.Envelope) {
	t.Helper()
	var wg sync.WaitGroup
	sent := make([]fakeslack.Envelope, len(envs))
	for i, env := range envs {
		wg.Go(func() { sent[i] = send(t, fs, env) })
	}
	wg.Wait()
	for _, env := range sent {
		if _, err := fs.WaitAck(env.EnvelopeID, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSlackFiftyClicksOnOneAccept(t *testing.T) {
	fs := fakeslack.New(t)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{})
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1")))
	approve := button(t, fs, bob, "accept PAY-1")
	var envs []fakeslack.Envelope
	for range 50 {
		envs = append(envs, fs.ClickEnvelope(fakeslack.ClickOn(bob, approve)))
	}
	sendAll(t, fs, envs)
	eventually(t, "fifty answers", func() bool { return len(fs.Ephemerals(bob)) >= 50 })
	h.settle(t)
	accepted, already := 0, 0
	for _, m := range fs.Ephemerals(bob) {
		switch {
		case strings.Contains(m.Text, "You accepted PAY-1"):
			accepted++
		case strings.Contains(m.Text, "already accepted"):
			already++
		default:
			t.Errorf("unexpected answer %q", m.Text)
		}
	}
	if accepted != 1 || already != 49 {
		t.Errorf("answers: %d accepted, %d already; want 1 and 49", accepted, already)
	}
	if n := count(h.audit(t, "PAY-1"), bob+":accept"); n != 1 {
		t.Errorf("accept audit entries: %d, want 1", n)
	}
	if n := len(cards(fs)); n != 1 {
		t.Errorf("cards: %d, want 1", n)
	}
	t.Logf("FIGURE Slack: 50 simultaneous clicks on one Approve → %d transition, %d audit entry, %d already-accepted answers", accepted, count(h.audit(t, "PAY-1"), bob+":accept"), already)
}

func TestSlackTwentyStartsOneLockHolder(t *testing.T) {
	fs := fakeslack.New(t)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{})
	// Twenty ready releases of backend, prepared in the store; then each
	// is started at once, by its requester and by an admin.
	ctx := context.Background()
	err := h.db.Update(ctx, func(tx commands.Tx) error {
		for i := range 20 {
			_, err := tx.PutRelease(commands.Release{Ticket: fmt.Sprintf("PAY-%d", 100+i), State: commands.StateAccepted, Requester: ann,
				Approver: bob, Components: []string{"backend"}, Locks: []string{"backend"}})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var envs []fakeslack.Envelope
	for i := range 20 {
		text := fmt.Sprintf("dep start PAY-%d", 100+i)
		envs = append(envs, fs.EventEnvelope(fakeslack.DM(ann, text)), fs.EventEnvelope(fakeslack.Mention(adm, releaseChannel, text)))
	}
	sendAll(t, fs, envs)
	eventually(t, "forty answers", func() bool {
		return len(fs.Messages(fakeslack.DMChannel(ann)))+len(fs.Ephemerals(adm)) >= 40
	})
	h.settle(t)
	var holders []string
	_ = h.db.View(ctx, func(tx commands.Tx) error {
		locks, err := tx.Locks()
		for _, l := range locks {
			holders = append(holders, l.Component+"="+l.Ticket)
		}
		return err
	})
	if len(holders) != 1 || holders[0] != "backend=PAY-100" {
		t.Errorf("locks %v, want backend held by PAY-100 alone", holders)
	}
	starts := 0
	for i := range 20 {
		for _, a := range h.audit(t, fmt.Sprintf("PAY-%d", 100+i)) {
			if strings.HasSuffix(a, ":start") {
				starts++
			}
		}
	}
	if starts != 1 {
		t.Errorf("%d starts audited, want 1", starts)
	}
}
