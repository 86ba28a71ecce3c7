package commands_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/robfig/cron/v3"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/clocktest"
)

// berlin is the zone of the freeze tests: CET in winter, CEST in summer.
var berlin = mustZone("Europe/Berlin")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// mustCron parses a window's cron the way the configuration does: 5 fields
// in the zone its CRON_TZ names.
func mustCron(t *testing.T, spec string) cron.Schedule {
	t.Helper()
	s, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// weekend is the SPEC's example window: Fridays 18:00 Berlin time for 63 h,
// production only, announced an hour ahead.
func weekend(t *testing.T) commands.FreezeWindow {
	return commands.FreezeWindow{Name: "weekend", Cron: mustCron(t, "CRON_TZ=Europe/Berlin 0 18 * * FRI"), Duration: 63 * time.Hour,
		Envs: []string{"production"}, Reason: "weekend freeze", Announce: time.Hour}
}

// newFreezeHarness is a schedHarness whose clock starts at at, with the
// freeze windows ws and the Berlin timezone; change, if set, changes the
// configuration further (environments) before Schedule starts.
func newFreezeHarness(t *testing.T, at time.Time, change func(*commands.Config), ws ...commands.FreezeWindow) *schedHarness {
	t.Helper()
	h := newHarness(t)
	h.now = at
	clk := clocktest.New(at)
	h.rebuild(func(c *commands.Config) {
		c.Clock, c.Freezes, c.Timezone = clk, ws, berlin
		if change != nil {
			change(c)
		}
	})
	s := &schedHarness{harness: h, clk: clk}
	s.startSchedule()
	t.Cleanup(func() { s.stop() })
	return s
}

// posts returns the channel messages among effects, rendered.
func posts(effects []commands.Effect) []string {
	var out []string
	for _, e := range effects {
		if e.Kind == commands.EffectPost {
			out = append(out, render(e.Text))
		}
	}
	return out
}

// nextTold returns the tickets of the "You're next" DMs among effects, in
// the order they were sent.
func nextTold(effects []commands.Effect) []string {
	var out []string
	for _, e := range effects {
		if e.Kind == commands.EffectDM && strings.Contains(render(e.Text), "You're next") {
			ref := strings.Fields(strings.TrimPrefix(render(e.Text), "You're next: "))[0]
			_, ticket, _ := strings.Cut(strings.TrimSuffix(ref, ">"), "|")
			out = append(out, ticket)
		}
	}
	return out
}

// freezeAudit returns "actor action via: detail" of the freeze entries.
func freezeAudit(t *testing.T, db commands.Store) []string {
	t.Helper()
	var out []string
	err := db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		switch e.Action {
		case commands.ActionFreezeStart, commands.ActionFreezeEnd, commands.ActionFreezeSoon, commands.ActionForce, commands.ActionLock, commands.ActionUnlock:
			out = append(out, e.Actor+" "+string(e.Action)+" "+e.Ticket+" "+e.Via+": "+e.Detail)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWeeklyFreezeWindow drives the weekend window through a week: the
// announcement an hour ahead, the start, a refused dep start (also with
// force by a requester, and force without a reason), the end telling the
// held releases in queue order, and the next Friday's start stored.
func TestWeeklyFreezeWindow(t *testing.T) {
	// Friday 27 November 2026, 15:00 UTC = 16:00 CET: the window is
	// announced at 16:00 UTC, starts at 17:00 UTC (18:00 CET) and ends on
	// Monday 08:00 UTC (09:00 CET).
	fri := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	s := newFreezeHarness(t, fri, nil, weekend(t))
	s.script([]step{
		{ann, "dobro PAY-4 no_need_admin", []string{"in the queue"}},
		{approver, "accept PAY-4", []string{"You accepted PAY-4."}},
		{ann, "dobro PAY-2 no_need_admin", []string{"in the queue"}},
		{approver, "accept PAY-2", []string{"You accepted PAY-2."}},
	})
	if got, want := posts(s.step(59*time.Minute)), []string(nil); !cmp.Equal(got, want) {
		t.Errorf("before the announcement: posts %q", got)
	}
	want := []string{":hourglass_flowing_sand: production will be frozen by weekend from 18:00 CET until Mon 09:00 CET: weekend freeze."}
	if diff := cmp.Diff(want, posts(s.step(time.Minute))); diff != "" {
		t.Errorf("the announcement an hour ahead (-want +got):\n%s", diff)
	}
	want = []string{":snowflake: production is frozen by weekend until Mon 09:00 CET: weekend freeze."}
	if diff := cmp.Diff(want, posts(s.step(time.Hour))); diff != "" {
		t.Errorf("the start (-want +got):\n%s", diff)
	}
	s.script([]step{
		{ann, "dep start PAY-2", []string{"production is frozen by weekend until Mon 09:00 CET: weekend freeze. An admin may start anyway: dep start PAY-2 force REASON."}},
		{ann, "dep start PAY-2 force it is urgent", []string{"Only admins of production can start PAY-2 during the weekend freeze"}},
		{admin, "dep start PAY-2 force", []string{"force needs a reason"}},
		{guest, "freezes", []string{"Freezes now:\n• weekend: production, until Mon 09:00 CET — weekend freeze\nNext:\n• weekend: production, from 2026-12-04 18:00 CET until 2026-12-07 09:00 CET — weekend freeze"}},
	})
	if rel := s.release("PAY-2"); rel.State != commands.StateAccepted || s.start.count() != 0 {
		t.Fatalf("inside the window: PAY-2 is %s, %d start hooks ran; want accepted, none", rel.State, s.start.count())
	}
	end := s.step(63 * time.Hour)
	if diff := cmp.Diff([]string{":sunny: The weekend freeze has ended: production may deploy again."}, posts(end)); diff != "" {
		t.Errorf("the end (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PAY-4", "PAY-2"}, nextTold(end)); diff != "" {
		t.Errorf("the held releases told at the end, in queue order (-want +got):\n%s", diff)
	}
	s.script([]step{{ann, "dep start PAY-2", []string{"Deploy of PAY-2 started."}}})
	wantAudit := []string{
		"dobrobot freeze-announce  scheduler: weekend: starts 2026-11-27T17:00:00Z",
		"dobrobot freeze-start  scheduler: weekend: until 2026-11-30T08:00:00Z",
		"dobrobot freeze-end  scheduler: weekend: ended",
	}
	if diff := cmp.Diff(wantAudit, freezeAudit(t, s.db)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	// The next boundary is the next Friday's start, the third boundary.
	next := nextDue(t, s.db)
	if next == nil || next.Kind != commands.DueFreezeAnnounce || !next.At.Equal(time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("next due %+v; want the announcement of Friday 4 December, 16:00 UTC", next)
	}
	s.audit() // the entries replay (audit verify)
}

// TestForceStartInFreeze: an admin starts a release inside a window with
// force and a reason: audited as an override naming the window and the
// reason, and said in the channel.
func TestForceStartInFreeze(t *testing.T) {
	fri := time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC) // an hour into the window
	s := newFreezeHarness(t, fri, nil, weekend(t))
	s.script([]step{
		{ann, "dobro PAY-2 no_need_admin", []string{"in the queue"}},
		{approver, "accept PAY-2", []string{"You accepted PAY-2."}},
	})
	effects := s.say(admin, "dep start PAY-2 force payments are down")
	if got := reply(effects); !strings.Contains(got, "Deploy of PAY-2 started.") {
		t.Fatalf("forced start replied %q", got)
	}
	if diff := cmp.Diff([]string{":warning: <@U0ADMIN> started <https://jira.example.com/browse/PAY-2|PAY-2> in production during the weekend freeze: payments are down."}, posts(effects)); diff != "" {
		t.Errorf("the override's announcement (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"U0ADMIN force PAY-2 slack: override of freeze weekend: payments are down"}, freezeAudit(t, s.db)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	if rel := s.release("PAY-2"); rel.State != commands.StateDeploying {
		t.Errorf("PAY-2 is %s; want deploying", rel.State)
	}
	s.audit()
}

// TestFreezeFromChat: an admin freezes from chat until a time; it holds,
// is listed, and ends by itself at its time telling the held release;
// another ends early with unfreeze. Nobody else may freeze.
func TestFreezeFromChat(t *testing.T) {
	mon := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) // 10:00 CET
	s := newFreezeHarness(t, mon, nil)
	s.script([]step{
		{ann, "freeze until 12:00 nope", []string{"Only admins can freeze environments"}},
		{admin, "freeze until 09:00 past", nil}, // 09:00 CET is past: tomorrow's
		{admin, "unfreeze u0admin-nov24-0900", []string{"Ended the freeze u0admin-nov24-0900."}},
		{ann, "dobro PAY-2 no_need_admin", []string{"in the queue"}},
		{approver, "accept PAY-2", []string{"You accepted PAY-2."}},
	})
	effects := s.sayWaking(admin, "freeze until 12:00 db migration")
	if got := reply(effects); got != "Froze every environment until 12:00 CET as u0admin-nov23-1200; it ends by itself, or earlier with unfreeze u0admin-nov23-1200." {
		t.Errorf("freeze replied %q", got)
	}
	if err := replayMatches(s.harness); err != nil {
		t.Errorf("with a freeze from chat in force, the audit log's replay differs from the store: %v", err)
	}
	s.script([]step{
		{ann, "dep start PAY-2", []string{"production is frozen by u0admin-nov23-1200 until 12:00 CET: db migration."}},
		{guest, "freezes", []string{"• u0admin-nov23-1200: every environment, until 12:00 CET, set by <@U0ADMIN> — db migration (unfreeze u0admin-nov23-1200)"}},
		{admin, "unlock all", []string{"That is the freeze u0admin-nov23-1200"}},
	})
	end := s.step(2 * time.Hour)
	if diff := cmp.Diff([]string{":sunny: The freeze u0admin-nov23-1200 has ended at its time: every environment may deploy again."}, posts(end)); diff != "" {
		t.Errorf("the end at its time (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PAY-2"}, nextTold(end)); diff != "" {
		t.Errorf("told at the end (-want +got):\n%s", diff)
	}
	if got := s.locks(); len(got) != 0 {
		t.Errorf("locks after the end: %v", got)
	}
	if err := replayMatches(s.harness); err != nil {
		t.Errorf("after the freeze from chat ended, the audit log's replay differs from the store: %v", err)
	}
	s.script([]step{{ann, "dep start PAY-2", []string{"Deploy of PAY-2 started."}}})
	wantAudit := []string{
		"U0ADMIN lock  slack: all: freeze u0admin-nov24-0900 until 2026-11-24T08:00:00Z; past",
		"U0ADMIN unlock  slack: all",
		"U0ADMIN lock  slack: all: freeze u0admin-nov23-1200 until 2026-11-23T11:00:00Z; db migration",
		"dobrobot unlock  scheduler: all",
	}
	if diff := cmp.Diff(wantAudit, freezeAudit(t, s.db)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	if next := nextDue(t, s.db); next != nil {
		t.Errorf("a due time is left: %+v", next)
	}
	s.audit()
}

// TestFreezeWindowDST: a window in Europe/Berlin starts at the right UTC
// instant in the weeks around the March and October changes, driven by
// the scheduler on the fake clock: not a second early, and at the time.
func TestFreezeWindowDST(t *testing.T) {
	tests := []struct {
		name      string
		cron      string
		from      time.Time // the clock starts here
		wantStart time.Time
	}{
		{"Friday before the March change (CET)", "0 18 * * FRI", time.Date(2027, 3, 26, 12, 0, 0, 0, time.UTC), time.Date(2027, 3, 26, 17, 0, 0, 0, time.UTC)},
		{"Friday after the March change (CEST)", "0 18 * * FRI", time.Date(2027, 4, 2, 12, 0, 0, 0, time.UTC), time.Date(2027, 4, 2, 16, 0, 0, 0, time.UTC)},
		{"Sunday of the March change, after it", "0 9 * * SUN", time.Date(2027, 3, 28, 0, 0, 0, 0, time.UTC), time.Date(2027, 3, 28, 7, 0, 0, 0, time.UTC)},
		{"Friday before the October change (CEST)", "0 18 * * FRI", time.Date(2027, 10, 29, 12, 0, 0, 0, time.UTC), time.Date(2027, 10, 29, 16, 0, 0, 0, time.UTC)},
		{"Sunday of the October change, after it", "0 9 * * SUN", time.Date(2027, 10, 31, 0, 0, 0, 0, time.UTC), time.Date(2027, 10, 31, 8, 0, 0, 0, time.UTC)},
		{"Friday after the October change (CET)", "0 18 * * FRI", time.Date(2027, 11, 5, 12, 0, 0, 0, time.UTC), time.Date(2027, 11, 5, 17, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := commands.FreezeWindow{Name: "w", Cron: mustCron(t, "CRON_TZ=Europe/Berlin "+tc.cron), Duration: time.Hour}
			s := newFreezeHarness(t, tc.from, nil, w)
			if got := posts(s.step(tc.wantStart.Sub(tc.from) - time.Second)); len(got) != 0 {
				t.Errorf("a second before %s: %q", tc.wantStart, got)
			}
			if got := posts(s.step(time.Second)); len(got) != 1 || !strings.Contains(got[0], "is frozen by w") {
				t.Errorf("at %s: posts %q; want the start", tc.wantStart, got)
			}
		})
	}
}

// TestCronNextAcrossDST is the table of cron's next times that the windows
// rely on, in Europe/Berlin around both changes of 2027, including a start
// at a wall time the March change skips (02:30 on 28 March: cron skips the
// day) and one the October change repeats (02:30 on 31 October: the first).
func TestCronNextAcrossDST(t *testing.T) {
	tests := []struct {
		spec  string
		after time.Time
		want  time.Time
	}{
		{"0 18 * * FRI", time.Date(2027, 3, 20, 0, 0, 0, 0, time.UTC), time.Date(2027, 3, 26, 17, 0, 0, 0, time.UTC)},
		{"0 18 * * FRI", time.Date(2027, 3, 27, 0, 0, 0, 0, time.UTC), time.Date(2027, 4, 2, 16, 0, 0, 0, time.UTC)},
		// 02:30 does not exist on 28 March: cron skips that day.
		{"30 2 * * *", time.Date(2027, 3, 27, 12, 0, 0, 0, time.UTC), time.Date(2027, 3, 29, 0, 30, 0, 0, time.UTC)},
		// 02:30 happens twice on 31 October: cron takes the first (CEST).
		{"30 2 * * *", time.Date(2027, 10, 30, 12, 0, 0, 0, time.UTC), time.Date(2027, 10, 31, 0, 30, 0, 0, time.UTC)},
		{"0 18 * * FRI", time.Date(2027, 10, 30, 0, 0, 0, 0, time.UTC), time.Date(2027, 11, 5, 17, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		got := mustCron(t, "CRON_TZ=Europe/Berlin "+tc.spec).Next(tc.after).UTC()
		if !got.Equal(tc.want) {
			t.Errorf("%q after %s: %s; want %s", tc.spec, tc.after, got, tc.want)
		}
	}
}

// TestFreezeEndAfterRestart: the bot is down when a window ends; started
// again, it fires the overdue end once (and only once over a second
// restart), telling the held release.
func TestFreezeEndAfterRestart(t *testing.T) {
	fri := time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)
	s := newFreezeHarness(t, fri, nil, weekend(t))
	s.script([]step{
		{ann, "dobro PAY-2 no_need_admin", []string{"in the queue"}},
		{approver, "accept PAY-2", []string{"You accepted PAY-2."}},
	})
	s.stop()
	s.clk.Advance(5 * 24 * time.Hour) // down over the end (Monday 08:00 UTC)
	s.startSchedule()
	effects := s.drain()
	if diff := cmp.Diff([]string{":sunny: The weekend freeze has ended: production may deploy again."}, posts(effects)); diff != "" {
		t.Errorf("after the restart (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PAY-2"}, nextTold(effects)); diff != "" {
		t.Errorf("told after the restart (-want +got):\n%s", diff)
	}
	s.stop()
	s.startSchedule()
	if got := posts(s.drain()); len(got) != 0 {
		t.Errorf("a second restart posted %q", got)
	}
	var ends int
	for _, e := range freezeAudit(t, s.db) {
		if strings.Contains(e, "freeze-end") {
			ends++
		}
	}
	if ends != 1 {
		t.Errorf("%d freeze-end entries; want 1", ends)
	}
}

// TestFreezeWindowEnvironments: a production window holds production only;
// qa deploys through it.
func TestFreezeWindowEnvironments(t *testing.T) {
	fri := time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)
	s := newFreezeHarness(t, fri, func(c *commands.Config) {
		p := c.Policy
		c.Policy.Envs = []commands.EnvPolicy{
			{Name: "qa", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components, Hooks: c.Hooks, Approvals: 1},
			{Name: "production", Approvers: p.Approvers, Admins: p.Admins, Components: p.Components, Hooks: c.Hooks, Approval: true, Approvals: 1},
		}
	}, weekend(t))
	s.script([]step{
		{ann, "dobro PAY-2 to qa", []string{"in the queue"}},
		{ann, "dep start PAY-2 in qa", []string{"Deploy of PAY-2 started."}},
		{ann, "dobro PAY-4 to production", []string{"in the queue"}},
		{approver, "accept PAY-4 in production", []string{"You accepted PAY-4"}},
		{ann, "dep start PAY-4 in production", []string{"production is frozen by weekend"}},
		// Freezes from chat are per environment, named after it too.
		{admin, "freeze in qa until 2h tests flaky", []string{"Froze qa until 21:00 CET as u0admin-qa-nov27-2100"}},
		{admin, "freeze in production until 2h", []string{"as u0admin-production-nov27-2100"}},
		{ann, "dobro PAY-1 to qa", []string{"in the queue"}},
		{ann, "dep start PAY-1 in qa", []string{"qa is frozen by u0admin-qa-nov27-2100 until 21:00 CET: tests flaky."}},
		{admin, "unfreeze u0admin-qa-nov27-2100", []string{"Ended the freeze u0admin-qa-nov27-2100."}},
		{guest, "freezes", []string{"• u0admin-production-nov27-2100: production, until 21:00 CET"}},
	})
	if n := len(s.locks()); n != 2 { // PAY-2's backend in qa, production's freeze
		t.Errorf("%d locks after unfreeze in qa: %v; want PAY-2's and production's freeze", n, s.locks())
	}
}

// TestOverlappingFreezeWindows: when the weekend window ends inside another
// window that holds the same release, the release is not told it may
// start; it is when the other one ends.
func TestOverlappingFreezeWindows(t *testing.T) {
	fri := time.Date(2026, 11, 27, 18, 0, 0, 0, time.UTC)
	monday := commands.FreezeWindow{Name: "monday", From: time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), Reason: "audit"}
	s := newFreezeHarness(t, fri, nil, weekend(t), monday)
	s.script([]step{
		{ann, "dobro PAY-2 no_need_admin", []string{"in the queue"}},
		{approver, "accept PAY-2", []string{"You accepted PAY-2."}},
	})
	toWeekendEnd := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC).Sub(fri)
	if got := nextTold(s.step(toWeekendEnd)); len(got) != 0 {
		t.Errorf("told %v at the weekend's end, inside the monday window", got)
	}
	end := s.step(4 * time.Hour)
	if diff := cmp.Diff([]string{":sunny: The monday freeze has ended: every environment may deploy again."}, posts(end)); diff != "" {
		t.Errorf("the monday window's end (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PAY-2"}, nextTold(end)); diff != "" {
		t.Errorf("told at the monday window's end (-want +got):\n%s", diff)
	}
}
