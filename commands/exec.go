package commands

import (
	"errors"
	"fmt"
	"time"
)

// cmdRun is one run of a command (or the recording of a hook's result)
// inside its Store transaction: it reads and writes through tx and collects
// effects, emitted together at the end (flush), and work to do after the
// commit (after). A hook's run is a HookRun, never a cmdRun.
type cmdRun struct {
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

func (r *cmdRun) reply(text Text) {
	r.effects = append(r.effects, Effect{Kind: EffectReply, User: r.m.User, Channel: r.m.Channel, Thread: r.m.Thread, Via: r.m.Via, Text: text})
}

func (r *cmdRun) card(rel Release) {
	r.effects = append(r.effects, Effect{Kind: EffectCard, Release: &rel})
}

func (r *cmdRun) thread(rel Release, text Text) {
	r.effects = append(r.effects, Effect{Kind: EffectThread, Release: &rel, Text: text})
}

func (r *cmdRun) dm(user string, text Text, buttons ...Button) {
	if user == "" {
		return
	}
	r.effects = append(r.effects, Effect{Kind: EffectDM, User: user, Text: text, Buttons: buttons})
}

// auditRelease appends an audit entry about rel, naming its ticket, its
// environment and its version.
func (r *cmdRun) auditRelease(a Action, rel Release, from, to State, detail string) error {
	_, err := r.tx.AppendAudit(AuditEntry{Time: r.now, Actor: r.m.User, Action: a, Ticket: rel.Ticket, Env: rel.Env, Version: rel.Build,
		From: from, To: to, Detail: detail, Via: r.source()})
	return err
}

func (r *cmdRun) flush() error {
	for _, e := range r.effects {
		if e.User == ActorCI && (e.Kind == EffectReply || e.Kind == EffectDM) {
			continue // CI is no person: it reads its answer, the card and the thread
		}
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
func (r *cmdRun) exec() error {
	var err error
	if spec, ok := lookup(r.cmd.Verb); ok {
		err = spec.Run(r)
	} else {
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
func (r *cmdRun) refuse(e *Error, changes bool) error {
	r.effects = nil
	r.reply(e.text())
	if !changes {
		return nil
	}
	// The entry names the environment and version as the command named
	// them (in ENV, to ENV, version V): what was asked for, which the
	// refusal may be about (a release that is not open there).
	_, err := r.tx.AppendAudit(AuditEntry{Time: r.now, Actor: r.m.User, Action: ActionRefused, Ticket: r.cmd.Ticket,
		Env: r.cmd.Env, Version: r.cmd.Build, Detail: fmt.Sprintf("%s: %s", VerbOf(r.m.Text), e.Message), Via: r.source()})
	return err
}

// openAndLocks reads the open releases, in queue order, and every lock.
func (r *cmdRun) openAndLocks() ([]Release, []Lock, error) {
	open, err := r.queued()
	if err != nil {
		return nil, nil, err
	}
	locks, err := r.tx.Locks()
	return open, locks, err
}

// move applies action to rel through the transition table, stores it and
// audits it.
func (r *cmdRun) move(rel Release, action Action, detail string, change func(*Release)) (Release, error) {
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
	if err := r.leave(from, rel); err != nil {
		return rel, err
	}
	if err := r.arrive(from, rel); err != nil {
		return rel, err
	}
	return rel, r.auditRelease(action, rel, from, to, detail)
}
