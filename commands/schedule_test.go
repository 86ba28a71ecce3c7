package commands_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/clocktest"
	"github.com/dobrobot/dobrobot/storage"
)

// schedHarness is a harness whose Service runs on a fake clock with
// Schedule running, so that a test moves days in milliseconds.
type schedHarness struct {
	*harness
	clk  *clocktest.Clock
	stop func()
	path string // the store's file, for down and up; "" for the harness's own store
}

// fileSchedHarness is a schedHarness on a bbolt file of its own, its
// Schedule running, so that a test can take the bot down, move the clock
// and start it again over the same file; configure sets the rest of the
// Config (the reminders, the approval TTL).
func fileSchedHarness(t *testing.T, configure func(*commands.Config)) *schedHarness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	db, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	clk := clocktest.New(h.now)
	h.db = db
	h.rebuild(func(c *commands.Config) {
		c.Store, c.Clock = db, clk
		configure(c)
	})
	s := &schedHarness{harness: h, clk: clk, path: path}
	s.startSchedule()
	return s
}

// down stops Schedule and closes the file: the bot is down.
func (s *schedHarness) down() {
	s.t.Helper()
	s.stop()
	if err := s.db.Close(); err != nil {
		s.t.Fatal(err)
	}
}

// up opens the file again and starts Schedule over it, returning once the
// overdue ones fired and it sleeps.
func (s *schedHarness) up() {
	s.t.Helper()
	db, err := storage.Open(s.path)
	if err != nil {
		s.t.Fatal(err)
	}
	s.db = db
	s.rebuild(func(c *commands.Config) { c.Store = db })
	s.startSchedule()
}

func newSchedHarness(t *testing.T, rem commands.Reminders) *schedHarness {
	t.Helper()
	h := newHarness(t)
	clk := clocktest.New(h.now)
	h.rebuild(func(c *commands.Config) { c.Clock, c.Reminders = clk, rem })
	s := &schedHarness{harness: h, clk: clk}
	s.startSchedule()
	t.Cleanup(func() { s.stop() })
	return s
}

// startSchedule runs Schedule and waits until it sleeps on the clock.
func (s *schedHarness) startSchedule() {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	n := s.clk.Created()
	go func() {
		defer close(done)
		s.svc.Schedule(ctx)
	}()
	s.stop = func() { cancel(); <-done }
	if err := s.clk.WaitCreated(context.Background(), n); err != nil {
		s.t.Fatalf("Schedule did not go to sleep: %v", err)
	}
}

// sayWaking is say for a command that writes a due time: it returns once
// Schedule, woken by the commit, sleeps again.
func (s *schedHarness) sayWaking(user, text string) []commands.Effect {
	s.t.Helper()
	n := s.clk.Created()
	effects := s.say(user, text)
	if err := s.clk.WaitCreated(context.Background(), n); err != nil {
		s.t.Fatalf("%q did not wake Schedule: %v", text, err)
	}
	return effects
}

// step moves the clock by d, each due time firing at its own time, and
// returns the effects committed meanwhile.
func (s *schedHarness) step(d time.Duration) []commands.Effect {
	s.t.Helper()
	if err := s.clk.Step(context.Background(), d); err != nil {
		s.t.Fatal(err)
	}
	return s.drain()
}

// reminders returns "user: ticket" of each reminder DM among effects.
func reminders(effects []commands.Effect) []string {
	var out []string
	for _, e := range effects {
		if e.Kind == commands.EffectDM && strings.Contains(render(e.Text), "Reminder:") {
			out = append(out, e.User)
		}
	}
	slices.Sort(out)
	return out
}

// reminderAudit returns "minutes since t0: detail" of every remind entry.
func reminderAudit(t *testing.T, db commands.Store, t0 time.Time) []string {
	t.Helper()
	var out []string
	err := db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		if e.Action == commands.ActionRemind {
			if e.Actor != commands.ActorDobrobot || e.Via != commands.SourceScheduler {
				t.Errorf("remind entry by %q via %q, want %q via %q", e.Actor, e.Via, commands.ActorDobrobot, commands.SourceScheduler)
			}
			out = append(out, fmt.Sprintf("%s %s: %s", e.Ticket, e.Time.Sub(t0), e.Detail))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func nextDue(t *testing.T, db commands.Store) *commands.Due {
	t.Helper()
	var next *commands.Due
	err := db.View(context.Background(), func(tx commands.Tx) error {
		d, ok, err := tx.NextDue()
		if ok {
			next = &d
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// TestApprovalReminders drives the approval reminder through days: how
// many are sent, when, to whom, and that the release moving on stops them.
// The approvers are approver, qa (through S0QA) and ann, who requests and
// so is never reminded.
func TestApprovalReminders(t *testing.T) {
	both := []string{approver, qa}
	type step struct {
		after time.Duration // the clock moves by this
		user  string        // then, if set, user says text
		text  string
		want  []string // the reminders sent during the move
	}
	tests := []struct {
		name      string
		rem       commands.Reminders
		steps     []step
		wantAudit []string
	}{
		{
			name: "repeats until accepted",
			rem:  commands.Reminders{Approval: 2 * time.Hour, Repeat: time.Hour},
			steps: []step{
				{after: 119 * time.Minute},
				{after: time.Minute, want: both},
				{after: 30 * time.Minute},
				{after: 30 * time.Minute, want: both},
				{after: 30 * time.Minute, user: approver, text: "accept PAY-1"},
				{after: 72 * time.Hour},
			},
			wantAudit: []string{
				"PAY-1 2h0m0s: approval reminder 1 to U0APPROVER,U0QA",
				"PAY-1 3h0m0s: approval reminder 2 to U0APPROVER,U0QA",
			},
		},
		{
			name:  "a day of repeats",
			rem:   commands.Reminders{Approval: 2 * time.Hour, Repeat: 4 * time.Hour},
			steps: []step{{after: 24 * time.Hour, want: slices.Repeat(both, 6)}}, // 2, 6, 10, 14, 18, 22 h
		},
		{
			name:      "no repeat: once",
			rem:       commands.Reminders{Approval: 30 * time.Minute},
			steps:     []step{{after: 72 * time.Hour, want: both}},
			wantAudit: []string{"PAY-1 30m0s: approval reminder 1 to U0APPROVER,U0QA"},
		},
		{
			name: "accepted before it is due: none",
			rem:  commands.Reminders{Approval: 2 * time.Hour, Repeat: time.Hour},
			steps: []step{
				{after: 119 * time.Minute, user: qa, text: "accept PAY-1"},
				{after: 72 * time.Hour},
			},
		},
		{
			name: "rejected: none",
			rem:  commands.Reminders{Approval: 2 * time.Hour, Repeat: time.Hour},
			steps: []step{
				{after: time.Hour, user: approver, text: "reject PAY-1 not now"},
				{after: 72 * time.Hour},
			},
		},
		{
			name: "cancelled after one: no more",
			rem:  commands.Reminders{Approval: time.Hour, Repeat: time.Hour},
			steps: []step{
				{after: 90 * time.Minute, want: both, user: ann, text: "cancel PAY-1"},
				{after: 72 * time.Hour},
			},
			wantAudit: []string{"PAY-1 1h0m0s: approval reminder 1 to U0APPROVER,U0QA"},
		},
		{
			// The first reminder is due before Schedule's longest sleep
			// ends: only the dobro's wake-up makes it come on time.
			name:      "a due time sooner than the sleep wakes it",
			rem:       commands.Reminders{Approval: 10 * time.Minute},
			steps:     []step{{after: 15 * time.Minute, want: both}},
			wantAudit: []string{"PAY-1 10m0s: approval reminder 1 to U0APPROVER,U0QA"},
		},
		{
			name:  "off",
			rem:   commands.Reminders{Repeat: time.Hour},
			steps: []step{{after: 72 * time.Hour}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSchedHarness(t, tt.rem)
			t0 := s.clk.Now()
			if tt.rem.Approval > 0 {
				s.sayWaking(ann, "dobro PAY-1")
			} else if d := s.say(ann, "dobro PAY-1"); nextDue(t, s.db) != nil {
				t.Fatalf("with reminders off, dobro wrote a due time (%q)", reply(d))
			}
			for i, st := range tt.steps {
				got := reminders(s.step(st.after))
				want := slices.Clone(st.want)
				slices.Sort(want)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("step %d (to %s): reminders (-want +got):\n%s", i, s.clk.Now().Sub(t0), diff)
				}
				if st.text != "" {
					s.say(st.user, st.text)
					// The command that moves the release on deletes its
					// reminder in its own transaction.
					if rel := s.release("PAY-1"); rel.State == commands.StateRequested {
						t.Fatalf("%q left PAY-1 requested", st.text)
					} else if d := nextDue(t, s.db); d != nil {
						t.Errorf("PAY-1 is %s and still has a due time: %+v", rel.State, *d)
					}
				}
			}
			if tt.wantAudit != nil {
				if diff := cmp.Diff(tt.wantAudit, reminderAudit(t, s.db, t0)); diff != "" {
					t.Errorf("remind audit entries (-want +got):\n%s", diff)
				}
			}
			if _, err := commands.VerifyStore(context.Background(), s.db, nil); err != nil {
				t.Errorf("the audit log does not verify or replay: %v", err)
			}
		})
	}
}

// TestReminderGuard checks the guard: a
// due time whose release is no longer in the state it was written for
// (here: written by hand as if an older binary had moved the release on
// without knowing of due times) fires nothing and is deleted.
func TestReminderGuard(t *testing.T) {
	s := newSchedHarness(t, commands.Reminders{Approval: time.Hour, Repeat: time.Hour})
	s.sayWaking(ann, "dobro PAY-1")
	rel := s.release("PAY-1")
	// An older binary accepts PAY-1: the release moves, the due time stays.
	err := s.db.Update(context.Background(), func(tx commands.Tx) error {
		rel.State = commands.StateAccepted
		_, err := tx.PutRelease(rel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := reminders(s.step(5 * time.Hour)); len(got) != 0 {
		t.Errorf("reminders for an accepted release: %v", got)
	}
	if d := nextDue(t, s.db); d != nil {
		t.Errorf("the moot due time is still there: %+v", *d)
	}
}

// failingStore fails every Update after running its function, while fail
// is set: the transaction is rolled back as on a failed commit.
type failingStore struct {
	commands.Store
	fail bool
}

var errCommit = errors.New("commit failed on purpose")

func (f *failingStore) Update(ctx context.Context, fn func(commands.Tx) error) error {
	return f.Store.Update(ctx, func(tx commands.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if f.fail {
			return errCommit
		}
		return nil
	})
}

// TestRolledBackDobroLeavesNoDue: a dobro whose transaction does not commit
// leaves no due time, and no reminder ever comes.
func TestRolledBackDobroLeavesNoDue(t *testing.T) {
	h := newHarness(t)
	clk := clocktest.New(h.now)
	fs := &failingStore{Store: h.db, fail: true}
	h.rebuild(func(c *commands.Config) {
		c.Store, c.Clock, c.Reminders = fs, clk, commands.Reminders{Approval: time.Minute, Repeat: time.Minute}
	})
	m := commands.Message{EventID: "ev-rollback", User: ann, Channel: "C0REL", Text: "dobro PAY-1", Via: commands.ViaMention}
	if err := h.svc.Handle(context.Background(), m); !errors.Is(err, errCommit) {
		t.Fatalf("Handle = %v, want errCommit", err)
	}
	if d := nextDue(t, h.db); d != nil {
		t.Errorf("a rolled-back dobro left a due time: %+v", *d)
	}
	fs.fail = false
	s := &schedHarness{harness: h, clk: clk}
	s.startSchedule()
	defer s.stop()
	if got := reminders(s.step(time.Hour)); len(got) != 0 {
		t.Errorf("reminders after a rolled-back dobro: %v", got)
	}
}

// TestOverdueReminderAfterRestartFiresOnce: the bot is down for three days
// past a reminder with repeat 1h. Started again over the same file, it sends
// one reminder at once, not one per missed hour, and the next an hour later;
// a second restart sends none.
func TestOverdueReminderAfterRestartFiresOnce(t *testing.T) {
	rem := commands.Reminders{Approval: 2 * time.Hour, Repeat: time.Hour}
	s := fileSchedHarness(t, func(c *commands.Config) { c.Reminders = rem })
	t0 := s.clk.Now()
	s.sayWaking(ann, "dobro PAY-1")
	s.down()

	s.clk.Advance(72 * time.Hour) // down: nothing runs
	s.up()
	if got, want := reminders(s.drain()), []string{approver, qa}; !cmp.Equal(want, got) {
		t.Errorf("at the restart, reminders %v, want %v (one each)", got, want)
	}
	if got := reminders(s.step(59 * time.Minute)); len(got) != 0 {
		t.Errorf("within the repeat after the restart: %v", got)
	}
	if got, want := reminders(s.step(time.Minute)), []string{approver, qa}; !cmp.Equal(want, got) {
		t.Errorf("a repeat after the restart: %v, want %v", got, want)
	}
	s.down()
	s.up()
	defer func() { s.stop(); s.db.Close() }()
	if got := reminders(s.drain()); len(got) != 0 {
		t.Errorf("a second restart sent reminders again: %v", got)
	}
	want := []string{
		"PAY-1 72h0m0s: approval reminder 1 to U0APPROVER,U0QA", // overdue since 2h
		"PAY-1 73h0m0s: approval reminder 2 to U0APPROVER,U0QA",
	}
	if diff := cmp.Diff(want, reminderAudit(t, s.db, t0)); diff != "" {
		t.Errorf("remind audit entries (-want +got):\n%s", diff)
	}
}

// TestReminderTurnedOffIsDropped: a reminder written while reminders were
// on, which falls due after a restart with them off, is dropped unsent.
func TestReminderTurnedOffIsDropped(t *testing.T) {
	s := newSchedHarness(t, commands.Reminders{Approval: time.Hour, Repeat: time.Hour})
	s.sayWaking(ann, "dobro PAY-1")
	s.stop()
	s.rebuild(func(c *commands.Config) { c.Reminders = commands.Reminders{} })
	s.startSchedule()
	if got := reminders(s.step(3 * time.Hour)); len(got) != 0 {
		t.Errorf("reminders sent with reminders off: %v", got)
	}
	if d := nextDue(t, s.db); d != nil {
		t.Errorf("the reminder is still scheduled: %+v", *d)
	}
}

// TestReminderText: what an approver reads, and the buttons that answer it.
func TestReminderText(t *testing.T) {
	s := newSchedHarness(t, commands.Reminders{Approval: 2 * time.Hour})
	s.sayWaking(ann, "dobro PAY-1")
	dms := dmsTo(s.step(2*time.Hour), approver)
	if len(dms) != 1 {
		t.Fatalf("%d DMs to the approver, want 1: %v", len(dms), dms)
	}
	want := ":alarm_clock: Reminder: <@U0ANN> still asks for dobro on <https://jira.example.com/browse/PAY-1|PAY-1> — Summary of PAY-1 (asked 2 h ago).\n" +
		"Components: backend, payments · needs an admin"
	if diff := cmp.Diff(want, render(dms[0].Text)); diff != "" {
		t.Errorf("the reminder (-want +got):\n%s", diff)
	}
	wantButtons := []commands.Button{
		{Label: "Approve", Command: "accept PAY-1", Style: "primary"},
		{Label: "Reject", Command: "reject PAY-1", Style: "danger"},
	}
	if diff := cmp.Diff(wantButtons, dms[0].Buttons); diff != "" {
		t.Errorf("the reminder's buttons (-want +got):\n%s", diff)
	}
}

// TestReminderOutlivesTheCardReference: the chat adapter records the card's
// reference after the dobro (SetCard), which changes the release's version
// but not its state: the approval reminder still comes.
func TestReminderOutlivesTheCardReference(t *testing.T) {
	s := newSchedHarness(t, commands.Reminders{Approval: time.Hour})
	s.sayWaking(ann, "dobro PAY-1")
	rel := s.release("PAY-1")
	if err := s.svc.SetCard(context.Background(), rel.ID, "1700000000.000100"); err != nil {
		t.Fatal(err)
	}
	if got := s.release("PAY-1").Version; got == rel.Version {
		t.Fatalf("SetCard left the version at %d: the test no longer tests anything", got)
	}
	if got, want := reminders(s.step(time.Hour)), []string{approver, qa}; !cmp.Equal(want, got) {
		t.Errorf("reminders after SetCard: %v, want %v", got, want)
	}
}

// TestUnknownDueKindIsLeft: a due time of a kind this version does not know
// (written by a newer one) is neither fired nor deleted, does not make the
// scheduler spin, and does not keep a known one behind it from firing.
func TestUnknownDueKindIsLeft(t *testing.T) {
	s := newSchedHarness(t, commands.Reminders{Approval: 2 * time.Hour})
	unknown := commands.Due{At: s.clk.Now().Add(-time.Minute), Kind: "remind-someday", Release: 99}
	if err := s.db.Update(context.Background(), func(tx commands.Tx) error { return tx.PutDue(unknown) }); err != nil {
		t.Fatal(err)
	}
	s.sayWaking(ann, "dobro PAY-1")
	timers := s.clk.Created()
	if got, want := reminders(s.step(3*time.Hour)), []string{approver, qa}; !cmp.Equal(want, got) {
		t.Errorf("reminders behind an unknown kind: %v, want %v", got, want)
	}
	// Woken at the longest sleep (1 h) and at the reminder: a handful of
	// timers, not one per loop of a spin.
	if n := s.clk.Created() - timers; n > 5 {
		t.Errorf("the scheduler slept %d times in 3 h with only an unknown kind due", n)
	}
	if d := nextDue(t, s.db); d == nil || d.Kind != unknown.Kind {
		t.Errorf("the unknown kind's record: next due %+v, want it kept", d)
	}
}

// TestRemindersInEnvironments: with environments configured, a reminder
// goes to the approvers of the release's own environment, skips those who
// gave one of several approvals needed, and its buttons name the
// environment.
func TestRemindersInEnvironments(t *testing.T) {
	h := newHarness(t)
	clk := clocktest.New(h.now)
	h.rebuild(func(c *commands.Config) {
		p := c.Policy
		c.Policy.Envs = []commands.EnvPolicy{
			{Name: "qa", Approvers: []string{admin}, Admins: p.Admins, Components: p.Components,
				Hooks: c.Hooks, Approval: true, Approvals: 1},
			{Name: "production", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components,
				Hooks: c.Hooks, Approval: true, Approvals: 2, NeedsAdmin: true},
		}
		c.Clock, c.Reminders = clk, commands.Reminders{Approval: time.Hour, Repeat: time.Hour}
	})
	s := &schedHarness{harness: h, clk: clk}
	s.startSchedule()
	defer s.stop()
	s.sayWaking(ann, "dobro PAY-1 to production")
	s.sayWaking(bob, "dobro PAY-2 to qa")
	if r := reply(s.say(approver, "accept PAY-1")); !strings.Contains(r, "1 of 2") {
		t.Fatalf("the first approval of PAY-1: %q", r)
	}
	type got struct{ User, Approve string }
	var dms []got
	for _, e := range s.step(time.Hour) {
		if e.Kind == commands.EffectDM && strings.Contains(render(e.Text), "Reminder:") {
			dms = append(dms, got{e.User, e.Buttons[0].Command})
		}
	}
	slices.SortFunc(dms, func(a, b got) int { return strings.Compare(a.User, b.User) })
	want := []got{{admin, "accept PAY-2 in qa"}, {qa, "accept PAY-1 in production"}}
	if diff := cmp.Diff(want, dms); diff != "" {
		t.Errorf("reminders (-want +got):\n%s", diff)
	}
}
