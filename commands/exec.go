package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/commands/failpoint"
)

// run is one command inside its transaction: it reads and writes through tx
// and collects effects, emitted together at the end (flush), and work to do
// after the commit (after).
type run struct {
	s       *Service
	tx      Tx
	m       Message
	cmd     Command
	now     time.Time
	pre     prepared
	effects []Effect
	after   []func()
	src     string // the audit source when not the message's (source in via.go)
}

func (r *run) reply(text string) {
	r.effects = append(r.effects, Effect{Kind: EffectReply, User: r.m.User, Channel: r.m.Channel, Thread: r.m.Thread, Via: r.m.Via, Text: text})
}

func (r *run) card(rel Release) {
	r.effects = append(r.effects, Effect{Kind: EffectCard, Release: &rel})
}

func (r *run) thread(rel Release, text string) {
	r.effects = append(r.effects, Effect{Kind: EffectThread, Release: &rel, Text: text})
}

func (r *run) dm(user, text string, buttons ...Button) {
	if user == "" {
		return
	}
	r.effects = append(r.effects, Effect{Kind: EffectDM, User: user, Text: text, Buttons: buttons})
}

func (r *run) audit(a Action, ticket string, from, to State, detail string) error {
	_, err := r.tx.AppendAudit(AuditEntry{Time: r.now, Actor: r.m.User, Action: a, Ticket: ticket, From: from, To: to, Detail: detail, Via: r.source()})
	return err
}

func (r *run) flush() error {
	for _, e := range r.effects {
		e.Event = r.m.EventID
		if _, err := r.tx.Emit(e); err != nil {
			return err
		}
	}
	return nil
}

// exec runs the command. A refusal (an *Error) is answered to the actor and
// audited when the command would have changed state; any other error aborts
// the transaction.
func (r *run) exec() error {
	var err error
	switch r.cmd.Verb {
	case VerbDobro:
		err = r.dobro()
	case VerbQueue:
		err = r.queue()
	case VerbAccept:
		err = r.accept()
	case VerbReject:
		err = r.reject()
	case VerbHere:
		err = r.here()
	case VerbStart:
		err = r.start()
	case VerbFinish:
		err = r.finish()
	case VerbCancel:
		err = r.cancel()
	case VerbLock:
		err = r.lock()
	case VerbUnlock:
		err = r.unlock()
	case VerbStatus:
		err = r.status()
	case VerbHistory:
		err = r.history()
	case VerbLog:
		err = r.log()
	case VerbHelp:
		r.reply(helpText())
	default:
		err = Errorf(EINVALID, "%s is not a command. Try help.", r.cmd.Verb)
	}
	if errors.Is(err, errSettled) {
		err = nil // an admin's command recorded a held hook result, which closed the release
	}
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		// A refusal: abort this transaction so that nothing it wrote stays;
		// Handle records the refusal in a transaction of its own.
		return &refusal{e}
	}
	return err
}

// refusal aborts a command's transaction; the refusal is then answered and
// audited on its own.
type refusal struct{ err *Error }

func (r *refusal) Error() string { return r.err.Message }

// refuse answers a refused command and audits it when it would have changed state.
func (r *run) refuse(e *Error, changes bool) error {
	r.effects = nil
	r.reply(e.Message)
	if !changes {
		return nil
	}
	return r.audit(ActionRefused, r.cmd.Ticket, StateNone, StateNone, fmt.Sprintf("%s: %s", verbOf(r.m.Text), e.Message))
}

// authorize is the one authorisation check for every command and path.
func (r *run) authorize(rel *Release) error {
	ro := r.pre.roles
	if ro.err != nil {
		return Errorf(EUNAVAILABLE, "Could not check your roles right now (%s): nothing was changed, try again in a minute.", ErrorMessage(ro.err))
	}
	who := r.m.User
	switch r.cmd.Verb {
	case VerbDobro:
		if ro.notInChannel {
			return Errorf(EFORBIDDEN, "Only members of the release channel can request releases: join %s and ask there.", channelRef(r.s.Policy.Channel))
		}
		if !ro.requester {
			return Errorf(EFORBIDDEN, "You are not allowed to request releases: ask an admin to add you to the requesters.")
		}
	case VerbAccept, VerbReject:
		if !ro.approver {
			return Errorf(EFORBIDDEN, "Only approvers can %s releases: ask one of them.", r.cmd.Verb)
		}
		if r.cmd.Verb == VerbAccept && rel != nil && rel.Requester == who {
			return Errorf(EFORBIDDEN, "You requested %s, so you cannot approve it yourself: ask another approver.", rel.Ticket)
		}
	case VerbHere, VerbLock, VerbUnlock:
		if !ro.admin {
			return Errorf(EFORBIDDEN, "Only admins can %s: ask one of them.", describeVerb(r.cmd.Verb))
		}
	case VerbStart, VerbFinish, VerbCancel:
		if rel != nil && (rel.Requester == who || rel.Admin == who || ro.admin) {
			return nil
		}
		return Errorf(EFORBIDDEN, "Only the requester (%s) or an admin can %s %s.", UserRef(rel.Requester), r.cmd.Verb, rel.Ticket)
	}
	return nil
}

func describeVerb(v Verb) string {
	switch v {
	case VerbHere:
		return "claim releases"
	case VerbLock:
		return "freeze components"
	case VerbUnlock:
		return "unfreeze components"
	}
	return string(v)
}

// authorizedRelease returns the open release of the command's ticket, once
// the sender may run the command on it.
func (r *run) authorizedRelease() (Release, error) {
	rel, err := r.openRelease()
	if err != nil {
		return Release{}, err
	}
	if err := r.authorize(&rel); err != nil {
		return Release{}, err
	}
	return rel, nil
}

// openRelease returns the ticket's open release, or a refusal saying how to
// request it.
func (r *run) openRelease() (Release, error) {
	rel, err := r.tx.OpenRelease(r.cmd.Ticket)
	if ErrorCode(err) == ENOTFOUND {
		if last, lerr := r.tx.LastRelease(r.cmd.Ticket); lerr == nil {
			return Release{}, Errorf(ECONFLICT, "%s is already %s (%s): request it again with dobro %s.", r.cmd.Ticket, last.State, Ago(r.now.Sub(last.Updated))+" ago", r.cmd.Ticket)
		}
		return Release{}, Errorf(ENOTFOUND, "%s is not in the queue: request it with dobro %s.", r.cmd.Ticket, r.cmd.Ticket)
	}
	if err != nil {
		return Release{}, err
	}
	if rel.Running != nil {
		p, held := r.s.heldResult(rel.Running.Attempt)
		switch {
		case !held:
			return Release{}, Errorf(ECONFLICT, "The %s hook of %s is running (since %s): wait for its result.", rel.Running.Phase, rel.Ticket, since(r.now, rel.Running.Since))
		case !r.pre.roles.admin:
			return Release{}, Errorf(ECONFLICT, "%s Wait, or ask an admin: an admin's command on %s records it first.", p.text(rel.Ticket, r.now), rel.Ticket)
		}
		if rel, err = r.settle(rel, p); err != nil {
			return Release{}, err
		}
		if !rel.State.Open() {
			return Release{}, errSettled
		}
	}
	return rel, nil
}

// errSettled ends an admin's command whose release was closed by the held
// hook result the command recorded first: there is nothing left to do, and
// the reply said what happened.
var errSettled = errors.New("the held hook result closed the release")

// settle records p, the held result of rel's running hook, in this
// command's transaction: an admin resolves a release whose result could not
// be saved. It returns the release as it is then. The retries stop once
// this transaction has committed.
func (r *run) settle(rel Release, p *heldResult) (Release, error) {
	after, err := r.s.applyHook(r.tx, rel.ID, p.hr, p.res)
	if err != nil {
		return rel, err
	}
	r.after = append(r.after, after...)
	r.after = append(r.after, func() { r.s.settled(p) })
	if rel, err = r.tx.Release(rel.ID); err != nil {
		return rel, err
	}
	r.reply(fmt.Sprintf("Recorded the held result of the %s hook of %s first (%s); %s is %s.", p.hr.Phase, rel.Ticket, p.outcome(), rel.Ticket, rel.State))
	return rel, nil
}

// move applies action to rel through the transition table, stores it and
// audits it.
func (r *run) move(rel Release, action Action, detail string, change func(*Release)) (Release, error) {
	to, ok := Next(rel.State, action)
	if !ok {
		return rel, Errorf(ECONFLICT, "%s is %s: it cannot be %s now.", rel.Ticket, rel.State, action)
	}
	from := rel.State
	if change != nil {
		change(&rel)
	}
	rel.State, rel.Updated = to, r.now
	rel, err := r.tx.PutRelease(rel)
	if err != nil {
		return rel, err
	}
	return rel, r.audit(action, rel.Ticket, from, to, detail)
}

func (r *run) dobro() error {
	c := r.cmd
	if err := r.authorize(nil); err != nil {
		return err
	}
	for _, comp := range c.Components {
		if !containsFold(r.s.Policy.Components, comp) {
			return Errorf(EINVALID, "%s is not a lockable component (known: %s): not queued.", Escape(comp), strings.Join(r.s.Policy.Components, ", "))
		}
	}
	if rel, err := r.tx.OpenRelease(c.Ticket); err == nil {
		r.reply(fmt.Sprintf("%s is already in the queue: %s, requested by %s %s.", TicketRef(rel), rel.State, UserRef(rel.Requester), since(r.now, rel.Created)))
		return nil
	} else if ErrorCode(err) != ENOTFOUND {
		return err
	}
	if err := r.pre.ticketErr; err != nil {
		switch ErrorCode(err) {
		case ENOTFOUND, EFORBIDDEN, EINVALID:
			return Errorf(ErrorCode(err), "%s. Not queued.", strings.TrimSuffix(ErrorMessage(err), "."))
		default:
			r.s.Log.Error().Err(err).Str("ticket", c.Ticket).Msg("tracker lookup failed")
			return Errorf(EUNAVAILABLE, "Could not reach the tracker: %s not queued, try again.", c.Ticket)
		}
	}
	t := r.pre.ticket
	if problems := r.s.Policy.Rules.Check(t); len(problems) > 0 {
		return Errorf(EINVALID, "%s cannot be released: %s. Not queued.", c.Ticket, strings.Join(problems, "; "))
	}
	var ticketComps []string
	for _, tc := range t.Components {
		if n := ComponentName(tc); n != "" && !slices.Contains(ticketComps, n) {
			ticketComps = append(ticketComps, n)
		}
	}
	comps, chosen := c.Components, len(c.Components) > 0
	if !chosen {
		comps, ticketComps = ticketComps, nil
	}
	var locks []string
	for _, comp := range comps {
		for _, known := range r.s.Policy.Components {
			if strings.EqualFold(comp, known) && !slices.Contains(locks, known) {
				locks = append(locks, known)
			}
		}
	}
	rel := Release{
		Ticket: c.Ticket, Summary: Clean(t.Summary), URL: t.URL, Note: c.Text, State: StateRequested,
		NeedAdmin: !c.NoNeedAdmin, Requester: r.m.User, Components: comps, Locks: locks,
		ComponentsChosen: chosen, TicketComponents: ticketComps,
		Created: r.now, Updated: r.now,
	}
	rel, err := r.tx.PutRelease(rel)
	if err != nil {
		return err
	}
	detail := "components: " + strings.Join(comps, ",")
	if c.NoNeedAdmin {
		detail += "; no admin needed"
	}
	if ComponentsDiffer(rel) {
		detail += "; the ticket's components: " + strings.Join(rel.TicketComponents, ",")
	}
	if err := r.audit(ActionRequest, rel.Ticket, StateNone, StateRequested, detail); err != nil {
		return err
	}
	pos, err := r.position(rel.ID)
	if err != nil {
		return err
	}
	r.card(rel)
	asked := 0
	for _, a := range r.pre.approvers {
		if a == rel.Requester {
			continue
		}
		asked++
		r.dm(a, fmt.Sprintf("%s asks for dobro: %s — %s.\n%s", UserRef(rel.Requester), TicketRef(rel), orNone(Escape(rel.Summary)), approvalFacts(rel)),
			Button{Label: "Approve", Command: "accept " + rel.Ticket, Style: "primary"},
			Button{Label: "Reject", Command: "reject " + rel.Ticket, Style: "danger"})
	}
	msg := fmt.Sprintf("%s is in the queue (#%d). ", TicketRef(rel), pos)
	if asked == 0 {
		msg += "No approver is configured to ask: tell an admin."
	} else {
		msg += fmt.Sprintf("Asked %d approver(s).", asked)
	}
	r.reply(msg)
	return nil
}

// ComponentName turns a tracker's component name into the form used for
// locks and hooks: lower case, runs of other characters as one "-", at most
// 64 bytes ("Payments API" → "payments-api"). It returns "" for a name with
// no letter or digit.
func ComponentName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= 63 {
			break
		}
	}
	// A name must start with a letter or digit: "../x" must not become
	// "-..-x", which a hook would take for an option.
	return strings.TrimLeft(b.String(), "-._")
}

func orNone(s string) string {
	if s == "" {
		return "(no summary)"
	}
	return s
}

// position is the 1-based place of a release in the queue.
func (r *run) position(id uint64) (int, error) {
	open, err := r.tx.Open()
	if err != nil {
		return 0, err
	}
	for i, o := range open {
		if o.ID == id {
			return i + 1, nil
		}
	}
	return 0, nil
}

// Check returns what keeps ticket t from being released, one phrase each.
func (rules Rules) Check(t Ticket) []string {
	var out []string
	project := t.Project
	if project == "" {
		project = ProjectOf(t.Key)
	}
	if len(rules.Projects) > 0 && !containsFold(rules.Projects, project) {
		out = append(out, fmt.Sprintf("project %s is not allowed (allowed: %s)", Escape(project), strings.Join(rules.Projects, ", ")))
	}
	if len(rules.ReadyStatuses) > 0 && !containsFold(rules.ReadyStatuses, t.Status) {
		out = append(out, fmt.Sprintf("status is %s, needs %s", orEmpty(Escape(t.Status)), strings.Join(rules.ReadyStatuses, " or ")))
	}
	if rules.RequireAssignee && strings.TrimSpace(t.Assignee) == "" {
		out = append(out, "no assignee")
	}
	if rules.RequireFixVersion && len(t.FixVersions) == 0 {
		out = append(out, "no fix version")
	}
	for _, f := range rules.RequiredFields {
		if strings.TrimSpace(t.Fields[f]) == "" {
			out = append(out, fmt.Sprintf("field %s is empty", Escape(f)))
		}
	}
	return out
}

func orEmpty(s string) string {
	if s == "" {
		return "empty"
	}
	return s
}

func (r *run) queue() error {
	open, err := r.tx.Open()
	if err != nil {
		return err
	}
	locks, err := r.tx.Locks()
	if err != nil {
		return err
	}
	closing := map[uint64]Release{}
	for _, l := range locks {
		if l.Frozen() || slices.ContainsFunc(open, func(o Release) bool { return o.ID == l.Release }) {
			continue
		}
		if rel, err := r.tx.Release(l.Release); err == nil {
			closing[rel.ID] = rel
		}
	}
	text := queueText(open, locks, closing, r.now)
	if r.s.Instance != "" {
		text += "\nAnswered by " + Escape(r.s.Instance) + "."
	}
	r.reply(text)
	return nil
}

func (r *run) accept() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	if rel.Approver != "" && rel.State != StateRequested {
		r.reply(fmt.Sprintf("%s is already accepted by %s (%s).", TicketRef(rel), UserRef(rel.Approver), rel.State))
		return nil
	}
	if rel, err = r.move(rel, ActionAccept, "", func(x *Release) { x.Approver = r.m.User }); err != nil {
		return err
	}
	r.card(rel)
	r.thread(rel, fmt.Sprintf("Accepted by %s.", UserRef(rel.Approver)))
	if rel.NeedAdmin {
		for _, a := range r.pre.admins {
			r.dm(a, fmt.Sprintf("%s was accepted and needs an admin: %s — requested by %s.", TicketRef(rel), orNone(Escape(rel.Summary)), UserRef(rel.Requester)),
				Button{Label: "Claim", Command: "here " + rel.Ticket, Style: "primary"})
		}
		r.dm(rel.Requester, fmt.Sprintf("%s was accepted by %s. Waiting for an admin to claim it.", TicketRef(rel), UserRef(rel.Approver)))
	} else {
		r.dm(rel.Requester, fmt.Sprintf("%s was accepted by %s: you may start.", TicketRef(rel), UserRef(rel.Approver)),
			Button{Label: "Start", Command: "dep start " + rel.Ticket, Style: "primary"})
	}
	r.reply(fmt.Sprintf("You accepted %s.", rel.Ticket))
	return nil
}

func (r *run) reject() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	if rel.State != StateRequested {
		return Errorf(ECONFLICT, "%s is already %s: only a requested release can be rejected; use cancel %s instead.", rel.Ticket, rel.State, rel.Ticket)
	}
	if rel, err = r.move(rel, ActionReject, r.cmd.Text, func(x *Release) { x.Approver, x.Reason = r.m.User, r.cmd.Text }); err != nil {
		return err
	}
	r.card(rel)
	why := ""
	if rel.Reason != "" {
		why = ": " + Escape(rel.Reason)
	}
	r.thread(rel, fmt.Sprintf("Rejected by %s%s.", UserRef(r.m.User), why))
	r.dm(rel.Requester, fmt.Sprintf("%s was rejected by %s%s.", TicketRef(rel), UserRef(r.m.User), why))
	r.reply(fmt.Sprintf("You rejected %s.", rel.Ticket))
	return nil
}

func (r *run) here() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	switch {
	case rel.Admin == r.m.User:
		r.reply(fmt.Sprintf("You already claimed %s.", TicketRef(rel)))
		return nil
	case rel.Admin != "":
		return Errorf(ECONFLICT, "%s is already claimed by %s.", rel.Ticket, UserRef(rel.Admin))
	case rel.State == StateRequested:
		return Errorf(ECONFLICT, "%s is not accepted yet: ask an approver.", rel.Ticket)
	case rel.State != StateAccepted:
		return Errorf(ECONFLICT, "%s is %s: only an accepted release can be claimed.", rel.Ticket, rel.State)
	}
	if rel, err = r.move(rel, ActionClaim, "", func(x *Release) { x.Admin = r.m.User }); err != nil {
		return err
	}
	r.card(rel)
	r.thread(rel, fmt.Sprintf("Claimed by %s.", UserRef(rel.Admin)))
	r.dm(rel.Requester, fmt.Sprintf("%s claimed %s: you may start.", UserRef(rel.Admin), TicketRef(rel)),
		Button{Label: "Start", Command: "dep start " + rel.Ticket, Style: "primary"})
	r.reply(fmt.Sprintf("You claimed %s.", rel.Ticket))
	return nil
}

// ready reports whether rel may start as far as its own state goes.
func ready(rel Release) bool {
	return rel.Running == nil && (rel.State == StateClaimed || (rel.State == StateAccepted && !rel.NeedAdmin))
}

func (r *run) start() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	switch rel.State {
	case StateRequested:
		return Errorf(ECONFLICT, "%s is not accepted yet: ask an approver.", rel.Ticket)
	case StateAccepted:
		if rel.NeedAdmin {
			return Errorf(ECONFLICT, "%s needs an admin: wait until one claims it (here %s), or request it with no_need_admin.", rel.Ticket, rel.Ticket)
		}
	case StateDeploying:
		if rel.LastHook == nil || rel.LastHook.Phase != PhaseStart || rel.LastHook.OK || rel.LastHook.Error != outcomeUnknown {
			r.reply(fmt.Sprintf("%s is already deploying (dep start %s by %s).", TicketRef(rel), since(r.now, rel.Started), UserRef(rel.Requester)))
			return nil
		}
	}
	if err := r.checkLocks(rel); err != nil {
		return err
	}
	hook := r.s.Hooks.Start
	detail := "locks: " + strings.Join(rel.Locks, ",")
	if rel.Requester != r.m.User && rel.Admin != r.m.User {
		detail += "; admin override"
	}
	var run *HookRun
	if hook != nil {
		run = &HookRun{Phase: PhaseStart, Attempt: r.s.attempt(), Actor: r.m.User, Since: r.now}
		detail += "; start hook attempt " + run.Attempt
	}
	if rel, err = r.move(rel, ActionStart, detail, func(x *Release) { x.Started, x.Running = r.now, run }); err != nil {
		return err
	}
	for _, comp := range rel.Locks {
		if err := r.tx.PutLock(Lock{Component: comp, Release: rel.ID, Ticket: rel.Ticket, By: r.m.User, Since: r.now}); err != nil {
			return err
		}
	}
	r.card(rel)
	msg := fmt.Sprintf("%s started the deploy", UserRef(r.m.User))
	if len(rel.Locks) > 0 {
		msg += "; locked " + strings.Join(rel.Locks, ", ")
	}
	if hook != nil {
		msg += ". Start hook running…"
		r.after = append(r.after, r.s.spawn(rel, *run, hook))
	} else {
		msg += ". When it is done: dep finish " + rel.Ticket + "."
		r.after = append(r.after, r.s.comment(rel.Ticket, PhaseStart, r.m.User, r.now))
	}
	r.thread(rel, msg)
	r.reply(fmt.Sprintf("Deploy of %s started.", rel.Ticket))
	return nil
}

// checkLocks refuses when a component of rel is locked by another release,
// frozen, or wanted by an earlier ready release (no jumping the queue). A
// freeze of all stops every start, also of a release that locks nothing.
func (r *run) checkLocks(rel Release) error {
	locks, err := r.tx.Locks()
	if err != nil {
		return err
	}
	for _, l := range locks {
		if l.Frozen() && (l.Component == AllComponents || slices.Contains(rel.Locks, l.Component)) {
			return Errorf(ECONFLICT, "%s: %s.", capitalize(lockText(l, r.now)), "wait until an admin unlocks it")
		}
		if !l.Frozen() && l.Release != rel.ID && slices.Contains(rel.Locks, l.Component) {
			return r.lockedBy(l)
		}
	}
	open, err := r.tx.Open()
	if err != nil {
		return err
	}
	for _, o := range open {
		if o.ID >= rel.ID {
			break
		}
		if !ready(o) {
			continue
		}
		for _, c := range o.Locks {
			if slices.Contains(rel.Locks, c) {
				return Errorf(ECONFLICT, "%s is ahead of %s in the queue for %s (%s by %s): it starts first, or it must be cancelled.", o.Ticket, rel.Ticket, c, o.State, UserRef(o.Requester))
			}
		}
	}
	return nil
}

// lockedBy refuses a dep start because release lock l holds one of its
// components. A release that is no longer open holds a lock only while its
// cancel hook runs, or after a restart found it running: say so, and what
// to do.
func (r *run) lockedBy(l Lock) error {
	text := capitalize(lockText(l, r.now))
	holder, err := r.tx.Release(l.Release)
	if err != nil || holder.State.Open() {
		return Errorf(ECONFLICT, "%s.", text)
	}
	return Errorf(ECONFLICT, "%s, %s.", text, closingText(holder, l.Component, r.now))
}

// closingText says why a release that is no longer open still holds
// component c: its cancel hook is running, or its outcome is unknown.
func closingText(rel Release, c string, now time.Time) string {
	if rel.Running != nil {
		return fmt.Sprintf("which is %s and whose %s hook is running (since %s): wait until it ends", rel.State, rel.Running.Phase, since(now, rel.Running.Since))
	}
	return fmt.Sprintf("which is %s; its cancel hook's outcome is unknown after a restart: check the rollback, then an admin frees it with unlock %s", rel.State, c)
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (r *run) finish() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	if rel.State != StateDeploying && rel.State != StateFailed {
		return Errorf(ECONFLICT, "%s has not started (%s): dep start %s first, or cancel %s.", rel.Ticket, rel.State, rel.Ticket, rel.Ticket)
	}
	if hook := r.s.Hooks.Finish; hook != nil {
		run := HookRun{Phase: PhaseFinish, Attempt: r.s.attempt(), Actor: r.m.User, Since: r.now}
		rel.Running = &run
		if rel, err = r.tx.PutRelease(rel); err != nil {
			return err
		}
		r.card(rel)
		r.thread(rel, fmt.Sprintf("%s is finishing the deploy. Finish hook running…", UserRef(r.m.User)))
		r.reply(fmt.Sprintf("Finishing %s: the finish hook is running.", rel.Ticket))
		r.after = append(r.after, r.s.spawn(rel, run, hook))
		return nil
	}
	return r.close(rel, ActionFinish, "", "", nil)
}

// close moves rel to done or cancelled and tells the people concerned. A
// release that held locks frees them and tells the next in line, unless
// hook is set: hook is the cancel hook about to run, kept as rel.Running,
// and the locks stay held until its result is recorded (recordHook), so
// that no other release deploys a component while it is rolled back.
// reason is the cancel reason.
func (r *run) close(rel Release, action Action, reason, detail string, hook *HookRun) error {
	free := rel.State.HoldsLocks() && hook == nil
	if hook != nil {
		detail = strings.TrimPrefix(detail+"; cancel hook attempt "+hook.Attempt, "; ")
	}
	if rel.Requester != r.m.User && rel.Admin != r.m.User {
		detail = strings.TrimPrefix(detail+"; admin override", "; ")
	}
	rel, err := r.move(rel, action, detail, func(x *Release) {
		if reason != "" {
			x.Reason = reason
		}
		if hook != nil {
			x.Running = hook
		}
	})
	if err != nil {
		return err
	}
	if free {
		for _, c := range rel.Locks {
			if err := r.tx.DeleteLock(c, rel.ID); err != nil {
				return err
			}
		}
	}
	r.card(rel)
	switch action {
	case ActionFinish:
		r.after = append(r.after, r.s.comment(rel.Ticket, PhaseFinish, r.m.User, r.now))
		r.thread(rel, fmt.Sprintf("Done: %s finished the deploy.", UserRef(r.m.User)))
		r.reply(fmt.Sprintf("%s is done. Thank you!", rel.Ticket))
	default:
		why := ""
		if reason != "" {
			why = ": " + Escape(reason)
		}
		text := fmt.Sprintf("Cancelled by %s%s.", UserRef(r.m.User), why)
		if hook != nil {
			text += " Cancel hook running…" + keptText(rel)
		}
		r.thread(rel, text)
		if rel.Requester != r.m.User {
			r.dm(rel.Requester, fmt.Sprintf("%s was cancelled by %s%s.", TicketRef(rel), UserRef(r.m.User), why))
		}
		msg := fmt.Sprintf("%s is cancelled.", rel.Ticket)
		if hook != nil {
			msg += " The cancel hook is running" + keptText(rel)
		}
		r.reply(msg)
	}
	if free {
		return r.tellNext(rel.Locks)
	}
	return nil
}

// keptText says which locks a cancelled release keeps while its cancel hook
// runs, as the end of a sentence.
func keptText(rel Release) string {
	if len(rel.Locks) == 0 {
		return "."
	}
	return fmt.Sprintf("; %s stay locked until it ends.", strings.Join(rel.Locks, ", "))
}

// tellNext DMs the requester of each first ready release waiting for one of
// the freed components that can now start.
func (r *run) tellNext(freed []string) error {
	if len(freed) == 0 {
		return nil
	}
	open, err := r.tx.Open()
	if err != nil {
		return err
	}
	locks, err := r.tx.Locks()
	if err != nil {
		return err
	}
	busy := map[string]bool{}
	for _, l := range locks {
		busy[l.Component] = true
	}
	if busy[AllComponents] {
		return nil
	}
	claimed := map[string]bool{} // components an earlier ready release will take first
	for _, o := range open {
		if !ready(o) || o.State.HoldsLocks() {
			continue
		}
		wants, blocked := len(o.Locks) == 0 && slices.Contains(freed, AllComponents), false
		for _, c := range o.Locks {
			wants = wants || slices.Contains(freed, c)
			blocked = blocked || busy[c] || claimed[c]
		}
		for _, c := range o.Locks {
			claimed[c] = true
		}
		if wants && !blocked {
			r.dm(o.Requester, fmt.Sprintf("You're next: %s can start now.", TicketRef(o)),
				Button{Label: "Start", Command: "dep start " + o.Ticket, Style: "primary"})
		}
	}
	return nil
}

func (r *run) cancel() error {
	rel, err := r.authorizedRelease()
	if err != nil {
		return err
	}
	hook := r.s.Hooks.Cancel
	if hook == nil || !rel.State.HoldsLocks() {
		return r.close(rel, ActionCancel, r.cmd.Text, r.cmd.Text, nil)
	}
	// The cancel hook rolls the deploy back: the release keeps its locks
	// until the hook's result is recorded.
	run := HookRun{Phase: PhaseCancel, Attempt: r.s.attempt(), Actor: r.m.User, Since: r.now}
	if err := r.close(rel, ActionCancel, r.cmd.Text, r.cmd.Text, &run); err != nil {
		return err
	}
	if rel, err = r.tx.Release(rel.ID); err != nil {
		return err
	}
	r.after = append(r.after, r.s.spawn(rel, run, hook))
	return nil
}

// freezeTarget authorises lock/unlock and returns the component and every lock.
func (r *run) freezeTarget() (string, []Lock, error) {
	if err := r.authorize(nil); err != nil {
		return "", nil, err
	}
	comp, err := r.component()
	if err != nil {
		return "", nil, err
	}
	locks, err := r.tx.Locks()
	return comp, locks, err
}

func (r *run) lock() error {
	comp, locks, err := r.freezeTarget()
	if err != nil {
		return err
	}
	for _, l := range locks {
		if l.Frozen() && l.Component == comp {
			r.reply(capitalize(lockText(l, r.now)) + " already.")
			return nil
		}
	}
	l := Lock{Component: comp, By: r.m.User, Since: r.now, Reason: r.cmd.Text}
	if err := r.tx.PutLock(l); err != nil {
		return err
	}
	if err := r.audit(ActionLock, "", StateNone, StateNone, strings.TrimSuffix(comp+": "+r.cmd.Text, ": ")); err != nil {
		return err
	}
	msg := fmt.Sprintf("Froze %s: no release can dep start on it until unlock %s.", comp, comp)
	if comp == AllComponents {
		msg = "Froze every component: no release can dep start until unlock all."
	}
	r.reply(msg)
	return nil
}

func (r *run) unlock() error {
	comp, locks, err := r.freezeTarget()
	if err != nil {
		return err
	}
	var held []string
	var left *Release // a release no longer open that holds comp
	found := false
	for _, l := range locks {
		if l.Frozen() && l.Component == comp {
			found = true
		}
		if !l.Frozen() && l.Component == comp {
			held = append(held, l.Ticket)
			if rel, err := r.tx.Release(l.Release); err != nil {
				return err
			} else if !rel.State.Open() {
				left = &rel
			}
		}
	}
	if !found {
		if left != nil {
			return r.unlockLeft(comp, *left)
		}
		if len(held) > 0 {
			return Errorf(ECONFLICT, "%s is not frozen; it is locked by %s until its dep finish or cancel.", comp, strings.Join(held, ", "))
		}
		r.reply(fmt.Sprintf("%s is not frozen.", comp))
		return nil
	}
	if err := r.tx.DeleteLock(comp, 0); err != nil {
		return err
	}
	if err := r.audit(ActionUnlock, "", StateNone, StateNone, comp); err != nil {
		return err
	}
	r.reply(fmt.Sprintf("Unfroze %s.", comp))
	freed := []string{comp}
	if comp == AllComponents {
		// all also frees the releases that lock nothing: the freeze held them too.
		freed = append(slices.Clone(r.s.Policy.Components), AllComponents)
	}
	return r.tellNext(freed)
}

// unlockLeft frees component comp of rel, a release that is no longer open
// but kept the lock: its cancel hook's outcome is unknown after a restart,
// and an admin who checked the rollback lets the next release go. While
// the hook runs, its result frees the lock; nobody else may.
func (r *run) unlockLeft(comp string, rel Release) error {
	if rel.Running != nil {
		if p, held := r.s.heldResult(rel.Running.Attempt); held {
			// The hook has ended but its result could not be saved:
			// recording it frees every lock of the release.
			_, err := r.settle(rel, p)
			return err
		}
		return Errorf(ECONFLICT, "%s is locked by %s, %s.", comp, rel.Ticket, closingText(rel, comp, r.now))
	}
	if err := r.tx.DeleteLock(comp, rel.ID); err != nil {
		return err
	}
	why := fmt.Sprintf("lock left by %s, which is %s", rel.Ticket, rel.State)
	if h := rel.LastHook; h != nil {
		why += fmt.Sprintf("; its %s hook (attempt %s): %s", h.Phase, h.Attempt, firstLine(hookDetailOrError(*h)))
	}
	if err := r.audit(ActionUnlock, rel.Ticket, rel.State, rel.State, comp+": "+why); err != nil {
		return err
	}
	r.thread(rel, fmt.Sprintf("%s freed %s, which %s still held.", UserRef(r.m.User), comp, rel.Ticket))
	r.reply(fmt.Sprintf("Freed %s: %s is %s and no longer holds it.", comp, rel.Ticket, rel.State))
	return r.tellNext([]string{comp})
}

// hookDetailOrError says how a hook ended, for the audit log.
func hookDetailOrError(h HookResult) string {
	if h.OK {
		return "ok"
	}
	return h.Error
}

func (r *run) component() (string, error) {
	comp := r.cmd.Component
	if comp == AllComponents {
		return comp, nil
	}
	for _, known := range r.s.Policy.Components {
		if strings.EqualFold(known, comp) {
			return known, nil
		}
	}
	return "", Errorf(EINVALID, "%s is not a lockable component (known: %s, or all).", Escape(comp), strings.Join(r.s.Policy.Components, ", "))
}

// anyRelease returns the ticket's open release, else its most recent one.
func (r *run) anyRelease() (Release, error) {
	rel, err := r.tx.OpenRelease(r.cmd.Ticket)
	if ErrorCode(err) == ENOTFOUND {
		rel, err = r.tx.LastRelease(r.cmd.Ticket)
	}
	if ErrorCode(err) == ENOTFOUND {
		return rel, Errorf(ENOTFOUND, "%s has never been requested: dobro %s to request it.", r.cmd.Ticket, r.cmd.Ticket)
	}
	return rel, err
}

func (r *run) status() error {
	rel, err := r.anyRelease()
	if err != nil {
		return err
	}
	text := CardText(rel, r.now)
	if rel.State.Open() {
		if pos, err := r.position(rel.ID); err == nil && pos > 0 {
			text += fmt.Sprintf("\nposition in the queue: %d", pos)
		}
	}
	if rel.Running != nil {
		if p, held := r.s.heldResult(rel.Running.Attempt); held {
			text += "\n" + p.text(rel.Ticket, r.now)
		}
	}
	if !rel.State.Open() {
		if kept, err := r.keptLocks(rel); err != nil {
			return err
		} else if len(kept) > 0 {
			text += fmt.Sprintf("\nstill locks %s, %s", strings.Join(kept, ", "), closingText(rel, kept[0], r.now))
		}
	}
	if rel.LastHook != nil {
		text += "\nlast hook: " + firstLine(hookText(*rel.LastHook))
	}
	r.reply(text)
	return nil
}

// keptLocks returns the components whose lock rel holds.
func (r *run) keptLocks(rel Release) ([]string, error) {
	locks, err := r.tx.Locks()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range locks {
		if !l.Frozen() && l.Release == rel.ID {
			out = append(out, l.Component)
		}
	}
	return out, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func (r *run) history() error {
	const max = 10
	var rels []Release
	var err error
	if r.cmd.Ticket != "" {
		rels, err = r.tx.Releases(r.cmd.Ticket, max)
	} else {
		rels, err = r.tx.Recent(max)
	}
	if err != nil {
		return err
	}
	if len(rels) == 0 {
		if r.cmd.Ticket != "" {
			r.reply(fmt.Sprintf("%s has never been requested.", r.cmd.Ticket))
		} else {
			r.reply("No releases yet.")
		}
		return nil
	}
	var b strings.Builder
	if r.cmd.Ticket != "" {
		fmt.Fprintf(&b, "Releases of %s, newest first:", r.cmd.Ticket)
	} else {
		b.WriteString("Recent releases, newest first:")
	}
	for _, rel := range rels {
		fmt.Fprintf(&b, "\n• %s — %s — requested %s by %s", TicketRef(rel), rel.State, rel.Created.Format("2006-01-02 15:04 MST"), UserRef(rel.Requester))
		if rel.Approver != "" {
			fmt.Fprintf(&b, ", approver %s", UserRef(rel.Approver))
		}
		if rel.Admin != "" {
			fmt.Fprintf(&b, ", admin %s", UserRef(rel.Admin))
		}
		if !rel.State.Open() {
			fmt.Fprintf(&b, ", ended %s", rel.Updated.Format("2006-01-02 15:04 MST"))
		}
	}
	r.reply(b.String())
	return nil
}

func (r *run) log() error {
	rel, err := r.anyRelease()
	if err != nil {
		return err
	}
	if rel.LastHook == nil {
		r.reply(fmt.Sprintf("No hook has run for %s yet.", rel.Ticket))
		return nil
	}
	h := *rel.LastHook
	text := fmt.Sprintf("Last hook of %s: %s, ended %s", rel.Ticket, firstLine(hookText(h)), since(r.now, h.Ended))
	if h.Output != "" {
		text += "\n```\n" + Escape(h.Output) + "\n```"
	} else {
		text += "\n(no output)"
	}
	r.reply(text)
	return nil
}

// spawn returns a function, run after the commit, that runs hook for rel on a
// tracked goroutine and records its result in a second transaction.
func (s *Service) spawn(rel Release, hr HookRun, hook Executor) func() {
	return func() {
		switch hr.Phase {
		case PhaseStart:
			failpoint.Hit(failpoint.AfterDeployIntentCommitBeforeSpawn)
		case PhaseFinish:
			failpoint.Hit(failpoint.AfterFinishIntentCommitBeforeSpawn)
		}
		s.hooks.Add(1)
		go func() {
			defer s.hooks.Done()
			job := Job{Phase: hr.Phase, Attempt: hr.Attempt, Ticket: rel.Ticket, Requester: rel.Requester, Admin: rel.Admin, Components: rel.Components}
			log := s.Log.With().Str("ticket", rel.Ticket).Str("phase", string(hr.Phase)).Str("attempt", hr.Attempt).Logger()
			log.Info().Msg("hook started")
			ctx := s.HookContext
			if ctx == nil {
				ctx = context.Background()
			}
			failpoint.Hit(failpoint.HookRunning)
			res := hook.Run(ctx, job)
			failpoint.Hit(failpoint.AfterHookExitBeforeResultCommit)
			res.Phase, res.Attempt = hr.Phase, hr.Attempt
			if res.Ended.IsZero() {
				res.Ended = s.now()
			}
			if s.Observer != nil {
				s.Observer.Hook(res)
			}
			ev := log.Info()
			if !res.OK {
				ev = log.Warn().Str("error", res.Error)
			}
			ev.Bool("ok", res.OK).Int("exit", res.ExitCode).Dur("duration", res.Duration).Msg("hook ended")
			s.keepRecording(ctx, log, rel.ID, hr, res)
			s.own.Delete(hr.Attempt)
		}()
	}
}

// recordHook records a hook's result as its own transition.
func (s *Service) recordHook(id uint64, hr HookRun, res HookResult) error {
	var after []func()
	err := s.Store.Update(context.Background(), func(tx Tx) error {
		var err error
		after, err = s.applyHook(tx, id, hr, res)
		return err
	})
	if err == nil {
		s.notify()
		for _, f := range after {
			f()
		}
	}
	return err
}

// errNotCurrent says that a hook's result can no longer be recorded: the
// release's Running names another attempt, or none (a restart called the
// outcome unknown, or an admin recorded it).
var errNotCurrent = errors.New("the hook attempt is no longer current")

// applyHook records hook attempt hr's result res for release id inside tx:
// the transition, its audit entry and whom to tell. It returns the work to
// do after the commit.
func (s *Service) applyHook(tx Tx, id uint64, hr HookRun, res HookResult) ([]func(), error) {
	rel, err := tx.Release(id)
	if err != nil {
		return nil, err
	}
	if rel.Running == nil || rel.Running.Attempt != hr.Attempt {
		return nil, fmt.Errorf("release %s, hook attempt %s: %w", rel.Ticket, hr.Attempt, errNotCurrent)
	}
	r := &run{s: s, tx: tx, m: Message{User: hr.Actor, Via: ViaDM}, now: s.now(), src: SourceDobrobot}
	rel.Running, rel.LastHook = nil, &res
	switch {
	case hr.Phase == PhaseCancel:
		if err := r.cancelHookEnded(rel, res); err != nil {
			return nil, err
		}
	case hr.Phase == PhaseStart && res.OK:
		if rel, err = r.move(rel, ActionStarted, hookDetail(res), nil); err != nil {
			return nil, err
		}
		r.after = append(r.after, s.comment(rel.Ticket, PhaseStart, hr.Actor, r.now))
		r.card(rel)
		r.thread(rel, hookText(res)+fmt.Sprintf(". When the deploy is done: dep finish %s.", rel.Ticket))
	case hr.Phase == PhaseStart:
		if rel, err = r.move(rel, ActionFail, hookDetail(res), nil); err != nil {
			return nil, err
		}
		r.card(rel)
		r.thread(rel, hookText(res))
		text := fmt.Sprintf("The start hook of %s failed; its locks stay held. Fix it and dep start %s again, or dep finish %s, or cancel %s. Output: log %s.", TicketRef(rel), rel.Ticket, rel.Ticket, rel.Ticket, rel.Ticket)
		for _, u := range uniq(hr.Actor, rel.Requester) {
			r.dm(u, text)
		}
	case res.OK: // finish
		if err := r.close(rel, ActionFinish, "", hookDetail(res), nil); err != nil {
			return nil, err
		}
	default: // finish failed: nothing changes but the record of it
		if rel, err = r.move(rel, ActionHookFailed, hookDetail(res), nil); err != nil {
			return nil, err
		}
		r.card(rel)
		r.thread(rel, hookText(res))
		r.dm(hr.Actor, fmt.Sprintf("The finish hook of %s failed; the release stays %s and keeps its locks. Retry dep finish %s, or cancel %s. Output: log %s.", TicketRef(rel), rel.State, rel.Ticket, rel.Ticket, rel.Ticket))
	}
	return r.after, r.flush()
}

// cancelHookEnded records the result of a cancelled release's cancel hook,
// whatever it is, then frees the locks the release kept while the hook ran
// and tells the next in line.
func (r *run) cancelHookEnded(rel Release, res HookResult) error {
	rel, err := r.tx.PutRelease(rel)
	if err != nil {
		return err
	}
	action := ActionHook
	if !res.OK {
		action = ActionHookFailed
	}
	if err := r.audit(action, rel.Ticket, rel.State, rel.State, hookDetail(res)); err != nil {
		return err
	}
	for _, c := range rel.Locks {
		if err := r.tx.DeleteLock(c, rel.ID); err != nil {
			return err
		}
	}
	text := hookText(res)
	if len(rel.Locks) > 0 {
		text = firstLine(text) + fmt.Sprintf("; freed %s.", strings.Join(rel.Locks, ", ")) + strings.TrimPrefix(text, firstLine(text))
	}
	r.card(rel)
	r.thread(rel, text)
	if !res.OK {
		r.dm(r.m.User, fmt.Sprintf("The cancel hook of %s failed: check the rollback. Its locks are freed. Output: log %s.", TicketRef(rel), rel.Ticket))
	}
	return r.tellNext(rel.Locks)
}

// comment returns a function, run after the commit, that writes a comment on
// the ticket when phase is in CommentOn and the tracker can take one. It
// retries in the background and only logs a failure.
func (s *Service) comment(ticket string, phase Phase, actor string, at time.Time) func() {
	return func() {
		c, ok := s.Tracker.(Commenter)
		if !ok || !slices.Contains(s.CommentOn, phase) {
			return
		}
		verb := map[Phase]string{PhaseStart: "started", PhaseFinish: "finished"}[phase]
		text := fmt.Sprintf("dobrobot: release %s by Slack user %s at %s.", verb, actor, at.UTC().Format("2006-01-02 15:04 MST"))
		pause := s.CommentRetry
		if pause <= 0 {
			pause = 30 * time.Second
		}
		s.hooks.Add(1)
		go func() {
			defer s.hooks.Done()
			log := s.Log.With().Str("ticket", ticket).Str("phase", string(phase)).Logger()
			const attempts = 3
			for i := 1; ; i++ {
				err := c.Comment(context.Background(), ticket, text)
				if err == nil {
					log.Info().Msg("commented on the ticket")
					return
				}
				if i == attempts {
					log.Error().Err(err).Int("attempts", i).Msg("could not comment on the ticket; giving up (the release is not affected)")
					return
				}
				log.Warn().Err(err).Int("attempt", i).Msg("could not comment on the ticket; retrying")
				time.Sleep(pause)
			}
		}()
	}
}

func hookDetail(res HookResult) string {
	if res.OK {
		return fmt.Sprintf("%s hook ok in %s (attempt %s)", res.Phase, res.Duration.Round(time.Millisecond), res.Attempt)
	}
	return fmt.Sprintf("%s hook failed: %s (attempt %s)", res.Phase, res.Error, res.Attempt)
}
