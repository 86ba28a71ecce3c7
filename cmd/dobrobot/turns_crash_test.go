package main

import (
	"strings"
	"testing"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/failpoint"
)

// TestCrashAroundTurnPass kills the bot (kill -9) at each failpoint of the
// scheduler's firing as PAY-1's claim window ends with PAY-2 waiting for
// backend, starts it again, and counts: the turn passed once (one
// pass_turn entry, one "your turn passed" DM, one "you're next" for PAY-2),
// whether the kill came before the firing committed (the restart fires it)
// or after (the outbox delivers it, and it is not fired again). The window
// is 5s so that PAY-2's own window does not end before the bot is stopped.
func TestCrashAroundTurnPass(t *testing.T) {
	t.Parallel()
	for _, fp := range []string{failpoint.BeforeDueCommit, failpoint.AfterDueCommitBeforeOutboxSend} {
		t.Run(fp, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, worldOptions{extra: "queue: {claim_window: 5s}\n"})
			p := w.start(fp)
			// Both made ready while backend is frozen, so that neither has
			// a turn until the unlock gives PAY-1 its own: the window then
			// ends with PAY-2 waiting, whatever the machine's speed.
			w.send(admin, "lock backend")
			w.waitReply(admin, "Froze backend")
			for _, tk := range []string{"PAY-1", "PAY-2"} {
				w.send(requester, "dobro "+tk)
				w.waitReply(requester, tk+"> is in the queue")
				w.send(approver, "accept "+tk)
				w.waitReply(approver, "You accepted "+tk+".")
				w.send(admin, "here "+tk)
				w.waitReply(admin, "You claimed "+tk+".")
			}
			w.send(admin, "unlock backend")
			w.waitReply(admin, "Unfroze backend")
			p.waitCrash(fp)
			p = w.start("")
			dms := func() []fakeslack.Message { return w.slack.Messages(fakeslack.DMChannel(requester)) }
			w.waitMessage(dms, "Your turn for", "the turn passed")
			p.stop()
			count := func(s string) int {
				n := 0
				for _, m := range dms() {
					if strings.Contains(m.Text, s) {
						n++
					}
				}
				return n
			}
			// You're next twice: PAY-1 at the unlock, PAY-2 at the pass.
			if passed, next := count("Your turn for"), count("You're next"); passed != 1 || next != 2 {
				t.Errorf("the requester got %d turn-passed and %d you're-next DMs, want 1 and 2: %+v", passed, next, dms())
			}
			for tk, want := range map[string]int{"PAY-1": 1, "PAY-2": 0} {
				n := 0
				for _, e := range w.audit(tk) {
					if e.Action == commands.ActionPassTurn {
						n++
					}
				}
				if n != want {
					t.Errorf("%d pass_turn entries on %s, want %d", n, tk, want)
				}
			}
		})
	}
}
