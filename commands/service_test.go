package commands_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
)

// People of the scripted conversations.
const (
	ann      = "U0ANN"      // requester
	bob      = "U0BOB"      // requester
	approver = "U0APPROVER" // approver
	qa       = "U0QA"       // approver, via the S0QA user group
	admin    = "U0ADMIN"    // admin
	guest    = "U0GUEST"    // nobody in particular
)

// tickets the fake tracker knows.
func readyTicket(key string, comps ...string) commands.Ticket {
	return commands.Ticket{
		Key: key, Project: commands.ProjectOf(key), Summary: "Summary of " + key, Status: "Ready for Release",
		Assignee: "ann@example.com", FixVersions: []string{"1.0"}, Components: comps,
		Fields: map[string]string{"customfield_1": "QA passed"}, URL: "https://jira.example.com/browse/" + key,
	}
}

// fakeTracker answers from a map; err, when set for a key, is returned instead.
type fakeTracker struct {
	mu      sync.Mutex
	tickets map[string]commands.Ticket
	errs    map[string]error
	calls   int
}

func (f *fakeTracker) Ticket(_ context.Context, key string) (commands.Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if err := f.errs[key]; err != nil {
		return commands.Ticket{}, err
	}
	t, ok := f.tickets[key]
	if !ok {
		return commands.Ticket{}, commands.Errorf(commands.ENOTFOUND, "%s was not found or is not visible to the bot.", key)
	}
	return t, nil
}

// fakeExec is an in-process executor whose results the test decides: each
// Run waits for a result on its phase's channel, or returns ok at once when
// the test did not ask to hold it.
type fakeExec struct {
	mu    sync.Mutex
	jobs  []commands.Job
	hold  bool
	fail  bool
	gate  chan commands.HookResult
	spawn chan commands.Job
	// probe, if set, is called while the hook runs, before it returns.
	probe func(commands.Job)
}

func (f *fakeExec) Run(_ context.Context, job commands.Job) commands.HookResult {
	f.mu.Lock()
	f.jobs = append(f.jobs, job)
	hold, fail := f.hold, f.fail
	f.mu.Unlock()
	if f.spawn != nil {
		f.spawn <- job
	}
	if f.probe != nil {
		f.probe(job)
	}
	if hold {
		return <-f.gate
	}
	if fail {
		return commands.HookResult{ExitCode: 3, Error: "exited with status 3", Output: "deploy: backend is unhealthy\n"}
	}
	return commands.HookResult{OK: true, Duration: 10 * time.Millisecond}
}

func (f *fakeExec) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.jobs)
}

// groups resolves S0QA to qa, and a user ID to that user, as the port says:
// only the adapter knows which IDs are groups (here S… and C…).
type groups struct{ err error }

func (g groups) Members(_ context.Context, id string) ([]string, error) {
	if !strings.HasPrefix(id, "S") && !strings.HasPrefix(id, "C") {
		return []string{id}, nil
	}
	if g.err != nil {
		return nil, g.err
	}
	switch id {
	case "S0QA":
		return []string{qa}, nil
	case "C0REL": // the release channel, where everyone but the guest is
		return []string{ann, bob, approver, qa, admin}, nil
	}
	return nil, nil
}

type harness struct {
	t       *testing.T
	db      *storage.DB
	svc     *commands.Service
	cfg     commands.Config // what svc was built from
	tracker *fakeTracker
	start   *fakeExec
	finish  *fakeExec
	now     time.Time
	n       int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	db, err := storage.Open(filepath.Join(t.TempDir(), "dobrobot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h := &harness{
		t: t, db: db,
		tracker: &fakeTracker{tickets: map[string]commands.Ticket{
			"PAY-1": readyTicket("PAY-1", "backend", "payments"),
			"PAY-2": readyTicket("PAY-2", "backend"),
			"PAY-3": readyTicket("PAY-3", "backend", "web"),
			"PAY-4": readyTicket("PAY-4", "ios"),
		}, errs: map[string]error{}},
		start:  &fakeExec{},
		finish: &fakeExec{},
		now:    time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
	}
	h.cfg = commands.Config{
		Store:   db,
		Tracker: h.tracker,
		Hooks:   commands.Hooks{Start: h.start, Finish: h.finish},
		Groups:  groups{},
		Policy: commands.Policy{
			Approvers:  []string{approver, "S0QA", ann},
			Admins:     []string{admin},
			Components: []string{"backend", "payments", "ios"},
			Rules: commands.Rules{
				Projects: []string{"PAY"}, ReadyStatuses: []string{"Ready for Release"},
				RequireAssignee: true, RequireFixVersion: true, RequiredFields: []string{"customfield_1"},
			},
		},
		Now: func() time.Time { return h.now },
		Log: zerolog.Nop(),
	}
	h.svc = commands.NewService(h.cfg)
	return h
}

// rebuild replaces the harness's Service by one built over the same store
// from its Config as change leaves it: a Service is configured once, so a
// test that needs another setting mid-way restarts it. The old Service's
// hooks end first, so none of them runs on with the old settings.
func (h *harness) rebuild(change func(*commands.Config)) {
	h.t.Helper()
	h.svc.Wait()
	change(&h.cfg)
	h.svc = commands.NewService(h.cfg)
}

// say sends text as user and returns the effects it committed.
func (h *harness) say(user, text string) []commands.Effect {
	h.t.Helper()
	h.n++
	m := commands.Message{EventID: fmt.Sprintf("ev-%d", h.n), User: user, Channel: "C0REL", Text: text, Via: commands.ViaMention, Time: h.now}
	return h.deliver(m)
}

func (h *harness) deliver(m commands.Message) []commands.Effect {
	h.t.Helper()
	ctx := context.Background()
	fresh, err := h.svc.Receive(ctx, m)
	if err != nil {
		h.t.Fatalf("Receive(%q): %v", m.Text, err)
	}
	if fresh {
		if err := h.svc.Handle(ctx, m); err != nil {
			h.t.Fatalf("Handle(%q): %v", m.Text, err)
		}
	}
	h.svc.Wait()
	return h.drain()
}

func (h *harness) drain() []commands.Effect {
	h.t.Helper()
	ctx := context.Background()
	var all []commands.Effect
	for {
		effects, err := h.db.Pending(ctx, 100)
		if err != nil {
			h.t.Fatal(err)
		}
		if len(effects) == 0 {
			return all
		}
		for _, e := range effects {
			if err := h.db.Delivered(ctx, e.ID); err != nil {
				h.t.Fatal(err)
			}
		}
		all = append(all, effects...)
	}
}

// render shows a Text the way the Slack adapter does (bot's mrkdwnText),
// so that an assertion names each span as a reader of Slack would see it:
// <@U1> is a person span, <url|PAY-1> a ticket linked to the tracker, &lt;
// a < in plain text. The core itself writes no markup.
func render(t commands.Text) string {
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	var b strings.Builder
	for _, s := range t {
		switch s.Kind {
		case commands.SpanPerson:
			b.WriteString("<@" + esc.Replace(s.ID) + ">")
		case commands.SpanChannel:
			b.WriteString("<#" + esc.Replace(s.ID) + ">")
		case commands.SpanTicket:
			if s.URL != "" {
				b.WriteString("<" + s.URL + "|" + esc.Replace(s.Text) + ">")
			} else {
				b.WriteString(esc.Replace(s.Text))
			}
		case commands.SpanCode:
			b.WriteString("`" + esc.Replace(s.Text) + "`")
		case commands.SpanOutput:
			b.WriteString("\n```\n" + esc.Replace(s.Text) + "\n```")
		case commands.SpanIcon:
			b.WriteString(":" + s.Text + ":")
		default:
			b.WriteString(esc.Replace(s.Text))
		}
	}
	return b.String()
}

func reply(effects []commands.Effect) string {
	var out []string
	for _, e := range effects {
		if e.Kind == commands.EffectReply {
			out = append(out, render(e.Text))
		}
	}
	return strings.Join(out, "\n")
}

func dmsTo(effects []commands.Effect, user string) []commands.Effect {
	var out []commands.Effect
	for _, e := range effects {
		if e.Kind == commands.EffectDM && e.User == user {
			out = append(out, e)
		}
	}
	return out
}

func (h *harness) release(ticket string) commands.Release {
	h.t.Helper()
	var rel commands.Release
	err := h.db.View(context.Background(), func(tx commands.Tx) error {
		var err error
		rel, err = tx.LastRelease(ticket)
		return err
	})
	if err != nil {
		h.t.Fatalf("release %s: %v", ticket, err)
	}
	return rel
}

func (h *harness) locks() []string {
	h.t.Helper()
	var out []string
	err := h.db.View(context.Background(), func(tx commands.Tx) error {
		locks, err := tx.Locks()
		for _, l := range locks {
			who := l.Ticket
			if l.Frozen() {
				who = "frozen"
			}
			out = append(out, l.Component+"="+who)
		}
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// audit returns "action ticket from>to" of every entry, and checks the chain.
func (h *harness) audit() []string {
	h.t.Helper()
	var out []string
	v := commands.NewVerifier()
	err := h.db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		out = append(out, fmt.Sprintf("%s %s %s %s>%s", e.Actor, e.Action, e.Ticket, e.From, e.To))
		return v.Add(e)
	})
	if err != nil {
		h.t.Fatalf("audit: %v", err)
	}
	return out
}

// step is one line of a scripted conversation: who says what, and what the
// reply to them must say (every substring in want).
type step struct {
	user string
	text string
	want []string
}

func (h *harness) script(steps []step) {
	h.t.Helper()
	for i, s := range steps {
		got := reply(h.say(s.user, s.text))
		for _, w := range s.want {
			if !strings.Contains(got, w) {
				h.t.Errorf("step %d: %s says %q: reply %q does not say %q", i+1, s.user, s.text, got, w)
			}
		}
		h.now = h.now.Add(time.Minute)
	}
}

func TestHappyPath(t *testing.T) {
	h := newHarness(t)
	effects := h.say(ann, "dobro PAY-1 see the changelog")
	if got := reply(effects); !strings.Contains(got, "PAY-1") || !strings.Contains(got, "in the queue (#1)") {
		t.Errorf("dobro reply = %q", got)
	}
	// The card is posted and the approvers (the group's member too) are asked, with buttons.
	var cards int
	for _, e := range effects {
		if e.Kind == commands.EffectCard {
			cards++
			if e.Release.State != commands.StateRequested {
				t.Errorf("card state = %s", e.Release.State)
			}
		}
	}
	if cards != 1 {
		t.Errorf("cards = %d, want 1", cards)
	}
	for _, u := range []string{approver, qa} {
		dms := dmsTo(effects, u)
		if len(dms) != 1 || len(dms[0].Buttons) != 2 || dms[0].Buttons[0].Command != "accept PAY-1" {
			t.Errorf("DMs to %s = %+v, want one with Approve/Reject", u, dms)
		}
	}
	if dms := dmsTo(effects, ann); len(dms) != 0 {
		t.Errorf("the requester, also an approver, was asked to approve her own release: %+v", dms)
	}

	effects = h.say(approver, "accept PAY-1")
	if got := reply(effects); got != "You accepted PAY-1." {
		t.Errorf("accept reply = %q", got)
	}
	if dms := dmsTo(effects, admin); len(dms) != 1 || dms[0].Buttons[0].Command != "here PAY-1" {
		t.Errorf("admin DMs = %+v, want one with Claim", dms)
	}
	h.script([]step{
		{admin, "here PAY-1", []string{"You claimed PAY-1."}},
		{ann, "dep start PAY-1", []string{"Deploy of PAY-1 started."}},
	})
	if got, want := h.locks(), []string{"backend=PAY-1", "payments=PAY-1"}; !cmp.Equal(got, want) {
		t.Errorf("locks = %v, want %v", got, want)
	}
	if rel := h.release("PAY-1"); rel.State != commands.StateDeploying || rel.LastHook == nil || !rel.LastHook.OK || rel.Running != nil {
		t.Errorf("after dep start: %+v", rel)
	}
	job := h.start.jobs[0]
	if diff := cmp.Diff(commands.Job{Phase: commands.PhaseStart, Attempt: job.Attempt, Ticket: "PAY-1", Env: commands.DefaultEnv, Requester: ann, Admin: admin, Components: []string{"backend", "payments"}}, job); diff != "" || job.Attempt == "" {
		t.Errorf("start job (-want +got):\n%s", diff)
	}
	h.script([]step{
		{ann, "dep finish PAY-1", []string{"Finishing PAY-1"}},
	})
	if rel := h.release("PAY-1"); rel.State != commands.StateDone {
		t.Errorf("after dep finish: state %s", rel.State)
	}
	if got := h.locks(); len(got) != 0 {
		t.Errorf("locks after finish = %v", got)
	}
	want := []string{
		ann + " request PAY-1 >requested",
		approver + " accept PAY-1 requested>accepted",
		admin + " claim PAY-1 accepted>claimed",
		ann + " start PAY-1 claimed>deploying",
		ann + " started PAY-1 deploying>deploying",
		ann + " finish PAY-1 deploying>done",
	}
	if diff := cmp.Diff(want, h.audit()); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	h.script([]step{
		{guest, "queue", []string{"The queue is empty.", "Locks: none."}},
		{guest, "history PAY-1", []string{"PAY-1", "done"}},
		{guest, "status PAY-1", []string{"DONE", "finish hook succeeded"}},
		{guest, "log PAY-1", []string{"finish hook succeeded"}},
	})
}

func TestNoNeedAdmin(t *testing.T) {
	h := newHarness(t)
	effects := h.say(bob, "dobro PAY-2 no_need_admin")
	if !strings.Contains(reply(effects), "in the queue") {
		t.Fatalf("dobro: %q", reply(effects))
	}
	effects = h.say(approver, "accept PAY-2")
	if dms := dmsTo(effects, bob); len(dms) != 1 || !strings.Contains(render(dms[0].Text), "you may start") || dms[0].Buttons[0].Command != "dep start PAY-2" {
		t.Errorf("requester DM = %+v", dms)
	}
	if dms := dmsTo(effects, admin); len(dms) != 0 {
		t.Errorf("admin was asked to claim a no_need_admin release: %+v", dms)
	}
	h.script([]step{
		{bob, "dep start PAY-2", []string{"Deploy of PAY-2 started."}},
		{bob, "dep finish PAY-2", []string{"Finishing PAY-2"}},
	})
	if rel := h.release("PAY-2"); rel.State != commands.StateDone || rel.Admin != "" {
		t.Errorf("release = %+v", rel)
	}
	// here may also claim a no_need_admin release before it starts.
	h.script([]step{
		{bob, "dobro PAY-2 no_need_admin", []string{"in the queue"}},
		{approver, "accept PAY-2", nil},
		{admin, "here PAY-2", []string{"You claimed PAY-2."}},
	})
}

func TestRefusals(t *testing.T) {
	h := newHarness(t)
	h.tracker.tickets["PAY-9"] = commands.Ticket{Key: "PAY-9", Status: "In Progress", Components: []string{"backend"}}
	h.tracker.tickets["WEB-1"] = readyTicket("WEB-1")
	h.tracker.errs["PAY-8"] = commands.Errorf(commands.EUNAVAILABLE, "could not reach Jira")
	h.script([]step{
		{ann, "dobro PAY-404", []string{"PAY-404 was not found or is not visible", "Not queued."}},
		{ann, "dobro PAY-9", []string{"PAY-9 cannot be released: status is In Progress, needs Ready for Release; no assignee; no fix version; field customfield_1 is empty. Not queued."}},
		{ann, "dobro WEB-1", []string{"project WEB is not allowed"}},
		{ann, "dobro PAY-8", []string{"Could not reach the tracker: PAY-8 not queued, try again."}},
		{ann, "dobro PAY-1 on database", []string{"database is not a lockable component"}},
		{ann, "dobro PAY-1;rm", []string{`"PAY-1;rm" is not a ticket key`}},
		{ann, "dobor PAY-1", []string{"did you mean dobro"}},
		{ann, "accept PAY-1", []string{"PAY-1 is not in the queue: request it with dobro PAY-1."}},
		{ann, "dobro PAY-1", []string{"in the queue (#1)"}},
		{ann, "dobro PAY-1", []string{"already in the queue"}},
		{ann, "accept PAY-1", []string{"You requested PAY-1, so you cannot approve it yourself"}},
		{guest, "accept PAY-1", []string{"Only approvers can accept releases"}},
		{ann, "dep start PAY-1", []string{"PAY-1 is not accepted yet: ask an approver."}},
		{ann, "here PAY-1", []string{"Only admins can claim releases"}},
		{guest, "cancel PAY-1", []string{"Only the requester"}},
		{ann, "dep finish PAY-1", []string{"PAY-1 has not started (requested)"}},
		{qa, "accept PAY-1", []string{"You accepted PAY-1."}},
		{approver, "accept PAY-1", []string{"already accepted by <@U0QA>"}},
		{approver, "reject PAY-1", []string{"only a requested release can be rejected"}},
		{ann, "dep start PAY-1", []string{"PAY-1 needs an admin"}},
		{guest, "lock backend", []string{"Only admins can freeze components"}},
		{admin, "lock db", []string{"db is not a lockable component"}},
	})
	if rel := h.release("PAY-1"); rel.State != commands.StateAccepted || rel.Approver != qa {
		t.Errorf("PAY-1 = %s by %s, want accepted by %s", rel.State, rel.Approver, qa)
	}
	// Every refused state-changing command is audited as refused, nothing else changed.
	var refused, other []string
	for _, line := range h.audit() {
		if strings.Contains(line, " refused ") {
			refused = append(refused, line)
		} else {
			other = append(other, line)
		}
	}
	if len(refused) != 17 {
		t.Errorf("refused entries = %d, want 17:\n%s", len(refused), strings.Join(refused, "\n"))
	}
	want := []string{ann + " request PAY-1 >requested", qa + " accept PAY-1 requested>accepted"}
	if diff := cmp.Diff(want, other); diff != "" {
		t.Errorf("audit besides refusals (-want +got):\n%s", diff)
	}
	if h.start.count() != 0 {
		t.Errorf("hook spawned %d times", h.start.count())
	}
}

func TestUserGroupsUnavailableFailClosed(t *testing.T) {
	h := newHarness(t)
	h.script([]step{{ann, "dobro PAY-1", []string{"in the queue"}}})
	h.rebuild(func(c *commands.Config) {
		c.Groups = groups{err: commands.Errorf(commands.EUNAVAILABLE, "user groups unavailable")}
	})
	h.script([]step{
		{qa, "accept PAY-1", []string{"Could not check your roles"}},
		{guest, "queue", []string{"PAY-1"}}, // read-only commands still work
	})
	if rel := h.release("PAY-1"); rel.State != commands.StateRequested {
		t.Errorf("state = %s", rel.State)
	}
}

func TestMissingRolesDeny(t *testing.T) {
	h := newHarness(t)
	h.rebuild(func(c *commands.Config) { c.Policy.Approvers, c.Policy.Admins = nil, nil })
	h.script([]step{
		{ann, "dobro PAY-1", []string{"No approver is configured"}},
		{approver, "accept PAY-1", []string{"Only approvers"}},
		{admin, "lock backend", []string{"Only admins"}},
	})
	h.rebuild(func(c *commands.Config) { c.Policy.Requesters = []string{bob} })
	h.script([]step{{ann, "dobro PAY-2", []string{"not allowed to request releases"}}})
}

func TestLocksAndQueue(t *testing.T) {
	h := newHarness(t)
	h.script([]step{
		{ann, "dobro PAY-1 no_need_admin", []string{"#1"}},
		{bob, "dobro PAY-2 no_need_admin", []string{"#2"}},
		{bob, "dobro PAY-3 no_need_admin", []string{"#3"}},
		{ann, "dobro PAY-4 no_need_admin", []string{"#4"}},
		{approver, "accept PAY-1", nil},
		{approver, "accept PAY-2", nil},
		{approver, "accept PAY-3", nil},
		{approver, "accept PAY-4", nil},
		// PAY-3 may not jump ahead of PAY-2, which waits for backend too.
		{bob, "dep start PAY-3", []string{"PAY-1 is ahead of PAY-3 in the queue for backend"}},
		{ann, "dep start PAY-1", []string{"started"}},
		{bob, "dep start PAY-2", []string{"Backend is locked by PAY-1 (dep start 1 min ago by <@U0ANN>)"}},
		// ios is free: PAY-4 shares nothing with the others.
		{ann, "dep start PAY-4", []string{"started"}},
		{guest, "queue", []string{"1. <https://jira.example.com/browse/PAY-1|PAY-1> — deploying", "2. <https://jira.example.com/browse/PAY-2|PAY-2> — accepted", "3. <https://jira.example.com/browse/PAY-3|PAY-3>", "backend is locked by PAY-1"}},
	})
	effects := h.say(ann, "dep finish PAY-1")
	// PAY-2 is next for backend; PAY-3 waits behind it.
	if dms := dmsTo(effects, bob); len(dms) != 1 || !strings.Contains(render(dms[0].Text), "You're next: <https://jira.example.com/browse/PAY-2|PAY-2>") {
		t.Errorf("DMs to bob = %+v, want one you're-next for PAY-2", dms)
	}
	h.script([]step{
		{bob, "dep start PAY-3", []string{"PAY-2 is ahead of PAY-3"}},
		{bob, "dep start PAY-2", []string{"started"}},
	})
	// cancel frees the locks and tells the next in line.
	effects = h.say(admin, "cancel PAY-2 wrong build")
	if !strings.Contains(reply(effects), "PAY-2 is cancelled.") {
		t.Errorf("cancel reply = %q", reply(effects))
	}
	if dms := dmsTo(effects, bob); len(dms) != 2 {
		t.Errorf("bob should be told of the cancel and that PAY-3 is next: %+v", dms)
	}
	if got, want := h.locks(), []string{"ios=PAY-4"}; !cmp.Equal(got, want) {
		t.Errorf("locks = %v, want %v", got, want)
	}
	// An admin's freeze holds everyone back until unlock.
	h.script([]step{
		{admin, "lock all release freeze", []string{"Froze every component"}},
		{bob, "dep start PAY-3", []string{"All components are frozen by <@U0ADMIN>", "release freeze"}},
		{admin, "lock all", []string{"already"}},
		{admin, "unlock all", []string{"Unfroze all."}},
		{bob, "dep start PAY-3", []string{"started"}},
		{admin, "unlock backend", []string{"backend is not frozen; it is locked by PAY-3"}},
	})
	if got, want := h.locks(), []string{"backend=PAY-3", "ios=PAY-4"}; !cmp.Equal(got, want) {
		t.Errorf("locks = %v, want %v", got, want)
	}
}

func TestFailedHookKeepsLocks(t *testing.T) {
	h := newHarness(t)
	h.start.fail = true
	h.script([]step{
		{ann, "dobro PAY-2 no_need_admin", nil},
		{approver, "accept PAY-2", nil},
	})
	effects := h.say(ann, "dep start PAY-2")
	rel := h.release("PAY-2")
	if rel.State != commands.StateFailed || rel.LastHook == nil || rel.LastHook.ExitCode != 3 {
		t.Fatalf("after a failing start hook: %+v", rel)
	}
	var thread string
	for _, e := range effects {
		if e.Kind == commands.EffectThread {
			thread += render(e.Text) + "\n"
		}
	}
	if !strings.Contains(thread, "start hook failed: exited with status 3") || !strings.Contains(thread, "backend is unhealthy") {
		t.Errorf("thread = %q, want the failure with the output's tail", thread)
	}
	if got := h.locks(); !cmp.Equal(got, []string{"backend=PAY-2"}) {
		t.Errorf("locks = %v, want backend held", got)
	}
	// Another release cannot take backend meanwhile; a retry succeeds.
	h.start.fail = false
	h.script([]step{
		{bob, "dobro PAY-3 no_need_admin", nil},
		{approver, "accept PAY-3", nil},
		{bob, "dep start PAY-3", []string{"Backend is locked by PAY-2"}},
		{ann, "log PAY-2", []string{"exited with status 3", "backend is unhealthy"}},
		{ann, "dep start PAY-2", []string{"started"}},
	})
	if rel := h.release("PAY-2"); rel.State != commands.StateDeploying || !rel.LastHook.OK {
		t.Errorf("after the retry: %s %+v", rel.State, rel.LastHook)
	}
	if n := h.start.count(); n != 2 {
		t.Errorf("start hook ran %d times, want 2", n)
	}
}

func TestHookRunningBlocksChanges(t *testing.T) {
	h := newHarness(t)
	h.start.hold = true
	h.start.gate = make(chan commands.HookResult)
	h.start.spawn = make(chan commands.Job, 1)
	h.script([]step{
		{ann, "dobro PAY-2 no_need_admin", nil},
		{approver, "accept PAY-2", nil},
	})
	h.n++
	m := commands.Message{EventID: "start", User: ann, Text: "dep start PAY-2", Via: commands.ViaMention, Channel: "C0REL"}
	if _, err := h.svc.Receive(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Handle(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	<-h.start.spawn
	// While the hook runs, commands are answered at once and change nothing.
	for _, text := range []string{"dep finish PAY-2", "cancel PAY-2", "dep start PAY-2"} {
		n := len(h.audit())
		got := reply(h.sayNoWait(ann, text))
		if !strings.Contains(got, "The start hook of PAY-2 is running") {
			t.Errorf("%s while the hook runs: %q", text, got)
		}
		if len(h.audit()) != n+1 {
			t.Errorf("%s: want exactly one refused entry", text)
		}
	}
	if got := reply(h.sayNoWait(guest, "queue")); !strings.Contains(got, "deploying") {
		t.Errorf("queue while the hook runs: %q", got)
	}
	h.start.gate <- commands.HookResult{OK: true}
	h.svc.Wait()
	if rel := h.release("PAY-2"); rel.Running != nil || rel.State != commands.StateDeploying {
		t.Errorf("after the hook: %+v", rel)
	}
}

// waitAfterHookContext fails the test unless the Service's Wait returns
// soon after its HookContext ended; why ends the failure's message.
func (h *harness) waitAfterHookContext(why string) {
	h.t.Helper()
	done := make(chan struct{})
	go func() { h.svc.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		h.t.Fatal("Wait did not return after HookContext ended" + why)
	}
}

func (h *harness) sayNoWait(user, text string) []commands.Effect {
	h.t.Helper()
	h.n++
	m := commands.Message{EventID: fmt.Sprintf("ev-%d", h.n), User: user, Channel: "C0REL", Text: text, Via: commands.ViaMention}
	ctx := context.Background()
	if _, err := h.svc.Receive(ctx, m); err != nil {
		h.t.Fatal(err)
	}
	if err := h.svc.Handle(ctx, m); err != nil {
		h.t.Fatal(err)
	}
	return h.drain()
}

func TestDuplicateEventHasOneEffect(t *testing.T) {
	h := newHarness(t)
	m := commands.Message{EventID: "Ev1", User: ann, Channel: "C0REL", Text: "dobro PAY-1", Via: commands.ViaMention}
	first := h.deliver(m)
	second := h.deliver(m)
	// Handle called again for a processed event (e.g. after a crash between
	// Receive and the adapter's bookkeeping) is skipped too.
	if err := h.svc.Handle(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	third := h.drain()
	if len(first) == 0 || len(second) != 0 || len(third) != 0 {
		t.Errorf("effects per delivery = %d, %d, %d; want >0, 0, 0", len(first), len(second), len(third))
	}
	if got := h.audit(); len(got) != 1 || h.tracker.calls != 1 {
		t.Errorf("audit = %v, tracker calls = %d; want one of each", got, h.tracker.calls)
	}
}

func TestConcurrentAcceptOneTransition(t *testing.T) {
	h := newHarness(t)
	h.script([]step{{ann, "dobro PAY-1", nil}})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			m := commands.Message{EventID: fmt.Sprintf("acc-%d", i), User: approver, Text: "accept PAY-1", Via: commands.ViaButton}
			if _, err := h.svc.Receive(context.Background(), m); err != nil {
				t.Error(err)
				return
			}
			if err := h.svc.Handle(context.Background(), m); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	replies := map[string]int{}
	for _, e := range h.drain() {
		if e.Kind == commands.EffectReply {
			replies[render(e.Text)]++
		}
	}
	if replies["You accepted PAY-1."] != 1 {
		t.Errorf("replies = %v, want exactly one acceptance", replies)
	}
	accepts := 0
	for _, line := range h.audit() {
		if strings.Contains(line, " accept ") {
			accepts++
		}
	}
	if accepts != 1 {
		t.Errorf("accept audit entries = %d, want 1", accepts)
	}
}

func TestConcurrentStartOneLockHolder(t *testing.T) {
	h := newHarness(t)
	tickets := []string{}
	for i := range 20 {
		key := fmt.Sprintf("PAY-%d", 100+i)
		h.tracker.tickets[key] = readyTicket(key, "backend")
		tickets = append(tickets, key)
		h.script([]step{{ann, "dobro " + key + " no_need_admin", nil}, {approver, "accept " + key, nil}})
	}
	var wg sync.WaitGroup
	for i, key := range tickets {
		wg.Go(func() {
			m := commands.Message{EventID: fmt.Sprintf("start-%d", i), User: ann, Text: "dep start " + key, Via: commands.ViaMention}
			if _, err := h.svc.Receive(context.Background(), m); err != nil {
				t.Error(err)
				return
			}
			if err := h.svc.Handle(context.Background(), m); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	h.svc.Wait()
	if got := h.locks(); !cmp.Equal(got, []string{"backend=PAY-100"}) {
		t.Errorf("locks = %v, want only the first in the queue holding backend", got)
	}
	deploying := 0
	for _, key := range tickets {
		if h.release(key).State == commands.StateDeploying {
			deploying++
		}
	}
	if deploying != 1 {
		t.Errorf("%d releases deploying, want 1", deploying)
	}
}

func TestRecoverReportsInterruptedHook(t *testing.T) {
	h := newHarness(t)
	h.start.hold = true
	h.start.gate = make(chan commands.HookResult, 1)
	h.start.spawn = make(chan commands.Job, 1)
	h.script([]step{
		{ann, "dobro PAY-2 no_need_admin", nil},
		{approver, "accept PAY-2", nil},
	})
	m := commands.Message{EventID: "start", User: ann, Text: "dep start PAY-2", Via: commands.ViaMention}
	if _, err := h.svc.Receive(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Handle(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	<-h.start.spawn
	h.drain()
	// A restart: a new Service on the same store, whose hook never reported.
	// Also an event received but not processed before the stop.
	pending := commands.Message{EventID: "pending", User: guest, Text: "queue", Via: commands.ViaMention, Channel: "C0REL"}
	if fresh, err := h.svc.Receive(context.Background(), pending); err != nil || !fresh {
		t.Fatal(fresh, err)
	}
	old := h.svc
	svc := commands.NewService(commands.Config{Store: h.cfg.Store, Tracker: h.cfg.Tracker, Hooks: commands.Hooks{Start: &fakeExec{}},
		Groups: h.cfg.Groups, Policy: h.cfg.Policy, Now: h.cfg.Now, Log: h.cfg.Log})
	if err := svc.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	effects := h.drain()
	rel := h.release("PAY-2")
	if rel.State != commands.StateDeploying || rel.Running != nil || rel.LastHook == nil || !strings.Contains(rel.LastHook.Error, "outcome unknown") {
		t.Errorf("after recover: %+v", rel)
	}
	if got := h.locks(); !cmp.Equal(got, []string{"backend=PAY-2"}) {
		t.Errorf("locks = %v, want backend still held", got)
	}
	if dms := dmsTo(effects, ann); len(dms) != 1 || !strings.Contains(render(dms[0].Text), "outcome is unknown") {
		t.Errorf("requester DMs = %+v", dms)
	}
	if !slices.ContainsFunc(effects, func(e commands.Effect) bool { return e.Kind == commands.EffectReply && e.User == guest }) {
		t.Errorf("the pending queue command was not handled: %+v", effects)
	}
	// The late result of the old hook is not recorded over the decision.
	h.start.gate <- commands.HookResult{OK: true}
	old.Wait()
	h.svc = svc
	h.script([]step{
		{ann, "dep start PAY-2", []string{"started"}}, // an explicit re-run after an unknown outcome
		{ann, "dep start PAY-2", []string{"already deploying"}},
	})
	if got := h.audit(); !slices.Contains(got, ann+" interrupted PAY-2 deploying>deploying") {
		t.Errorf("audit lacks the interruption: %v", got)
	}
}

func TestOutputIsEscaped(t *testing.T) {
	h := newHarness(t)
	h.tracker.tickets["PAY-5"] = func() commands.Ticket {
		t := readyTicket("PAY-5", "backend")
		t.Summary = "<!channel> & <@U0ADMIN> <https://evil.example|click>"
		return t
	}()
	effects := h.say(ann, "dobro PAY-5 <!here> look &lt;b&gt; <@U0BOB>")
	effects = append(effects, h.say(ann, "status PAY-5")...)
	for _, e := range effects {
		text := e.Text
		if e.Kind == commands.EffectCard {
			text = commands.CardText(*e.Release, h.now)
		}
		// The user's and the tracker's markup stays in plain spans, which
		// the adapters escape: no mention of U0ADMIN or U0BOB, no link.
		for _, p := range spanProblems(text, []string{ann, approver}) {
			t.Errorf("%s effect %q: %s", e.Kind, text, p)
		}
	}
}

// commentingTracker is a fakeTracker that also takes comments, failing the
// first failures of them (all, with commentFailsForever). Each failure is
// signalled on failed, if set, unless a signal is already waiting there.
type commentingTracker struct {
	*fakeTracker
	mu       sync.Mutex
	comments []string
	failures int
	failed   chan struct{}
}

const commentFailsForever = -1

func (c *commentingTracker) Comment(_ context.Context, key, text string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures != 0 {
		if c.failures > 0 {
			c.failures--
		}
		select {
		case c.failed <- struct{}{}:
		default:
		}
		return commands.Errorf(commands.EUNAVAILABLE, "could not reach Jira")
	}
	c.comments = append(c.comments, key+": "+text)
	return nil
}

func TestCommentWriteBack(t *testing.T) {
	h := newHarness(t)
	ct := &commentingTracker{fakeTracker: h.tracker, failures: 1}
	h.rebuild(func(c *commands.Config) {
		c.Tracker, c.Commenter = ct, ct
		c.CommentOn = []commands.Phase{commands.PhaseStart, commands.PhaseFinish}
		c.CommentRetry = time.Millisecond
	})
	h.script([]step{
		{ann, "dobro PAY-2 no_need_admin", nil},
		{approver, "accept PAY-2", nil},
		{ann, "dep start PAY-2", []string{"started"}},
		{ann, "dep finish PAY-2", []string{"Finishing"}},
	})
	h.svc.Wait()
	want := []string{
		"PAY-2: dobrobot: release started by user U0ANN at 2026-11-22 10:02 UTC.",
		"PAY-2: dobrobot: release finished by user U0ANN at 2026-11-22 10:03 UTC.",
	}
	if diff := cmp.Diff(want, ct.comments); diff != "" {
		t.Errorf("comments (-want +got):\n%s", diff)
	}
	// With write-back off, nothing is written.
	h.rebuild(func(c *commands.Config) { c.CommentOn = nil })
	h.script([]step{{bob, "dobro PAY-4 no_need_admin", nil}, {approver, "accept PAY-4", nil}, {bob, "dep start PAY-4", nil}})
	h.svc.Wait()
	if len(ct.comments) != 2 {
		t.Errorf("comments with write-back off: %v", ct.comments)
	}
}

// TestCommentRetryEndsWithHookContext: a comment that keeps failing does
// not keep a shutdown waiting for its next try: the retries end with the
// Service's HookContext and Wait returns.
func TestCommentRetryEndsWithHookContext(t *testing.T) {
	h := newHarness(t)
	failed := make(chan struct{}, 1)
	ct := &commentingTracker{fakeTracker: h.tracker, failures: commentFailsForever, failed: failed}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.rebuild(func(c *commands.Config) {
		c.Tracker, c.Commenter = ct, ct
		c.CommentOn = []commands.Phase{commands.PhaseStart}
		c.CommentRetry = time.Hour
		c.HookContext = ctx
		c.Hooks = commands.Hooks{}
	})
	h.script([]step{
		{ann, "dobro PAY-2 no_need_admin", nil},
		{approver, "accept PAY-2", nil},
	})
	h.sayNoWait(ann, "dep start PAY-2") // say would Wait for the comment
	<-failed
	cancel() // the shutdown's grace ran out
	h.waitAfterHookContext(": a comment's retry holds it")
	if len(ct.comments) != 0 {
		t.Errorf("comments = %v, want none", ct.comments)
	}
}

func TestTrackerCredentialsAlertAdmins(t *testing.T) {
	h := newHarness(t)
	h.tracker.errs["PAY-1"] = commands.Errorf(commands.EFORBIDDEN, "Jira rejected the bot's credentials (401): ask an admin to check the token.")
	h.tracker.errs["PAY-2"] = h.tracker.errs["PAY-1"]
	first := h.say(ann, "dobro PAY-1")
	if got := reply(first); got != "Jira rejected the bot's credentials (401): ask an admin to check the token. Not queued." {
		t.Errorf("reply = %q", got)
	}
	if dms := dmsTo(first, admin); len(dms) != 1 || !strings.Contains(render(dms[0].Text), "rejects dobrobot's credentials") {
		t.Errorf("admin alerts = %+v, want one", dms)
	}
	// Within ten minutes, no second alert; after, another.
	h.now = h.now.Add(time.Minute)
	if dms := dmsTo(h.say(ann, "dobro PAY-2"), admin); len(dms) != 0 {
		t.Errorf("a second alert within 10 min: %+v", dms)
	}
	h.now = h.now.Add(10 * time.Minute)
	if dms := dmsTo(h.say(ann, "dobro PAY-2"), admin); len(dms) != 1 {
		t.Errorf("alerts after 11 min = %+v, want one", dms)
	}
	if open := h.audit(); len(open) != 3 || !strings.Contains(open[0], "refused") {
		t.Errorf("audit = %v, want three refusals", open)
	}
}

func TestReplyStaysInTheAskersThread(t *testing.T) {
	h := newHarness(t)
	effects := h.deliver(commands.Message{EventID: "t1", User: guest, Channel: "C0REL", Thread: "1700000000.000100", Text: "queue", Via: commands.ViaMention})
	if len(effects) != 1 || effects[0].Kind != commands.EffectReply || effects[0].Thread != "1700000000.000100" {
		t.Errorf("effects = %+v, want one reply in the thread", effects)
	}
}

// TestQueueNamesTheInstance: with several instances (PostgreSQL), queue says
// which one answered; a single instance says nothing extra.
func TestQueueNamesTheInstance(t *testing.T) {
	h := newHarness(t)
	if got := reply(h.say(guest, "queue")); strings.Contains(got, "Answered by") {
		t.Errorf("queue without Instance = %q, want no instance line", got)
	}
	h.rebuild(func(c *commands.Config) { c.Instance = "db-1:4242 (leader, term 7)" })
	got := reply(h.say(guest, "queue"))
	if want := "The queue is empty.\nLocks: none.\nAnswered by db-1:4242 (leader, term 7)."; got != want {
		t.Errorf("queue = %q, want %q", got, want)
	}
	h.rebuild(func(c *commands.Config) { c.Instance = "<!channel> *x*" })
	if got := reply(h.say(guest, "queue")); strings.Contains(got, "<!channel>") {
		t.Errorf("queue = %q: the instance name must be escaped", got)
	}
}
