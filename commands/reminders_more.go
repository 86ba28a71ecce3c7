package commands

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The reminder kinds after the approval one (SPEC "Reminders, freezes and
// expiry"). Each is written by the transition that makes it due (arrive,
// called by move) and deleted by the one that moves the release on
// (leave); it repeats every reminders.repeat, counted from the last one
// sent.
const (
	// DueRemindClaim reminds the admins of an accepted release that waits
	// for one of them to claim it.
	DueRemindClaim DueKind = "remind-claim"
	// DueRemindStart reminds the requester of a release ready to start
	// that nobody started.
	DueRemindStart DueKind = "remind-start"
	// DueRemindDeploying asks the requester and the admin of a release
	// deploying this long whether it still is (the components stay locked
	// until it finishes).
	DueRemindDeploying DueKind = "remind-deploying"
)

// ActionEscalate records a reminder also said in the card's thread, after
// reminders.escalate_after of its kind. Like remind it changes no state.
const ActionEscalate Action = "escalate"

// ActionExtend records extend: the deploying reminder snoozed. It changes
// no state.
const ActionExtend Action = "extend"

func init() {
	envAdmins := func(p Policy) [][]string {
		var lists [][]string
		for _, e := range p.Envs {
			lists = append(lists, e.Admins)
		}
		return lists
	}
	dueKinds[DueRemindClaim] = dueKind{state: StateAccepted, needs: envAdmins, fire: quietly((*firing).remindClaim)}
	dueKinds[DueRemindStart] = dueKind{state: StateAccepted, more: []State{StateClaimed}, fire: quietly((*firing).remindStart)}
	// Deploying, and failed: a release whose start hook failed holds its
	// locks as a deploying one does (the held-lock reminder).
	dueKinds[DueRemindDeploying] = dueKind{state: StateDeploying, more: []State{StateFailed}, needs: envAdmins, fire: quietly((*firing).remindDeploying)}
}

// arrive writes the first reminder about rel, which has just moved from
// from to its state in r's transaction, when that state is one a person
// must act in and its reminder is on.
func (r *cmdRun) arrive(from State, rel Release) error {
	if rel.State == from {
		return nil
	}
	rem := r.s.cfg.Reminders
	var kind DueKind
	var after time.Duration
	switch {
	case rel.State == StateAccepted && rel.NeedAdmin && rel.Admin == "":
		kind, after = DueRemindClaim, rem.Claim
	case ready(rel):
		kind, after = DueRemindStart, rem.Start
	case rel.State.HoldsLocks(): // deploying, or failed with its locks held
		kind, after = DueRemindDeploying, rem.Deploying
	}
	if kind == "" || after <= 0 {
		return nil
	}
	return r.putDue(Due{At: r.now.Add(after), Kind: kind, Release: rel.ID, Guard: Guard{State: rel.State, Version: rel.Version}})
}

// again returns the next reminder after the n-th, counted from now, or nil
// without reminders.repeat.
func (f *firing) again(rel Release, n int) *Due {
	every := f.s.cfg.Reminders.Repeat
	if every <= 0 {
		return nil
	}
	return &Due{At: f.now.Add(every), Guard: Guard{State: rel.State, Version: rel.Version}, Repeat: n}
}

// remindClaim DMs the admins of rel's environment that it still waits for
// one of them, with the Claim button.
func (f *firing) remindClaim(rel Release, d Due) (*Due, error) {
	if f.s.cfg.Reminders.Claim <= 0 || !rel.NeedAdmin || rel.Admin != "" {
		return nil, nil
	}
	to := f.roles[strings.Join(f.s.envOf(rel).Admins, ",")]
	if len(to) == 0 {
		return nil, nil
	}
	for _, a := range to {
		f.dm(a, say("%v Reminder: %v%s still waits for an admin: %s — requested by %v.", Icon("alarm_clock"), TicketRef(rel), envVersion(rel), orNone(rel.Summary), Person(rel.Requester)),
			Button{Label: "Claim", Command: "here " + f.s.ref(rel), Style: "primary"})
	}
	return f.reminded(rel, d, "claim", to, say("%v waits for an admin to claim it", TicketRef(rel)))
}

// remindStart DMs the requester of rel, ready to start, with the Start
// button.
func (f *firing) remindStart(rel Release, d Due) (*Due, error) {
	if f.s.cfg.Reminders.Start <= 0 || !ready(rel) {
		return nil, nil
	}
	f.dm(rel.Requester, say("%v Reminder: %v%s is ready to start and nobody started it: %s.", Icon("alarm_clock"), TicketRef(rel), envVersion(rel), orNone(rel.Summary)),
		Button{Label: "Start", Command: "dep start " + f.s.ref(rel), Style: "primary"})
	return f.reminded(rel, d, "start", []string{rel.Requester}, say("%v is ready to start and nobody started it", TicketRef(rel)))
}

// remindDeploying asks the requester and the admin of rel (without one, the
// environment's admins) whether it is still deploying: its locks stay
// held until it finishes, and the bot never frees them by itself. Each
// gets Finish and Extend; an admin also Cancel.
func (f *firing) remindDeploying(rel Release, d Due) (*Due, error) {
	if f.s.cfg.Reminders.Deploying <= 0 {
		return nil, nil
	}
	admins := f.roles[strings.Join(f.s.envOf(rel).Admins, ",")]
	to := []string{rel.Requester}
	switch {
	case rel.Admin != "":
		to = append(to, rel.Admin)
	default:
		to = append(to, admins...)
	}
	slices.Sort(to)
	to = slices.Compact(slices.DeleteFunc(to, func(u string) bool { return u == "" }))
	ref := f.s.ref(rel)
	long := Ago(f.now.Sub(rel.Started))
	if long == "just now" {
		long = "less than a minute" // a console demo's deploying: 1s
	}
	locks := ""
	if len(rel.Locks) > 0 {
		locks = "; it holds " + strings.Join(rel.Locks, ", ")
	}
	failed := rel.State == StateFailed
	finishStyle := "primary" // for a failed release, starting again is
	if failed {
		finishStyle = ""
	}
	for _, u := range to {
		var buttons []Button
		if failed {
			buttons = append(buttons, Button{Label: "Start again", Command: "dep start " + ref, Style: "primary"})
		}
		buttons = append(buttons, Button{Label: "Finish", Command: "dep finish " + ref, Style: finishStyle},
			Button{Label: "Extend", Command: "extend " + ref})
		if u == rel.Admin || slices.Contains(admins, u) {
			buttons = append(buttons, Button{Label: "Cancel", Command: "cancel " + ref, Style: "danger"})
		}
		text := say("%v Reminder: %v%s has been deploying for %s%s. Still deploying? Finish it, or extend to be asked again later.", Icon("alarm_clock"), TicketRef(rel), envVersion(rel), long, locks)
		if failed {
			text = say("%v Reminder: %v%s: its start hook failed %s ago and it still holds %s. Start it again, finish it, or extend to be asked again later.",
				Icon("alarm_clock"), TicketRef(rel), envVersion(rel), Ago(f.now.Sub(rel.Updated)), strings.Join(rel.Locks, ", "))
		}
		f.dm(u, text, buttons...)
	}
	if failed {
		return f.reminded(rel, d, "held lock", to, say("%v failed and still holds %s", TicketRef(rel), strings.Join(rel.Locks, ", ")))
	}
	return f.reminded(rel, d, "deploying", to, say("%v is still deploying%s", TicketRef(rel), locks))
}

// reminded audits the reminder d of kind just sent to, escalates it when
// its count says so and returns the next one.
func (f *firing) reminded(rel Release, d Due, kind string, to []string, what Text) (*Due, error) {
	n := d.Repeat + 1
	if err := f.auditRelease(ActionRemind, rel, StateNone, StateNone, fmt.Sprintf("%s reminder %d to %s", kind, n, strings.Join(to, ","))); err != nil {
		return nil, err
	}
	if err := f.escalate(rel, kind, n, to, what); err != nil {
		return nil, err
	}
	return f.again(rel, n), nil
}

// escalate says the n-th reminder of kind about rel in the card's thread,
// mentioning the people it went to, once reminders.escalate_after of them
// went by DM alone. A deploy in an environment with after (production)
// escalates from its first reminder even without escalate_after: its
// locks are never freed silently, so people beyond the DM must see it.
func (f *firing) escalate(rel Release, kind string, n int, to []string, what Text) error {
	after := f.s.cfg.Reminders.EscalateAfter
	if after <= 0 && (kind == "deploying" || kind == "held lock") && f.s.envOf(rel).After != "" {
		after = 0
	} else if after <= 0 || n <= after {
		return nil
	}
	text := say("%v ", Icon("rotating_light")).add(what...).say(" (reminder %d): ", n)
	for i, u := range to {
		if i > 0 {
			text = text.plain(", ")
		}
		text = text.add(Person(u))
	}
	f.thread(rel, text.plain("."))
	return f.auditRelease(ActionEscalate, rel, StateNone, StateNone, fmt.Sprintf("%s reminder %d in the thread, to %s", kind, n, strings.Join(to, ",")))
}

// extend snoozes the deploying reminder of a deploying release (its Extend
// button): the next one comes reminders.repeat from now (reminders.
// deploying without a repeat), and its count starts again, since someone
// has just answered. The locks stay held; the snooze is audited.
func (r *cmdRun) extend() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	if !rel.State.HoldsLocks() {
		return Errorf(ECONFLICT, "%s is %s, not deploying: there is no deploying reminder to snooze.", rel.Ticket, rel.State)
	}
	rem := r.s.cfg.Reminders
	snooze := rem.Repeat
	if snooze <= 0 {
		snooze = rem.Deploying
	}
	if rem.Deploying <= 0 || snooze <= 0 {
		return Errorf(EINVALID, "There are no deploying reminders (reminders.deploying is not set): nothing to snooze.")
	}
	at := r.now.Add(snooze)
	if err := r.putDue(Due{At: at, Kind: DueRemindDeploying, Release: rel.ID, Guard: Guard{State: rel.State, Version: rel.Version}}); err != nil {
		return err
	}
	if err := r.auditRelease(ActionExtend, rel, StateNone, StateNone, "deploying reminder snoozed until "+at.UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	r.reply(say("Extended: %v stays %s; the next reminder comes at %s.", TicketRef(rel), rel.State, r.s.whenText(at, r.now)))
	return nil
}
