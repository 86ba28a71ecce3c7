package commands

import (
	"fmt"
	"slices"
	"strings"
)

func (r *cmdRun) queue() error {
	open, locks, err := r.openAndLocks()
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

// anyRelease returns the ticket's open release, else its most recent one.
func (r *cmdRun) anyRelease() (Release, error) {
	rel, err := r.tx.OpenRelease(r.cmd.Ticket)
	if ErrorCode(err) == ENOTFOUND {
		rel, err = r.tx.LastRelease(r.cmd.Ticket)
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

func (r *cmdRun) log() error {
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
