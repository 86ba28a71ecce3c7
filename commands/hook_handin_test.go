package commands_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
)

// Issue 19, item 4: on PostgreSQL a leader frozen while its hook ran is
// deposed; the new leader reports the hook interrupted. The hook's result is
// a fact, keyed by its attempt ID: the deposed instance hands it in when it
// wakes, and it is taken only while the release still waits on that
// attempt.

// terms is the leadership of instances that share one store, as
// PostgreSQL's leader lock gives it: the instance whose term is current
// leads.
type terms struct {
	mu      sync.Mutex
	current int
}

func (tm *terms) set(term int) {
	tm.mu.Lock()
	tm.current = term
	tm.mu.Unlock()
}

func (tm *terms) is(term int) bool {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.current == term
}

// termStore is one instance's view of a shared store, fenced as the
// PostgreSQL store is: its Update refuses unless its term is current, and
// HandIn (its Config.HandIn) runs whatever the term, telling fn whether it
// leads.
type termStore struct {
	commands.Store
	terms *terms
	mine  int
}

var _ commands.HandIn = termStore{}.HandIn

func (s termStore) Update(ctx context.Context, fn func(commands.Tx) error) error {
	if !s.terms.is(s.mine) {
		return commands.Errorf(commands.EUNAVAILABLE, "This dobrobot no longer leads (its term %d): nothing was changed.", s.mine)
	}
	return s.Store.Update(ctx, fn)
}

func (s termStore) UpdateFirst(ctx context.Context, fn func(commands.Tx) error) error {
	return s.Update(ctx, fn)
}

func (s termStore) HandIn(ctx context.Context, fn func(tx commands.Tx, leads bool) error) error {
	return s.Store.Update(ctx, func(tx commands.Tx) error { return fn(tx, s.terms.is(s.mine)) })
}

// fewTries is a retry policy of n quick tries: a test whose result cannot
// land fails instead of waiting forever.
type fewTries struct{ left int }

func (b *fewTries) NextBackOff() time.Duration {
	if b.left == 0 {
		return backoff.Stop
	}
	b.left--
	return 10 * time.Millisecond
}

func (*fewTries) Reset() {}

// syncLog collects a Service's log lines.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// takeover is a start hook of PAY-2 run by instance A (term 1), still
// running when instance B takes over (term 2).
type takeover struct {
	h       *harness
	terms   *terms
	a, b    *commands.Service
	bStart  *fakeExec // B's start hook
	bFinish *fakeExec
	attempt string
	id      uint64
	log     *syncLog // A's log
}

// newTakeover runs PAY-2 to dep start on A with A's start hook held, then
// makes B's term current. B has not recovered yet.
func newTakeover(t *testing.T) *takeover {
	t.Helper()
	h := newHarness(t)
	tm := &terms{current: 1}
	log := &syncLog{}
	h.start.hold, h.start.gate = true, make(chan commands.HookResult, 1)
	h.start.spawn = make(chan commands.Job, 1)
	h.rebuild(func(c *commands.Config) {
		store := termStore{Store: h.db, terms: tm, mine: 1}
		c.Store, c.HandIn = store, store.HandIn
		c.ResultBackOff = func() backoff.BackOff { return &fewTries{left: 5} }
		c.Log = zerolog.New(log)
		c.Instance = "host-a:101 (leader, term 1)"
	})
	h.script([]step{
		{ann, "dobro PAY-2 no_need_admin", nil},
		{approver, "accept PAY-2", nil},
	})
	h.sayNoWait(ann, "dep start PAY-2")
	job := <-h.start.spawn
	tk := &takeover{h: h, terms: tm, a: h.svc, bStart: &fakeExec{}, bFinish: &fakeExec{}, attempt: job.Attempt, log: log}
	tk.id = h.release("PAY-2").ID
	tm.set(2)
	cfg := h.cfg
	store := termStore{Store: h.db, terms: tm, mine: 2}
	cfg.Store, cfg.HandIn = store, store.HandIn
	cfg.Hooks = commands.Hooks{Start: tk.bStart, Finish: tk.bFinish}
	cfg.Log = zerolog.Nop()
	cfg.Instance = "host-b:202 (leader, term 2)"
	tk.b = commands.NewService(cfg)
	return tk
}

// bSays handles text from user on B, the leader.
func (tk *takeover) bSays(user, text string) []commands.Effect {
	tk.h.t.Helper()
	tk.h.n++
	m := commands.Message{EventID: "b-" + text, User: user, Channel: "C0REL", Text: text, Via: commands.ViaMention}
	ctx := context.Background()
	if _, err := tk.b.Receive(ctx, m); err != nil {
		tk.h.t.Fatal(err)
	}
	if err := tk.b.Handle(ctx, m); err != nil {
		tk.h.t.Fatal(err)
	}
	tk.b.Wait()
	return tk.h.drain()
}

// handIn lets A's start hook end with res and waits for A to record it.
func (tk *takeover) handIn(res commands.HookResult) []commands.Effect {
	tk.h.t.Helper()
	tk.h.start.gate <- res
	done := make(chan struct{})
	go func() { tk.a.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		tk.h.t.Fatal("the deposed instance did not finish recording its hook's result within 10 s")
	}
	return tk.h.drain()
}

// TestHookResultHandedInAfterTakeover: the deposed instance's hook ends
// after B took over, before or after B's recovery reported it interrupted.
// Its result is handed in: the release moves on with one hook run, the
// audit entry names the attempt and says it was handed in, and the people
// told "outcome unknown" are told the result.
func TestHookResultHandedInAfterTakeover(t *testing.T) {
	for _, tc := range []struct {
		name      string
		recovered bool // B's Recover ran before the hand-in
		ok        bool
		action    commands.Action
		state     commands.State
	}{
		{"succeeded, after the recovery", true, true, commands.ActionStarted, commands.StateDeploying},
		{"failed, after the recovery", true, false, commands.ActionFail, commands.StateFailed},
		{"succeeded, before the recovery", false, true, commands.ActionStarted, commands.StateDeploying},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := newTakeover(t)
			h := tk.h
			if tc.recovered {
				if err := tk.b.Recover(context.Background()); err != nil {
					t.Fatal(err)
				}
				told := h.drain()
				rel := h.release("PAY-2")
				if rel.Running != nil || rel.LastHook == nil || rel.LastHook.Attempt != tk.attempt {
					t.Fatalf("after B's recovery: running %+v, last hook %+v; want the attempt reported interrupted", rel.Running, rel.LastHook)
				}
				if got := threadText(told); !strings.Contains(got, "may still hand in its result") {
					t.Errorf("B's recovery says %q; want it to say that the result may still be handed in", got)
				}
			}
			res := commands.HookResult{OK: true, ExitCode: 0, Duration: 1500 * time.Millisecond}
			if !tc.ok {
				res = commands.HookResult{ExitCode: 3, Error: "exited with status 3", Duration: time.Second}
			}
			effects := tk.handIn(res)
			rel := h.release("PAY-2")
			if rel.State != tc.state || rel.Running != nil || rel.LastHook == nil || rel.LastHook.Attempt != tk.attempt || rel.LastHook.OK != tc.ok {
				t.Fatalf("after the hand-in: %s, running %+v, last hook %+v; want %s with attempt %s's result", rel.State, rel.Running, rel.LastHook, tc.state, tk.attempt)
			}
			entries := h.auditEntries()
			last := entries[len(entries)-1]
			if last.Action != tc.action || !strings.Contains(last.Detail, "handed in by host-a:101") || !strings.HasSuffix(last.Detail, "(attempt "+tk.attempt+")") {
				t.Errorf("last audit entry %s %q; want %s, handed in by host-a:101, ending with the attempt", last.Action, last.Detail, tc.action)
			}
			if got := threadText(effects); !strings.Contains(got, "handed in") {
				t.Errorf("the thread is told %q; want it to say the result was handed in", got)
			}
			if tc.recovered && len(dmsTo(effects, ann)) == 0 {
				t.Errorf("the requester, told the outcome was unknown, is not told the handed-in result: %+v", effects)
			}
			if err := tk.b.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := h.drain(); len(got) != 0 {
				t.Errorf("B's recovery after the hand-in said %+v; want nothing: no hook is running", got)
			}
			if runs := h.start.count() + tk.bStart.count(); runs != 1 {
				t.Errorf("start hook runs = %d, want 1", runs)
			}
			if tc.ok {
				tk.bSays(ann, "dep finish PAY-2")
				if rel := h.release("PAY-2"); rel.State != commands.StateDone {
					t.Errorf("after dep finish on B: %s, want done", rel.State)
				}
			}
			checkInvariants(t, h.db)
		})
	}
}

// TestHookResultHandInRefused: a result handed in once the release no
// longer waits on its attempt — another attempt ran, the release moved
// on, or it was handed in already — is refused and logged, and changes
// nothing.
func TestHookResultHandInRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		// moveOn is what B does after its recovery, before the hand-in.
		moveOn string
	}{
		{"another attempt ran", "dep start PAY-2"},
		{"the release moved on", "dep finish PAY-2"},
		{"handed in twice", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := newTakeover(t)
			h := tk.h
			if err := tk.b.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			h.drain()
			res := commands.HookResult{OK: true, Duration: time.Second}
			if tc.moveOn != "" {
				tk.bSays(ann, tc.moveOn)
			} else {
				tk.handIn(res)
			}
			before, audit := h.release("PAY-2"), h.auditEntries()
			var err error
			if tc.moveOn != "" {
				if got := tk.handIn(res); len(got) != 0 {
					t.Errorf("the refused hand-in queued %+v", got)
				}
				if log := tk.log.String(); !strings.Contains(log, "refused") || !strings.Contains(log, tk.attempt) {
					t.Errorf("A's log does not record the refusal of attempt %s:\n%s", tk.attempt, log)
				}
			} else {
				res.Phase, res.Attempt = commands.PhaseStart, tk.attempt
				err = commands.RecordHook(tk.a, tk.id, commands.HookRun{Phase: commands.PhaseStart, Attempt: tk.attempt, Actor: ann}, res)
				if got := h.drain(); len(got) != 0 {
					t.Errorf("the refused hand-in queued %+v", got)
				}
			}
			if diff := cmp.Diff(before, h.release("PAY-2")); diff != "" {
				t.Errorf("the refused hand-in changed the release (-before +after):\n%s", diff)
			}
			if got := h.auditEntries(); len(got) != len(audit) {
				t.Errorf("the refused hand-in added audit entries: %d, then %d", len(audit), len(got))
			}
			if tc.moveOn == "" && (err == nil || !strings.Contains(err.Error(), "no longer current")) {
				t.Errorf("the second hand-in: %v; want it refused as no longer current", err)
			}
			checkInvariants(t, h.db)
		})
	}
}

// threadText joins the rendered thread posts among effects.
func threadText(effects []commands.Effect) string {
	var out []string
	for _, e := range effects {
		if e.Kind == commands.EffectThread {
			out = append(out, render(e.Text))
		}
	}
	return strings.Join(out, "\n")
}

// TestCancelHookResultHandedIn: a cancel hook still running when B takes
// over; B's recovery keeps the cancelled release's locks, and the deposed
// instance's late result frees them, is audited on the cancelled release
// with its attempt (the audit replay matches it), and tells the next in
// line. Once an admin has freed the kept locks by hand, the release waits
// for nothing: the late result is refused and changes nothing.
func TestCancelHookResultHandedIn(t *testing.T) {
	for _, unlockFirst := range []bool{false, true} {
		name := "taken"
		if unlockFirst {
			name = "refused after the admin's unlock"
		}
		t.Run(name, func(t *testing.T) {
			h, cancel := cancelHarness(t)
			tm := &terms{current: 1}
			h.rebuild(func(c *commands.Config) {
				store := termStore{Store: h.db, terms: tm, mine: 1}
				c.Store, c.HandIn = store, store.HandIn
				c.ResultBackOff = func() backoff.BackOff { return &fewTries{left: 5} }
				c.Instance = "host-a:101 (leader, term 1)"
			})
			h.sayNoWait(ann, "cancel PAY-2")
			job := <-cancel.spawn
			a := h.svc
			tm.set(2)
			cfg := h.cfg
			store := termStore{Store: h.db, terms: tm, mine: 2}
			cfg.Store, cfg.HandIn = store, store.HandIn
			cfg.Hooks.Cancel = &fakeExec{}
			b := commands.NewService(cfg)
			if err := b.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			h.drain()
			if got, want := h.locks(), []string{"backend=PAY-2"}; !cmp.Equal(got, want) {
				t.Fatalf("locks after B's recovery = %v, want %v", got, want)
			}
			if unlockFirst {
				h.svc = b
				h.script([]step{{admin, "unlock backend", []string{"Freed backend"}}})
			}
			before := h.auditEntries()
			cancel.gate <- commands.HookResult{OK: true, Duration: time.Second}
			a.Wait()
			effects := h.drain()
			if got := h.locks(); len(got) != 0 {
				t.Errorf("locks after the cancel hook's result = %v, want none", got)
			}
			entries := h.auditEntries()
			if unlockFirst {
				if len(entries) != len(before) || len(effects) != 0 {
					t.Errorf("the refused hand-in added %d audit entries and queued %+v", len(entries)-len(before), effects)
				}
				checkInvariants(t, h.db)
				return
			}
			last := entries[len(entries)-1]
			if last.Action != commands.ActionHook || last.From != commands.StateCancelled || !strings.Contains(last.Detail, "handed in") || !strings.HasSuffix(last.Detail, "(attempt "+job.Attempt+")") {
				t.Errorf("last audit entry %s %s>%s %q; want hook cancelled>cancelled, handed in, with attempt %s", last.Action, last.From, last.To, last.Detail, job.Attempt)
			}
			if got := youreNext(effects, bob); len(got) != 1 {
				t.Errorf("bob's you're-next DMs after the hand-in = %v, want one", got)
			}
			checkInvariants(t, h.db)
		})
	}
}
