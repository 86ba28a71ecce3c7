package commands_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/clocktest"
	"github.com/dobrobot/dobrobot/storage"
)

// turnWindow is the claim window of the turn tests.
const turnWindow = 15 * time.Minute

// turnEnvs is qa and production, both without approval or admin and
// without hooks: a dobro is accepted at once, so that the tests are about
// turns only.
func turnEnvs(c *commands.Config) {
	p := c.Policy
	c.Policy.Envs = []commands.EnvPolicy{
		{Name: "qa", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components, Approvals: 1},
		{Name: "production", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components, Approvals: 1},
	}
	c.ClaimWindow = turnWindow
}

// newTurnHarness is a schedHarness with turnEnvs over the store at path.
func newTurnHarness(t *testing.T) *schedHarness {
	t.Helper()
	return fileSchedHarness(t, turnEnvs)
}

// nexts returns "user: ticket" of each "you're next" DM among effects, and
// "user: passed TICKET" of each turn-passed one.
func nexts(effects []commands.Effect) []string {
	var out []string
	for _, e := range effects {
		text := render(e.Text)
		if e.Kind != commands.EffectDM {
			continue
		}
		for _, tk := range []string{"PAY-1", "PAY-2", "PAY-3"} {
			switch {
			case strings.HasPrefix(text, "You're next: <https://jira.example.com/browse/"+tk+"|"):
				out = append(out, e.User+": "+tk)
			case strings.HasPrefix(text, "Your turn for <https://jira.example.com/browse/"+tk+"|"):
				out = append(out, e.User+": passed "+tk)
			}
		}
	}
	slices.Sort(out)
	return out
}

// passAudit returns "ticket minutes: detail" of every pass_turn entry,
// checking each is by dobrobot via the scheduler.
func passAudit(t *testing.T, db commands.Store, t0 time.Time) []string {
	t.Helper()
	var out []string
	err := db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		if e.Action == commands.ActionPassTurn {
			if e.Actor != commands.ActorDobrobot || e.Via != commands.SourceScheduler || e.From != commands.StateNone || e.To != commands.StateNone {
				t.Errorf("pass_turn entry by %q via %q (%s→%s), want %q via %q, no state change", e.Actor, e.Via, e.From, e.To, commands.ActorDobrobot, commands.SourceScheduler)
			}
			out = append(out, fmt.Sprintf("%s %s %s: %s", e.Ticket, e.Env, e.Time.Sub(t0), e.Detail))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// queueLines returns the numbered lines of the queue reply, shortened to
// "N. TICKET[ — turn until HH:MM]".
func queueLines(h *schedHarness) []string {
	h.t.Helper()
	var out []string
	for _, l := range strings.Split(reply(h.say(guest, "queue")), "\n") {
		if len(l) < 3 || l[1] != '.' {
			continue
		}
		i := strings.Index(l, "|")
		line := l[:3] + l[i+1:i+6]
		if j := strings.Index(l, "'s turn until "); j >= 0 {
			line += " — turn until " + l[j+len("'s turn until "):]
		}
		out = append(out, line)
	}
	return out
}

// TestClaimWindowPassesTurn: three releases want backend in qa. PAY-1,
// next at once, does not start within the window: the turn passes to
// PAY-2, PAY-1 stands right behind it (not at the end) and may not start
// ahead of it; its requester is told and the pass audited. PAY-2 does not
// start either: the turn goes to PAY-3, and both skipped ones stand behind
// it in their order. PAY-3 skips too: the turn comes round to PAY-1, whose
// dep start within its window deletes its due time.
func TestClaimWindowPassesTurn(t *testing.T) {
	h := newTurnHarness(t)
	defer func() { h.stop(); h.db.Close() }()
	t0 := h.clk.Now()
	if got := reply(h.sayWaking(ann, "dobro PAY-1 to qa")); !strings.Contains(got, "It is your turn until 10:15 UTC") {
		t.Errorf("dobro PAY-1 with nothing ahead: reply %q names no claim window", got)
	}
	for _, r := range h.say(bob, "dobro PAY-2 to qa") {
		if strings.Contains(render(r.Text), "your turn") {
			t.Errorf("PAY-2, behind PAY-1, was given a turn: %s", render(r.Text))
		}
	}
	h.say(guest, "dobro PAY-3 to qa")

	type step struct {
		after     time.Duration
		wantNexts []string
		wantQueue []string
	}
	for i, st := range []step{
		{turnWindow - time.Second, nil, []string{"1. PAY-1 — turn until 10:15 UTC", "2. PAY-2", "3. PAY-3"}},
		{time.Second, []string{ann + ": passed PAY-1", bob + ": PAY-2"}, []string{"1. PAY-2 — turn until 10:30 UTC", "2. PAY-1", "3. PAY-3"}},
		{turnWindow, []string{bob + ": passed PAY-2", guest + ": PAY-3"}, []string{"1. PAY-3 — turn until 10:45 UTC", "2. PAY-1", "3. PAY-2"}},
		{turnWindow, []string{ann + ": PAY-1", guest + ": passed PAY-3"}, []string{"1. PAY-1 — turn until 11:00 UTC", "2. PAY-2", "3. PAY-3"}},
	} {
		if got := nexts(h.step(st.after)); !cmp.Equal(st.wantNexts, got) {
			t.Errorf("step %d: DMs %v, want %v", i, got, st.wantNexts)
		}
		if diff := cmp.Diff(st.wantQueue, queueLines(h)); diff != "" {
			t.Errorf("step %d: queue (-want +got):\n%s", i, diff)
		}
		if i == 1 {
			if got, want := reply(h.say(ann, "dep start PAY-1")), "PAY-2 is ahead of PAY-1 in the queue for backend"; !strings.Contains(got, want) {
				t.Errorf("PAY-1 starting after its turn passed: %q, want %q", got, want)
			}
		}
	}
	if got := reply(h.say(ann, "dep start PAY-1")); !strings.Contains(got, "Deploy of PAY-1 started.") {
		t.Fatalf("PAY-1 in its turn: %q", got)
	}
	if d := nextDue(t, h.db); d != nil {
		t.Errorf("after PAY-1's dep start a due time is left: %+v", *d)
	}
	if got := nexts(h.step(time.Hour)); len(got) != 0 {
		t.Errorf("an hour after PAY-1 started: %v", got)
	}
	want := []string{
		"PAY-1 qa 15m0s: claim window ended without dep start; turn passed to PAY-2; now behind PAY-2",
		"PAY-2 qa 30m0s: claim window ended without dep start; turn passed to PAY-3; now behind PAY-3",
		"PAY-3 qa 45m0s: claim window ended without dep start; turn passed to PAY-1; now behind PAY-1",
	}
	if diff := cmp.Diff(want, passAudit(t, h.db, t0)); diff != "" {
		t.Errorf("pass_turn audit (-want +got):\n%s", diff)
	}
	// The finish tells the next in line, PAY-2, with a new window.
	if got, want := nexts(h.say(ann, "dep finish PAY-1")), []string{bob + ": PAY-2"}; !cmp.Equal(want, got) {
		t.Errorf("after PAY-1's finish: %v, want %v", got, want)
	}
}

// TestClaimWindowAlone: a release nobody waits behind keeps its turn when
// its window ends (a turn passes only to someone), and a dep start within
// the window deletes the due time.
func TestClaimWindowAlone(t *testing.T) {
	h := newTurnHarness(t)
	defer func() { h.stop(); h.db.Close() }()
	h.sayWaking(ann, "dobro PAY-1 to qa")
	if got := nexts(h.step(turnWindow)); len(got) != 0 {
		t.Errorf("window of a release alone: %v", got)
	}
	if got, want := queueLines(h), []string{"1. PAY-1 — turn until 10:30 UTC"}; !cmp.Equal(want, got) {
		t.Errorf("queue %v, want %v", got, want)
	}
	h.say(ann, "dep start PAY-1")
	if d := nextDue(t, h.db); d != nil {
		t.Errorf("after dep start a due time is left: %+v", *d)
	}
	if got := passAudit(t, h.db, h.clk.Now()); len(got) != 0 {
		t.Errorf("pass_turn entries for a release alone: %v", got)
	}
}

// TestClaimWindowPerEnvironment: qa's turn passing does not touch
// production, where PAY-1 has its own turn and window.
func TestClaimWindowPerEnvironment(t *testing.T) {
	h := newTurnHarness(t)
	defer func() { h.stop(); h.db.Close() }()
	h.sayWaking(ann, "dobro PAY-1 to qa")
	h.say(bob, "dobro PAY-2 to qa")
	h.step(10 * time.Minute)
	if got := reply(h.sayWaking(ann, "dobro PAY-1 to production")); !strings.Contains(got, "It is your turn until 10:25 UTC") {
		t.Errorf("PAY-1 in production, with backend busy only in qa: %q", got)
	}
	if got, want := nexts(h.step(5*time.Minute)), []string{ann + ": passed PAY-1", bob + ": PAY-2"}; !cmp.Equal(want, got) {
		t.Errorf("qa's window: %v, want %v", got, want)
	}
	if got := reply(h.say(ann, "dep start PAY-1 in production")); !strings.Contains(got, "Deploy of PAY-1 started.") {
		t.Errorf("PAY-1 in production after its qa turn passed: %q", got)
	}
	if got := nexts(h.step(10 * time.Minute)); len(got) != 0 {
		t.Errorf("production's release started, within qa's PAY-2 window: %v", got)
	}
	want := []string{"PAY-1 qa 15m0s: claim window ended without dep start; turn passed to PAY-2; now behind PAY-2"}
	if diff := cmp.Diff(want, passAudit(t, h.db, h.now)); diff != "" {
		t.Errorf("pass_turn audit (-want +got):\n%s", diff)
	}
}

// TestOverdueTurnAfterRestartFiresOnce: the bot is down past PAY-1's
// window; started again it passes the turn once, and a second restart
// passes nothing more.
func TestOverdueTurnAfterRestartFiresOnce(t *testing.T) {
	h := newTurnHarness(t)
	t0 := h.clk.Now()
	h.sayWaking(ann, "dobro PAY-1 to qa")
	h.say(bob, "dobro PAY-2 to qa")
	h.down()
	h.clk.Advance(3 * time.Hour) // down: nothing runs
	restart := func() []string {
		t.Helper()
		h.up()
		got := nexts(h.drain())
		h.down()
		return got
	}
	if got, want := restart(), []string{ann + ": passed PAY-1", bob + ": PAY-2"}; !cmp.Equal(want, got) {
		t.Errorf("first restart: %v, want %v", got, want)
	}
	if got := restart(); len(got) != 0 {
		t.Errorf("second restart passed again: %v", got)
	}
	db, err := storage.Open(h.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := []string{"PAY-1 qa 3h0m0s: claim window ended without dep start; turn passed to PAY-2; now behind PAY-2"}
	if diff := cmp.Diff(want, passAudit(t, db, t0)); diff != "" {
		t.Errorf("pass_turn audit (-want +got):\n%s", diff)
	}
}

// TestClaimWindowClaimAndCancel: without environments, a release becomes
// next when an admin claims it, and its requester's DM names the window;
// cancelled within its turn, the next in line is told at once (requester
// and claiming admin), with its own window.
func TestClaimWindowClaimAndCancel(t *testing.T) {
	h := newHarness(t)
	clk := clocktest.New(h.now)
	h.rebuild(func(c *commands.Config) { c.Clock, c.ClaimWindow = clk, turnWindow })
	s := &schedHarness{harness: h, clk: clk}
	s.startSchedule()
	defer s.stop()
	for _, who := range []string{ann, bob} {
		tk := map[string]string{ann: "PAY-1", bob: "PAY-2"}[who]
		s.say(who, "dobro "+tk)
		s.say(approver, "accept "+tk)
		claim := s.say
		if who == ann {
			claim = s.sayWaking // only PAY-1's claim writes a due time
		}
		effects := claim(admin, "here "+tk)
		dms := dmsTo(effects, who)
		window := len(dms) == 1 && strings.Contains(render(dms[0].Text), "It is your turn until 10:15 UTC")
		if want := who == ann; window != want {
			t.Errorf("%s claimed: a window in the requester's DM %v, want %v (%v)", tk, window, want, dms)
		}
	}
	if got, want := queueLines(s), []string{"1. PAY-1 — turn until 10:15 UTC", "2. PAY-2"}; !cmp.Equal(want, got) {
		t.Errorf("queue %v, want %v", got, want)
	}
	s.step(5 * time.Minute)
	effects := s.sayWaking(ann, "cancel PAY-1 not today")
	if got, want := nexts(effects), []string{admin + ": PAY-2", bob + ": PAY-2"}; !cmp.Equal(want, got) {
		t.Errorf("PAY-1 cancelled in its turn: %v, want %v", got, want)
	}
	if got, want := queueLines(s), []string{"1. PAY-2 — turn until 10:20 UTC"}; !cmp.Equal(want, got) {
		t.Errorf("queue %v, want %v", got, want)
	}
}

// TestClaimWindowPromote: a release promoted into an environment without
// approval or admin, with nothing ahead, starts its turn at once and the
// reply names the window.
func TestClaimWindowPromote(t *testing.T) {
	h := newTurnHarness(t)
	defer func() { h.stop(); h.db.Close() }()
	h.sayWaking(ann, "dobro PAY-1 to qa")
	h.say(ann, "dep start PAY-1")
	h.say(ann, "dep finish PAY-1")
	if got := reply(h.sayWaking(ann, "promote PAY-1")); !strings.Contains(got, "You may start: dep start PAY-1 in production. It is your turn until 10:15 UTC") {
		t.Errorf("promote: reply %q names no claim window", got)
	}
	if got, want := queueLines(h), []string{"1. PAY-1 — turn until 10:15 UTC"}; !cmp.Equal(want, got) {
		t.Errorf("queue %v, want %v", got, want)
	}
}
