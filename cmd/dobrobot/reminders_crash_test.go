package main

import (
	"strings"
	"testing"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/failpoint"
)

// TestCrashAroundReminder kills the bot (kill -9) at each failpoint of the
// scheduler's firing of an approval reminder, starts it again, and counts
// the reminders the approver got: exactly one, whether the kill came before
// the firing committed (the restart fires it, once) or after it (the
// outbox delivers it, and it is not fired again).
func TestCrashAroundReminder(t *testing.T) {
	t.Parallel()
	for _, fp := range []string{failpoint.BeforeDueCommit, failpoint.AfterDueCommitBeforeOutboxSend} {
		t.Run(fp, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, worldOptions{extra: "reminders: {approval: 1s, repeat: 1h}\n"})
			p := w.start(fp)
			w.send(requester, "dobro PAY-1")
			p.waitCrash(fp)
			p = w.start("")
			dms := func() []fakeslack.Message { return w.slack.Messages(fakeslack.DMChannel(approver)) }
			w.waitMessage(dms, "Reminder:", "a reminder to the approver")
			// A clean stop returns once the outbox's sender is done: a
			// second reminder in the outbox would have been sent by then.
			p.stop()
			n := 0
			for _, m := range dms() {
				if strings.Contains(m.Text, "Reminder:") {
					n++
				}
			}
			if n != 1 {
				t.Errorf("the approver got %d reminders, want 1: %+v", n, dms())
			}
			reminds := 0
			for _, e := range w.audit("PAY-1") {
				if e.Action == commands.ActionRemind {
					reminds++
				}
			}
			if reminds != 1 {
				t.Errorf("%d remind entries in the audit log, want 1", reminds)
			}
		})
	}
}
