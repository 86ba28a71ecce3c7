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
)

// line is one command of a test, said by user; wakes names the reminder
// kind whose due time it writes when that kind is on (the test then waits
// for Schedule to read it).
type line struct {
	user, text string
	wakes      string
}

// on reports whether rem writes the reminders of kind.
func on(rem commands.Reminders, kind string) bool {
	switch kind {
	case "claim":
		return rem.Claim > 0
	case "start":
		return rem.Start > 0
	case "deploying":
		return rem.Deploying > 0
	}
	return false
}

// escalations returns "ticket: text" of each thread message among effects
// that mentions people (an escalation).
func escalations(effects []commands.Effect) []string {
	var out []string
	for _, e := range effects {
		if e.Kind == commands.EffectThread && strings.Contains(render(e.Text), "(reminder ") {
			var people []string
			for _, sp := range e.Text {
				if sp.Kind == commands.SpanPerson {
					people = append(people, sp.ID)
				}
			}
			out = append(out, fmt.Sprintf("%s: %s", e.Release.Ticket, strings.Join(people, ",")))
		}
	}
	return out
}

// auditOf returns "ticket offset: detail" of every entry of action a.
func auditOf(t *testing.T, db commands.Store, t0 time.Time, a commands.Action) []string {
	t.Helper()
	var out []string
	err := db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		if e.Action == a {
			if e.Actor != commands.ActorDobrobot || e.Via != commands.SourceScheduler {
				t.Errorf("%s entry by %q via %q, want %q via %q", a, e.Actor, e.Via, commands.ActorDobrobot, commands.SourceScheduler)
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

func TestOtherReminders(t *testing.T) {
	type step struct {
		after time.Duration // the clock moves by this
		want  []string      // the reminders sent during the move
		then  []line        // then these are said
		gone  bool          // after them, no due time is left
	}
	needAdmin := []line{{ann, "dobro PAY-1", ""}, {approver, "accept PAY-1", "claim"}}
	noAdmin := []line{{bob, "dobro PAY-2 no_need_admin", ""}, {approver, "accept PAY-2", "start"}}
	deploying := append(slices.Clone(noAdmin), line{bob, "dep start PAY-2", "deploying"})
	tests := []struct {
		name      string
		rem       commands.Reminders
		setup     []line
		steps     []step
		wantAudit []string
		wantEsc   []string
	}{
		{
			name:  "claim repeats until an admin claims",
			rem:   commands.Reminders{Claim: 15 * time.Minute, Repeat: time.Hour},
			setup: needAdmin,
			steps: []step{
				{after: 14 * time.Minute},
				{after: time.Minute, want: []string{admin}},
				{after: time.Hour, want: []string{admin}, then: []line{{admin, "here PAY-1", ""}}, gone: true},
				{after: 48 * time.Hour},
			},
			wantAudit: []string{
				"PAY-1 15m0s: claim reminder 1 to U0ADMIN",
				"PAY-1 1h15m0s: claim reminder 2 to U0ADMIN",
			},
		},
		{
			name:  "claim then start: the claim writes the start reminder",
			rem:   commands.Reminders{Claim: 15 * time.Minute, Start: time.Hour},
			setup: needAdmin,
			steps: []step{
				{after: 20 * time.Minute, want: []string{admin}, then: []line{{admin, "here PAY-1", "start"}}},
				{after: time.Hour, want: []string{ann}},
				{after: 48 * time.Hour},
			},
			wantAudit: []string{
				"PAY-1 15m0s: claim reminder 1 to U0ADMIN",
				"PAY-1 1h20m0s: start reminder 1 to U0ANN",
			},
		},
		{
			name:  "start every 2h, a day, until started",
			rem:   commands.Reminders{Start: time.Hour, Repeat: 2 * time.Hour},
			setup: noAdmin,
			steps: []step{
				{after: 24 * time.Hour, want: slices.Repeat([]string{bob}, 12), then: []line{{bob, "dep start PAY-2", ""}}, gone: true}, // 1, 3, … 23 h
				{after: 48 * time.Hour},
			},
		},
		{
			name:  "deploying: requester and the admins; extend snoozes",
			rem:   commands.Reminders{Deploying: 2 * time.Hour, Repeat: time.Hour},
			setup: deploying,
			steps: []step{
				{after: 2 * time.Hour, want: []string{admin, bob}},
				{after: 30 * time.Minute, then: []line{{bob, "extend PAY-2", "deploying"}}},
				{after: 59 * time.Minute},
				{after: time.Minute, want: []string{admin, bob}, then: []line{{bob, "dep finish PAY-2", ""}}, gone: true},
				{after: 48 * time.Hour},
			},
			wantAudit: []string{
				"PAY-2 2h0m0s: deploying reminder 1 to U0ADMIN,U0BOB",
				"PAY-2 3h30m0s: deploying reminder 1 to U0ADMIN,U0BOB",
			},
		},
		{
			name:  "cancelled while deploying: no more",
			rem:   commands.Reminders{Deploying: time.Hour, Repeat: time.Hour},
			setup: deploying,
			steps: []step{
				{after: 90 * time.Minute, want: []string{admin, bob}, then: []line{{admin, "cancel PAY-2 stuck", ""}}, gone: true},
				{after: 48 * time.Hour},
			},
		},
		{
			name:  "escalates after two",
			rem:   commands.Reminders{Claim: time.Hour, Repeat: time.Hour, EscalateAfter: 2},
			setup: needAdmin,
			steps: []step{{after: 4 * time.Hour, want: slices.Repeat([]string{admin}, 4)}},
			wantAudit: []string{
				"PAY-1 1h0m0s: claim reminder 1 to U0ADMIN",
				"PAY-1 2h0m0s: claim reminder 2 to U0ADMIN",
				"PAY-1 3h0m0s: claim reminder 3 to U0ADMIN",
				"PAY-1 4h0m0s: claim reminder 4 to U0ADMIN",
			},
			wantEsc: []string{"PAY-1: U0ADMIN", "PAY-1: U0ADMIN"},
		},
		{
			name:  "off",
			rem:   commands.Reminders{Repeat: time.Hour},
			setup: deploying,
			steps: []step{{after: 72 * time.Hour}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSchedHarness(t, tt.rem)
			t0 := s.clk.Now()
			run := func(lines []line) {
				t.Helper()
				for _, l := range lines {
					var effects []commands.Effect
					if on(tt.rem, l.wakes) {
						effects = s.sayWaking(l.user, l.text)
					} else {
						effects = s.say(l.user, l.text)
					}
					for _, e := range effects {
						if e.Kind == commands.EffectReply && strings.Contains(render(e.Text), "cannot") {
							t.Fatalf("%q: %s", l.text, render(e.Text))
						}
					}
				}
			}
			run(tt.setup)
			s.drain()
			var esc []string
			for i, st := range tt.steps {
				effects := s.step(st.after)
				esc = append(esc, escalations(effects)...)
				got := reminders(effects)
				want := slices.Clone(st.want)
				slices.Sort(want)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("step %d (to %s): reminders (-want +got):\n%s", i, s.clk.Now().Sub(t0), diff)
				}
				run(st.then)
				if d := nextDue(t, s.db); st.gone && d != nil {
					t.Errorf("step %d: the release moved on and a due time is left: %+v", i, *d)
				}
			}
			if tt.wantAudit != nil {
				if diff := cmp.Diff(tt.wantAudit, auditOf(t, s.db, t0, commands.ActionRemind)); diff != "" {
					t.Errorf("remind audit entries (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tt.wantEsc, esc); diff != "" {
				t.Errorf("escalations in the thread (-want +got):\n%s", diff)
			}
			if got := len(auditOf(t, s.db, t0, commands.ActionEscalate)); got != len(tt.wantEsc) {
				t.Errorf("%d escalate audit entries, want %d", got, len(tt.wantEsc))
			}
			if _, err := commands.VerifyStore(context.Background(), s.db, nil); err != nil {
				t.Errorf("the audit log does not verify or replay: %v", err)
			}
		})
	}
}

// TestQuietHoursHoldReminders: a reminder falling due in the quiet hours
// (Berlin, 20:00 to 09:00, the night the clocks go back) is sent once at
// their end, 09:00 CET, and the next one counts from then.
func TestQuietHoursHoldReminders(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.now = time.Date(2026, 10, 24, 16, 30, 0, 0, time.UTC) // 18:30 CEST
	clk := clocktest.New(h.now)
	rem := commands.Reminders{Approval: time.Hour, Repeat: time.Hour, EscalateAfter: 2,
		Quiet: commands.QuietHours{From: 20 * time.Hour, To: 9 * time.Hour, Zone: berlin}}
	h.rebuild(func(c *commands.Config) { c.Clock, c.Reminders = clk, rem })
	s := &schedHarness{harness: h, clk: clk}
	s.startSchedule()
	t.Cleanup(func() { s.stop() })
	t0 := clk.Now()
	s.sayWaking(ann, "dobro PAY-1")
	both := []string{approver, qa}
	for i, st := range []struct {
		after time.Duration
		want  []string
	}{
		{after: time.Hour, want: both},         // 19:30 CEST: sent
		{after: time.Hour},                     // 20:30 CEST: held
		{after: 13*time.Hour + 29*time.Minute}, // 08:59 CET, after a night an hour longer
		{after: time.Minute, want: both},       // 09:00 CET = 08:00 UTC
		{after: time.Hour, want: both},
	} {
		if got := reminders(s.step(st.after)); !cmp.Equal(st.want, got) {
			t.Errorf("step %d (to %s): reminders %v, want %v", i, clk.Now().Sub(t0), got, st.want)
		}
	}
	want := []string{
		"PAY-1 1h0m0s: approval reminder 1 to U0APPROVER,U0QA",
		"PAY-1 15h30m0s: approval reminder 2 to U0APPROVER,U0QA",
		"PAY-1 16h30m0s: approval reminder 3 to U0APPROVER,U0QA",
	}
	if diff := cmp.Diff(want, auditOf(t, s.db, t0, commands.ActionRemind)); diff != "" {
		t.Errorf("remind audit entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PAY-1 16h30m0s: approval reminder 3 in the thread, to U0APPROVER,U0QA"}, auditOf(t, s.db, t0, commands.ActionEscalate)); diff != "" {
		t.Errorf("escalate audit entries (-want +got):\n%s", diff)
	}
}

// TestDeployingReminderButtons: the requester gets Finish and Extend, an
// admin also Cancel; extend refuses a release that is not deploying.
func TestDeployingReminderButtons(t *testing.T) {
	s := newSchedHarness(t, commands.Reminders{Deploying: time.Hour})
	s.say(bob, "dobro PAY-2 no_need_admin")
	s.say(approver, "accept PAY-2")
	if got := reply(s.say(bob, "extend PAY-2")); !strings.Contains(got, "not deploying") {
		t.Errorf("extend of an accepted release: %q", got)
	}
	s.sayWaking(bob, "dep start PAY-2")
	effects := s.step(time.Hour)
	buttons := func(user string) []string {
		var out []string
		for _, e := range dmsTo(effects, user) {
			for _, b := range e.Buttons {
				out = append(out, b.Label+": "+b.Command)
			}
		}
		return out
	}
	for _, e := range dmsTo(effects, bob) {
		if got, want := render(e.Text), "has been deploying for 1 h; it holds backend. Still deploying?"; !strings.Contains(got, want) {
			t.Errorf("the requester's reminder %q lacks %q", got, want)
		}
	}
	if diff := cmp.Diff([]string{"Finish: dep finish PAY-2", "Extend: extend PAY-2"}, buttons(bob)); diff != "" {
		t.Errorf("requester's buttons (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Finish: dep finish PAY-2", "Extend: extend PAY-2", "Cancel: cancel PAY-2"}, buttons(admin)); diff != "" {
		t.Errorf("admin's buttons (-want +got):\n%s", diff)
	}
	if got := reply(s.say(ann, "extend PAY-2")); !strings.Contains(got, "Only") && !strings.Contains(got, "only") {
		t.Errorf("extend by someone else: %q", got)
	}
}

// TestOverdueDeployingReminderFiresOnce: a deploying reminder due while
// the bot was down for three days is sent once at the restart.
func TestOverdueDeployingReminderFiresOnce(t *testing.T) {
	s := fileSchedHarness(t, func(c *commands.Config) {
		c.Reminders = commands.Reminders{Deploying: 2 * time.Hour, Repeat: time.Hour}
	})
	t0 := s.clk.Now()
	s.say(bob, "dobro PAY-2 no_need_admin")
	s.say(approver, "accept PAY-2")
	s.sayWaking(bob, "dep start PAY-2")
	s.drain()
	s.down()
	s.clk.Advance(72 * time.Hour)
	s.up()
	defer func() { s.stop(); s.db.Close() }()
	if got, want := reminders(s.drain()), []string{admin, bob}; !cmp.Equal(want, got) {
		t.Errorf("at the restart, reminders %v, want %v", got, want)
	}
	if got := reminders(s.step(59 * time.Minute)); len(got) != 0 {
		t.Errorf("within the repeat after the restart: %v", got)
	}
	want := []string{"PAY-2 72h0m0s: deploying reminder 1 to U0ADMIN,U0BOB"}
	if diff := cmp.Diff(want, auditOf(t, s.db, t0, commands.ActionRemind)); diff != "" {
		t.Errorf("remind audit entries (-want +got):\n%s", diff)
	}
}

// TestDeployingEscalatesInProduction: without escalate_after, a deploy in
// an environment with after (production) is said in the thread from its
// first "still deploying?" reminder; one in staging is not.
func TestDeployingEscalatesInProduction(t *testing.T) {
	h := newHarness(t)
	clk := clocktest.New(h.now)
	h.rebuild(func(c *commands.Config) {
		p := c.Policy
		c.Policy.Envs = []commands.EnvPolicy{
			{Name: "staging", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components, Hooks: c.Hooks},
			{Name: "production", After: "staging", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components, Hooks: c.Hooks},
		}
		c.Clock, c.Reminders = clk, commands.Reminders{Deploying: time.Hour}
	})
	s := &schedHarness{harness: h, clk: clk}
	s.startSchedule()
	defer s.stop()
	for _, tt := range []struct {
		env     string
		wantEsc []string
	}{
		{"staging", nil},
		{"production", []string{"PAY-2: U0ADMIN,U0BOB"}},
	} {
		s.say(bob, "dobro PAY-2 to "+tt.env)
		if r := reply(s.sayWaking(bob, "dep start PAY-2 in "+tt.env)); !strings.Contains(r, "started") {
			t.Fatalf("dep start in %s: %q", tt.env, r)
		}
		effects := s.step(time.Hour)
		if got, want := reminders(effects), []string{admin, bob}; !cmp.Equal(want, got) {
			t.Errorf("%s: reminders %v, want %v", tt.env, got, want)
		}
		if diff := cmp.Diff(tt.wantEsc, escalations(effects)); diff != "" {
			t.Errorf("%s: escalations (-want +got):\n%s", tt.env, diff)
		}
		if r := reply(s.say(bob, "dep finish PAY-2 in "+tt.env)); r == "" {
			t.Fatalf("dep finish in %s: no reply", tt.env)
		}
	}
}

// TestHeldLockReminder: a release whose start hook failed keeps its locks
// (failed); the deploying reminder follows it as the held-lock one: due a
// deploying interval after the failure, it asks to start again, finish or
// (for admins) cancel, and extend snoozes it as it does a deploy's.
func TestHeldLockReminder(t *testing.T) {
	s := newSchedHarness(t, commands.Reminders{Deploying: time.Hour})
	s.start.mu.Lock()
	s.start.fail = true
	s.start.mu.Unlock()
	s.say(bob, "dobro PAY-2 no_need_admin")
	s.say(approver, "accept PAY-2")
	s.sayWaking(bob, "dep start PAY-2")
	if rel := s.release("PAY-2"); rel.State != commands.StateFailed {
		t.Fatalf("PAY-2 is %s after its start hook failed, want failed", rel.State)
	}
	effects := s.step(time.Hour)
	var texts, buttons []string
	for _, e := range dmsTo(effects, bob) {
		texts = append(texts, render(e.Text))
		for _, b := range e.Buttons {
			buttons = append(buttons, b.Label+": "+b.Command)
		}
	}
	if len(texts) != 1 || !strings.Contains(texts[0], "start hook failed 1 h ago and it still holds backend") {
		t.Errorf("the requester's reminders %q, want one saying the failed release holds backend", texts)
	}
	if diff := cmp.Diff([]string{"Start again: dep start PAY-2", "Finish: dep finish PAY-2", "Extend: extend PAY-2"}, buttons); diff != "" {
		t.Errorf("requester's buttons (-want +got):\n%s", diff)
	}
	if got := reply(s.say(bob, "extend PAY-2")); !strings.Contains(got, "Extended") {
		t.Errorf("extend of a failed release holding its locks: %q", got)
	}
}
