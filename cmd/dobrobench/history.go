package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// History actors and times: the generated history is two years of releases.
const (
	approver  = "U0APPROVER"
	admin     = "U0ADMIN"
	channel   = "C0RELEASE"
	component = "backend"
)

var historyStart = time.Date(2023, 1, 2, 9, 0, 0, 0, time.UTC)

// actionsPerRelease is the audit trail of one finished release in the
// generated history: ten entries, as a release with a refusal, a claim and a
// lock along the way leaves.
var actionsPerRelease = []struct {
	action   commands.Action
	from, to commands.State
	actor    string
	detail   string
}{
	{commands.ActionRequest, commands.StateNone, commands.StateRequested, "req", "components: backend,payments"},
	{commands.ActionRefused, commands.StateNone, commands.StateNone, "req", "accept: You requested it, so you cannot approve it yourself: ask another approver."},
	{commands.ActionAccept, commands.StateRequested, commands.StateAccepted, approver, ""},
	{commands.ActionClaim, commands.StateAccepted, commands.StateClaimed, admin, ""},
	{commands.ActionRefused, commands.StateNone, commands.StateNone, "req", "dep start: backend is locked by an earlier release (dep start 12 min ago by <@U0OTHER>)."},
	{commands.ActionStart, commands.StateClaimed, commands.StateDeploying, "req", "locks: backend; start hook attempt 9f8e7d6c5b4a3921"},
	{commands.ActionStarted, commands.StateDeploying, commands.StateDeploying, "req", "start hook succeeded in 4m12s"},
	{commands.ActionLock, commands.StateNone, commands.StateNone, admin, "payments: frozen for the quarterly audit"},
	{commands.ActionUnlock, commands.StateNone, commands.StateNone, admin, "payments"},
	{commands.ActionFinish, commands.StateDeploying, commands.StateDone, "req", "finish hook succeeded in 38s; locks released: backend"},
}

// generateHistory writes releases finished releases, each with its audit
// trail, until the audit log holds entries entries, straight through
// storage's Tx: one Update per 10,000 entries. It is how a database looks
// after years of use, built in seconds.
func generateHistory(ctx context.Context, db *storage.DB, releases, entries int) error {
	const perTx = 10_000
	written, rel := 0, 0
	for written < entries {
		err := db.Update(ctx, func(tx commands.Tx) error {
			for n := 0; n < perTx && written < entries; {
				rel++
				requester := fmt.Sprintf("U%08d", rel%5000)
				ticket := fmt.Sprintf("PAY-%d", rel)
				at := historyStart.Add(time.Duration(rel) * 10 * time.Minute)
				if rel <= releases {
					_, err := tx.PutRelease(commands.Release{
						Ticket: ticket, Summary: "Faster checkout for returning customers", URL: "https://jira.example.com/browse/" + ticket,
						Note: "see the release notes", State: commands.StateDone, NeedAdmin: true, Requester: requester,
						Approver: approver, Admin: admin, Components: []string{component, "payments"}, Locks: []string{component},
						Created: at, Updated: at.Add(2 * time.Hour), Started: at.Add(time.Hour),
						LastHook: &commands.HookResult{Phase: commands.PhaseFinish, Attempt: "0123456789abcdef", OK: true, Duration: 38 * time.Second, Ended: at.Add(2 * time.Hour)},
						Card:     fmt.Sprintf("%d.000100", at.Unix()),
					})
					if err != nil {
						return err
					}
				}
				for i, a := range actionsPerRelease {
					if n == perTx || written == entries {
						break
					}
					actor := a.actor
					if actor == "req" {
						actor = requester
					}
					// A freeze names no ticket, as the bot writes it, so
					// that the history replays (commands.Projection).
					tk := ticket
					if a.action == commands.ActionLock || a.action == commands.ActionUnlock {
						tk = ""
					}
					if _, err := tx.AppendAudit(commands.AuditEntry{
						Time: at.Add(time.Duration(i) * 7 * time.Minute), Actor: actor, Action: a.action, Ticket: tk,
						From: a.from, To: a.to, Detail: a.detail,
					}); err != nil {
						return err
					}
					n++
					written++
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("generate history: %w", err)
		}
	}
	return nil
}

// seedOpen adds n open releases (requested, no admin needed) to db, the
// queue that every scenario runs against, and returns their tickets.
func seedOpen(ctx context.Context, db *storage.DB, n int, prefix string) ([]string, error) {
	var tickets []string
	now := time.Now().UTC()
	err := db.Update(ctx, func(tx commands.Tx) error {
		for i := 1; i <= n; i++ {
			ticket := fmt.Sprintf("%s-%d", prefix, i)
			r, err := tx.PutRelease(commands.Release{
				Ticket: ticket, Summary: "Queued release " + strings.ToLower(ticket), URL: "https://jira.example.com/browse/" + ticket,
				State: commands.StateRequested, Requester: fmt.Sprintf("U0Q%06d", i), Components: []string{component},
				Locks: []string{component}, Created: now, Updated: now,
			})
			if err != nil {
				return err
			}
			if _, err := tx.AppendAudit(commands.AuditEntry{Time: now, Actor: r.Requester, Action: commands.ActionRequest,
				Ticket: ticket, To: commands.StateRequested, Detail: "components: backend"}); err != nil {
				return err
			}
			tickets = append(tickets, ticket)
		}
		return nil
	})
	return tickets, err
}
