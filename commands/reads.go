package commands

import (
	"slices"
	"strings"
)

func (r *cmdRun) queue() error {
	open, locks, err := r.openAndLocks()
	if err != nil {
		return err
	}
	open = queueOrder(open)
	closing := map[uint64]Release{}
	for _, l := range locks {
		if l.Frozen() || slices.ContainsFunc(open, func(o Release) bool { return o.ID == l.Release }) {
			continue
		}
		if rel, err := r.tx.Release(l.Release); err == nil {
			closing[rel.ID] = rel
		}
	}
	typical, known, err := r.s.typicalDeploy(r.tx, r.now)
	if err != nil {
		return err
	}
	text := queueText(open, locks, closing, r.handoffsByEnv(open, locks, closing, typical, known), r.now, r.s.envConfigured(), r.s.zone())
	if r.s.cfg.Instance != "" {
		text = text.say("\nAnswered by %s.", r.s.cfg.Instance)
	}
	r.reply(text)
	return nil
}

// anyRelease returns the ticket's open release, else its most recent one.
func (r *cmdRun) anyRelease() (Release, error) {
	rel, err := r.findOpen(r.cmd.Ticket, r.cmd.Env)
	if ErrorCode(err) == ENOTFOUND {
		rel, err = r.lastRelease(r.cmd.Ticket, r.cmd.Env)
	}
	if ErrorCode(err) == ENOTFOUND {
		return rel, Errorf(ENOTFOUND, "%s has never been requested: dobro %s to request it.", r.cmd.Ticket, r.cmd.Ticket)
	}
	return rel, err
}

func (r *cmdRun) status() error {
	rel, err := r.anyRelease()
	if err != nil {
		return err
	}
	text := CardText(rel, r.now)
	if rel.State.Open() {
		if pos, err := r.position(rel.ID); err == nil && pos > 0 {
			text = text.say("\nposition in the queue: %d", pos)
		}
	}
	if rel.Running != nil {
		if p, held := r.s.heldResult(rel.Running.Attempt); held {
			text = text.say("\n%v", p.text(rel.Ticket, r.now))
		}
	}
	if !rel.State.Open() {
		if kept, err := r.keptLocks(rel); err != nil {
			return err
		} else if len(kept) > 0 {
			text = text.say("\nstill locks %s, %s", strings.Join(kept, ", "), closingText(rel, kept[0], r.now))
		}
	}
	if rel.LastHook != nil {
		text = text.say("\nlast hook: %v", hookText(*rel.LastHook).firstLine())
	}
	r.reply(text)
	return nil
}

// keptLocks returns the components whose lock rel holds.
func (r *cmdRun) keptLocks(rel Release) ([]string, error) {
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

func (r *cmdRun) help() error {
	r.reply(helpText())
	return nil
}

func (r *cmdRun) history() error {
	if _, ok, _ := historyAtTime(r.cmd); ok {
		return r.historyAt()
	}
	if _, ok, _ := filtered(r.cmd, r.now); ok {
		return r.historyFiltered()
	}
	const max = 10
	var rels []Release
	var err error
	switch {
	case r.cmd.Ticket != "" && r.cmd.Env != "":
		// A ticket has few releases: read them all, keep those of ENV.
		all, rerr := r.tx.Releases(r.cmd.Ticket, 0)
		for _, rel := range all {
			if r.s.envName(rel) == r.cmd.Env && len(rels) < max {
				rels = append(rels, rel)
			}
		}
		err = rerr
	case r.cmd.Ticket != "":
		rels, err = r.tx.Releases(r.cmd.Ticket, max)
	default:
		rels, err = r.tx.Recent(max)
	}
	if err != nil {
		return err
	}
	if len(rels) == 0 {
		if r.cmd.Env != "" {
			r.reply(say("%s has never been requested in %s.", r.cmd.Ticket, r.cmd.Env))
		} else if r.cmd.Ticket != "" {
			r.reply(say("%s has never been requested.", r.cmd.Ticket))
		} else {
			r.reply(say("No releases yet."))
		}
		return nil
	}
	var b Text
	if r.cmd.Env != "" {
		b = say("Releases of %s in %s, newest first:", r.cmd.Ticket, r.cmd.Env)
	} else if r.cmd.Ticket != "" {
		b = say("Releases of %s, newest first:", r.cmd.Ticket)
	} else {
		b = say("Recent releases, newest first:")
	}
	for _, rel := range rels {
		b = b.say("\n• %v%s — %s — requested %s by %v", TicketRef(rel), envVersion(rel), rel.State, r.s.clockAt(rel.Created, layoutDate), Person(rel.Requester))
		if rel.Approver != "" {
			b = b.say(", approver %v", Person(rel.Approver))
		}
		if rel.Admin != "" {
			b = b.say(", admin %v", Person(rel.Admin))
		}
		if !rel.State.Open() {
			b = b.say(", ended %s", r.s.clockAt(rel.Updated, layoutDate))
		}
	}
	r.reply(b)
	return nil
}

func (r *cmdRun) log() error {
	rel, err := r.anyRelease()
	if err != nil {
		return err
	}
	if rel.LastHook == nil {
		r.reply(say("No hook has run for %s yet.", rel.Ticket))
		return nil
	}
	h := *rel.LastHook
	text := say("Last hook of %s: %v, ended %s", rel.Ticket, hookText(h).firstLine(), since(r.now, h.Ended))
	if h.Output != "" {
		text = text.add(Output(h.Output))
	} else {
		text = text.plain("\n(no output)")
	}
	r.reply(text)
	return nil
}
