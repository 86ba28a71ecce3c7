package commands

import (
	"context"
	"strings"
)

// Precheck answers, without changing anything, whether the dobro command
// in m would be refused for its ticket: the tracker does not know it, does
// not let the bot see it, or the ticket breaks the rules. It returns that
// refusal (EINVALID, ENOTFOUND or EFORBIDDEN, with the words dobro would
// answer), and nil when the ticket passes or when the decision is not the
// ticket's: a message that is not a dobro, a sender who may not request
// releases (Handle refuses them, audited, and the ticket's state is not
// shown to them), a ticket already in the queue. EUNAVAILABLE means it
// could not tell in time (ctx ended, the tracker or the roles could not be
// reached).
//
// A form (the Slack modal) shows the refusal on its ticket field before
// anything is recorded; what passes is then received and handled as a
// typed command, which checks everything again.
func (s *Service) Precheck(ctx context.Context, m Message) error {
	cmd, err := ParseIn(m.Text, s.envNames)
	if err != nil || cmd.Verb != VerbDobro {
		return err
	}
	pre := s.prepare(ctx, m, cmd)
	if err := ctx.Err(); err != nil {
		return Errorf(EUNAVAILABLE, "Could not check %s in time.", cmd.Ticket)
	}
	var refused error
	err = s.cfg.Store.View(ctx, func(tx Tx) error {
		r := &cmdRun{s: s, tx: tx, m: m, cmd: cmd, now: s.now(), pre: pre}
		if err := r.authorize(nil); err != nil {
			return nil
		}
		if _, err := r.findOpen(cmd.Ticket, r.cmdEnv().Name); err == nil {
			return nil
		} else if ErrorCode(err) != ENOTFOUND {
			return err
		}
		refused = s.ticketRefusal(cmd.Ticket, pre)
		if ErrorCode(refused) == EUNAVAILABLE {
			return refused
		}
		return nil
	})
	if err != nil {
		return Errorf(EUNAVAILABLE, "Could not check %s: %s", cmd.Ticket, ErrorMessage(err))
	}
	return refused
}

// ticketRefusal is dobro's answer for a ticket the tracker did not give
// (ENOTFOUND, EFORBIDDEN, EINVALID as the tracker said; EUNAVAILABLE when
// it could not be reached) or that breaks the rules (EINVALID), and nil for
// a ticket that may be released: one place for dobro and Precheck.
func (s *Service) ticketRefusal(key string, pre prepared) error {
	if err := pre.ticketErr; err != nil {
		switch ErrorCode(err) {
		case ENOTFOUND, EFORBIDDEN, EINVALID:
			return Errorf(ErrorCode(err), "%s. Not queued.", strings.TrimSuffix(ErrorMessage(err), "."))
		default:
			return Errorf(EUNAVAILABLE, "Could not reach the tracker: %s not queued, try again.", key)
		}
	}
	if problems := s.cfg.Policy.Rules.Check(pre.ticket); len(problems) > 0 {
		return Errorf(EINVALID, "%s cannot be released: %s. Not queued.", key, strings.Join(problems, "; "))
	}
	return nil
}
