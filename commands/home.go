package commands

import (
	"context"
	"slices"
	"time"
)

// The App Home (issue 17): what one person sees of the bot at a glance —
// the releases that wait for them, with the commands that move them on,
// then the queue, the locks, the freezes and what runs where. The core
// decides it as structured Text; a chat adapter lays it out (Slack's home
// tab in Block Kit, the console's home command as text). Reading it
// changes nothing and records nothing.

// HomeView is the App Home of one person, as of At.
type HomeView struct {
	User string
	At   time.Time
	// Waiting are the open releases that wait for User to act, in queue
	// order, each with the commands that act (buttons: a click is the
	// clicker typing the command, authorised as any command is).
	Waiting []HomeItem
	// Queue is every open release with its place; Locks the components
	// that releases hold, Freezes those that admins froze; Where what
	// runs where (the where command's answer).
	Queue   Text
	Locks   Text
	Freezes Text
	Where   Text
}

// HomeItem is one release that waits for the person looking.
type HomeItem struct {
	Ticket  string
	Text    Text
	Buttons []Button
}

// Home returns user's App Home as it is now. It looks the user's roles up
// first (user groups, outside any transaction), then reads everything in
// one View transaction, so that the sections agree with one another.
func (s *Service) Home(ctx context.Context, user string) (HomeView, error) {
	ro := s.homeRoles(ctx, user)
	var v HomeView
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		v, err = s.homeView(tx, s.now(), user, ro)
		return err
	})
	return v, err
}

// homeRoles returns user's roles in every environment, as a click of the
// user would have them: the App Home shows what their buttons may do.
func (s *Service) homeRoles(ctx context.Context, user string) map[string]roles {
	memo := map[string]memberOf{}
	out := make(map[string]roles, len(s.cfg.Policy.Envs))
	for _, e := range s.cfg.Policy.Envs {
		out[e.Name] = s.rolesOf(ctx, Message{User: user, Via: ViaButton}, whoAnyone, e, memo)
	}
	return out
}

// home is the home command: the App Home as a reply, for the console
// (and any chat) to try without Slack's home tab.
func (r *cmdRun) home() error {
	v, err := r.s.homeView(r.tx, r.now, r.m.User, r.pre.roles)
	if err != nil {
		return err
	}
	r.reply(v.Text())
	return nil
}

// homeView builds user's App Home from tx as of now, with user's roles by
// environment.
func (s *Service) homeView(tx Tx, now time.Time, user string, ro map[string]roles) (HomeView, error) {
	open, err := tx.Open()
	if err != nil {
		return HomeView{}, err
	}
	locks, err := tx.Locks()
	if err != nil {
		return HomeView{}, err
	}
	v := HomeView{User: user, At: now}
	for _, rel := range open {
		if item, ok := s.waitsFor(rel, user, ro[s.envOf(rel).Name], now); ok {
			v.Waiting = append(v.Waiting, item)
		}
	}
	envs := s.envConfigured()
	if len(open) == 0 {
		v.Queue = say("The queue is empty.")
	} else {
		v.Queue = say("%d open, in order:", len(open))
	}
	for i, rel := range open {
		v.Queue = v.Queue.say("\n%d. %v%s — %s — requester %v — waiting %s", i+1, TicketRef(rel), envVersion(rel), rel.State, Person(rel.Requester), Ago(now.Sub(rel.Created)))
	}
	for _, l := range locks {
		t := &v.Locks
		if l.Frozen() {
			t = &v.Freezes
		}
		if len(*t) > 0 {
			*t = t.plain("\n")
		}
		*t = t.say("• %v", lockText(l, now, envs))
	}
	if len(v.Locks) == 0 {
		v.Locks = say("No component is locked.")
	}
	if len(v.Freezes) == 0 {
		v.Freezes = say("Nothing is frozen.")
	}
	v.Where, err = s.whereText(tx, now, "")
	return v, err
}

// waitsFor reports whether rel waits for user to act, whose roles in rel's
// environment are ro, and what for. It follows the rules the commands
// apply (authorize, the transition table), so that a button shown is a
// command that is allowed, short of a change made meanwhile.
func (s *Service) waitsFor(rel Release, user string, ro roles, now time.Time) (HomeItem, bool) {
	env := s.envOf(rel)
	ref := s.ref(rel)
	head := say("%v%s — %s", TicketRef(rel), envVersion(rel), orNone(rel.Summary))
	item := HomeItem{Ticket: rel.Ticket}
	deployer := rel.Requester == user || rel.Admin == user
	if len(env.Deployers) > 0 {
		deployer = ro.deployer || rel.Admin == user
	}
	switch {
	case rel.Running != nil:
		return item, false // its hook's result comes first
	case rel.State == StateRequested && env.Approval && ro.approver && rel.Requester != user && !slices.Contains(rel.Approvals, user):
		item.Text = head.say("\nrequested by %v %s; waits for your approval.\n%v", Person(rel.Requester), since(now, rel.Created), approvalFacts(rel))
		item.Buttons = []Button{
			{Label: "Accept", Command: "accept " + ref, Style: "primary"},
			{Label: "Reject", Command: "reject " + ref, Style: "danger"},
		}
	case rel.State == StateAccepted && rel.NeedAdmin && rel.Admin == "" && ro.admin:
		item.Text = head.say("\naccepted by %v; needs an admin to claim it.", Person(rel.Approver))
		item.Buttons = []Button{{Label: "Claim", Command: "here " + ref, Style: "primary"}}
	case (rel.State == StateAccepted && !rel.NeedAdmin || rel.State == StateClaimed) && deployer:
		item.Text = head.say("\n%s: you may start it.", rel.State)
		item.Buttons = []Button{{Label: "Start", Command: "dep start " + ref, Style: "primary"}}
	case rel.State == StateDeploying && deployer:
		item.Text = head.say("\ndeploying since %s: finish it when it is done.", since(now, rel.Started))
		item.Buttons = []Button{{Label: "Finish", Command: "dep finish " + ref, Style: "primary"}}
	case rel.State == StateFailed && deployer:
		item.Text = head.plain("\nits hook failed: start it again, or finish it.")
		item.Buttons = []Button{
			{Label: "Start again", Command: "dep start " + ref, Style: "primary"},
			{Label: "Finish", Command: "dep finish " + ref},
		}
	default:
		return item, false
	}
	return item, true
}

// Text renders the whole view as one text, for the console and a chat
// without a home tab: each button is named with the command it types.
func (v HomeView) Text() Text {
	t := say("Home of %v.\nWaiting for you:", Person(v.User))
	if len(v.Waiting) == 0 {
		t = t.plain(" nothing.")
	}
	for _, w := range v.Waiting {
		t = t.say("\n• %v", w.Text)
		for i, b := range w.Buttons {
			sep := " "
			if i == 0 {
				sep = "\n  "
			}
			t = t.say("%s[%s: %v]", sep, b.Label, Code(b.Command))
		}
	}
	t = t.say("\nQueue:\n%v", v.Queue)
	t = t.say("\nLocks:\n%v", v.Locks)
	t = t.say("\nFreezes:\n%v", v.Freezes)
	return t.say("\nWhere:\n%v", v.Where)
}
