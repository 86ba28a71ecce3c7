package commands_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// Concurrency (RELIABILITY.md T8, T9, T12): many commands at once on one
// Service and one bbolt file. Run with -race; make soak repeats them with
// -count.

// handleAll sends each message on its own goroutine, all released at once,
// and waits for them and for the hooks they started.
func handleAll(t *testing.T, h *harness, msgs []commands.Message) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for _, m := range msgs {
		wg.Go(func() {
			<-gate
			if _, err := h.svc.Receive(ctx, m); err != nil {
				t.Errorf("Receive %s: %v", m.EventID, err)
				return
			}
			if err := h.svc.Handle(ctx, m); err != nil {
				t.Errorf("Handle %s: %v", m.EventID, err)
			}
		})
	}
	close(gate)
	wg.Wait()
	h.svc.Wait()
}

// checkInvariants fails t when I1–I5 do not hold.
func checkInvariants(t *testing.T, s commands.Store) snapshot {
	t.Helper()
	snap, err := takeSnapshot(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range snap.violations(nil, false) {
		t.Error(v)
	}
	return snap
}

// repliesByText counts the replies among effects.
func repliesByText(effects []commands.Effect) map[string]int {
	out := map[string]int{}
	for _, e := range effects {
		if e.Kind == commands.EffectReply {
			out[render(e.Text)]++
		}
	}
	return out
}

func auditCount(snap snapshot, action commands.Action) int {
	n := 0
	for _, e := range snap.audit {
		if e.Action == action {
			n++
		}
	}
	return n
}

// TestConcurrentAcceptFromEveryPath is T8: fifty approvals of one release at
// once, by two approvers through mentions, DMs and buttons: one transition,
// one audit entry, and every other click is told it was accepted already.
func TestConcurrentAcceptFromEveryPath(t *testing.T) {
	h := newHarness(t)
	h.script([]step{{ann, "dobro PAY-1", []string{"in the queue"}}})
	var msgs []commands.Message
	vias := []commands.Via{commands.ViaMention, commands.ViaDM, commands.ViaButton}
	for i := range 50 {
		who := []string{approver, qa}[i%2]
		msgs = append(msgs, commands.Message{EventID: fmt.Sprintf("acc-%d", i), User: who, Channel: "C0REL",
			Text: "accept PAY-1", Via: vias[i%3]})
	}
	handleAll(t, h, msgs)
	replies := repliesByText(h.drain())
	accepted, already := 0, 0
	for text, n := range replies {
		switch {
		case text == "You accepted PAY-1.":
			accepted += n
		case strings.Contains(text, "is already accepted by"):
			already += n
		default:
			t.Errorf("unexpected reply %q (%d×)", text, n)
		}
	}
	if accepted != 1 || already != 49 {
		t.Errorf("replies: %d acceptances, %d already-accepted; want 1 and 49", accepted, already)
	}
	snap := checkInvariants(t, h.db)
	if n := auditCount(snap, commands.ActionAccept); n != 1 || len(snap.audit) != 2 {
		t.Errorf("audit: %d accept entries of %d; want 1 accept after the request", n, len(snap.audit))
	}
	t.Logf("FIGURE concurrent accept: 50 at once → %d transition, %d audit entry, %d already-accepted", accepted, auditCount(snap, commands.ActionAccept), already)
}

// TestConcurrentStartOneRelease is T9 on one release: twenty dep start at
// once by its requester and an admin, with the start hook held open so the
// window is wide: one start, one lock holder, one hook spawned.
func TestConcurrentStartOneRelease(t *testing.T) {
	h := newHarness(t)
	h.start.hold = true
	h.start.gate = make(chan commands.HookResult)
	h.start.spawn = make(chan commands.Job, 20)
	h.script([]step{{ann, "dobro PAY-1 no_need_admin", nil}, {approver, "accept PAY-1", nil}})
	var msgs []commands.Message
	for i := range 20 {
		msgs = append(msgs, commands.Message{EventID: fmt.Sprintf("start-%d", i), User: []string{ann, admin}[i%2],
			Channel: "C0REL", Text: "dep start PAY-1", Via: commands.ViaMention})
	}
	handled := &handledCounter{}
	h.rebuild(func(c *commands.Config) { c.Observer = handled })
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-h.start.spawn
		// The hook ends only once every one of the twenty was handled
		// (the Service's Observer says so), so all of them ran while it
		// was running: a condition, not a pause.
		for handled.n.Load() < int64(len(msgs)) {
			time.Sleep(time.Millisecond)
		}
		h.start.gate <- commands.HookResult{OK: true}
	}()
	handleAll(t, h, msgs)
	<-done
	h.svc.Wait()
	replies := repliesByText(h.drain())
	started := replies["Deploy of PAY-1 started."]
	if started != 1 {
		t.Errorf("replies %v: want exactly one start", replies)
	}
	if n := h.start.count(); n != 1 {
		t.Errorf("start hook spawned %d times, want 1", n)
	}
	if got := h.locks(); !slices.Equal(got, []string{"backend=PAY-1", "payments=PAY-1"}) {
		t.Errorf("locks = %v", got)
	}
	snap := checkInvariants(t, h.db)
	if n := auditCount(snap, commands.ActionStart); n != 1 {
		t.Errorf("start entries: %d, want 1", n)
	}
	t.Logf("FIGURE concurrent dep start (one release): 20 at once → %d start, %d hook spawn, lock holders %v", started, h.start.count(), h.locks())
}

// TestConcurrentStartOneComponent is T9 across releases: twenty ready
// releases of one component, each started at once by its requester and by
// an admin: exactly one holds the component, the first in the queue.
func TestConcurrentStartOneComponent(t *testing.T) {
	h := newHarness(t)
	var msgs []commands.Message
	for i := range 20 {
		key := fmt.Sprintf("PAY-%d", 200+i)
		h.tracker.tickets[key] = readyTicket(key, "payments")
		requester := []string{ann, bob}[i%2]
		h.script([]step{{requester, "dobro " + key + " no_need_admin", nil}, {approver, "accept " + key, nil}})
		msgs = append(msgs,
			commands.Message{EventID: "req-" + key, User: requester, Channel: "C0REL", Text: "dep start " + key, Via: commands.ViaDM},
			commands.Message{EventID: "adm-" + key, User: admin, Channel: "C0REL", Text: "dep start " + key, Via: commands.ViaButton})
	}
	rand.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	handleAll(t, h, msgs)
	if got := h.locks(); !slices.Equal(got, []string{"payments=PAY-200"}) {
		t.Errorf("locks = %v, want PAY-200 alone holding payments", got)
	}
	snap := checkInvariants(t, h.db)
	if n := auditCount(snap, commands.ActionStart); n != 1 {
		t.Errorf("start entries: %d, want 1", n)
	}
	// PAY-200's second start is refused while its hook runs, or told it
	// is deploying already (not audited) once the hook is done.
	if n := auditCount(snap, commands.ActionRefused); n != 38 && n != 39 {
		t.Errorf("refused entries: %d, want 38 or 39 (one for each start of a later release, maybe PAY-200's second)", n)
	}
}

// TestConcurrentDuplicateDeliveries: one event delivered twenty times at once
// (Slack retries racing a reconnect), each copy received and handled: one
// effect.
func TestConcurrentDuplicateDeliveries(t *testing.T) {
	h := newHarness(t)
	m := commands.Message{EventID: "EvSAME", User: ann, Channel: "C0REL", Text: "dobro PAY-1", Via: commands.ViaMention}
	msgs := slices.Repeat([]commands.Message{m}, 20)
	handleAll(t, h, msgs)
	effects := h.drain()
	if r := repliesByText(effects); len(r) != 1 || r["<https://jira.example.com/browse/PAY-1|PAY-1> is in the queue (#1). Asked 2 approver(s)."] != 1 {
		t.Errorf("replies %v, want one", r)
	}
	snap := checkInvariants(t, h.db)
	if len(snap.audit) != 1 || len(snap.releases) != 1 {
		t.Errorf("%d audit entries, %d releases; want 1 and 1", len(snap.audit), len(snap.releases))
	}
}

// TestConcurrentRandomCommandsKeepInvariants: several actors fire random
// commands at once (the model's generator, without its predictions: the
// order is the scheduler's); afterwards every event has been handled once,
// answered once, and I1–I5 hold.
func TestConcurrentRandomCommandsKeepInvariants(t *testing.T) {
	const rounds, actors, each = 4, 6, 20
	total := 0
	for round := range rounds {
		h := newHarness(t)
		for k, comps := range modelTickets {
			h.tracker.tickets[k] = readyTicket(k, comps...)
		}
		h.start.fail = round%2 == 1
		m := &model{envs: modelPlain, frozen: map[mFreeze]bool{}} // the harness has no environments
		g := &gen{rng: rand.New(rand.NewPCG(uint64(round), 7)), m: m}
		var msgs []commands.Message
		for i := range actors * each {
			c := g.next()
			m.apply(c, time.Time{}) // keeps the generator's choices plausible; not a prediction
			msgs = append(msgs, commands.Message{EventID: fmt.Sprintf("r%d-%d", round, i), User: c.actor,
				Channel: "C0REL", Text: c.text, Via: c.via})
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		for a := range actors {
			wg.Go(func() {
				for _, msg := range msgs[a*each : (a+1)*each] {
					if _, err := h.svc.Receive(ctx, msg); err != nil {
						t.Error(err)
						return
					}
					if err := h.svc.Handle(ctx, msg); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		h.svc.Wait()
		snap := checkInvariants(t, h.db)
		replies := map[string]int{}
		for _, e := range h.drain() {
			// An admin's audit by DM is answered with the file (as
			// checkReplies counts it).
			if (e.Kind == commands.EffectReply || e.Kind == commands.EffectFile) && e.Event != "" {
				replies[e.Event]++
			}
		}
		for _, msg := range msgs {
			if replies[msg.EventID] != 1 {
				t.Errorf("round %d: event %s (%s: %s) got %d replies, want 1", round, msg.EventID, msg.User, msg.Text, replies[msg.EventID])
			}
		}
		err := h.db.View(ctx, func(tx commands.Tx) error {
			pending, err := tx.PendingEvents()
			if len(pending) > 0 {
				t.Errorf("round %d: %d events left unprocessed", round, len(pending))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		total += len(msgs)
		if t.Failed() {
			t.Fatalf("round %d failed; audit has %d entries", round, len(snap.audit))
		}
	}
	t.Logf("FIGURE concurrent random commands: %d rounds × %d actors × %d commands = %d commands, invariants hold", rounds, actors, each, total)
}

// handledCounter is a commands.Observer that counts handled commands.
type handledCounter struct{ n atomic.Int64 }

func (c *handledCounter) Command(commands.Verb, commands.Outcome, time.Duration) { c.n.Add(1) }
func (c *handledCounter) Hook(commands.HookResult)                               {}
