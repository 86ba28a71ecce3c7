package bot

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
)

// The authorisation matrix with environments (issue 14): the same one
// check, but each release's environment has its own roles. qa: ann
// requests, bob approves, adm and qaAdm administer. production: the same
// requester and approver, adm alone administers, and only deployers (dep)
// may dep start and finish.
const (
	qaAdm = "U0QAADM"
	dep   = "U0DEPLOY"
)

var authzEnvActors = []string{ann, bob, adm, qaAdm, dep, mallory}

// authzEnvAllowed: for each command (X: the cell's ticket, C: its
// component), whether ann, bob, adm, qaAdm, dep and mallory may run it.
var authzEnvAllowed = []struct {
	text string
	want [6]bool
}{
	{"dep start X in production", [6]bool{false, false, true, false, true, false}},
	{"dep finish X in production", [6]bool{false, false, true, false, true, false}},
	{"dep start X in qa", [6]bool{true, false, true, true, false, false}},
	{"accept X in production", [6]bool{false, true, false, false, false, false}},
	{"lock C in qa", [6]bool{false, false, true, true, false, false}},
	{"lock C", [6]bool{false, false, true, false, false, false}}, // every environment: an admin of each
	{"promote X", [6]bool{true, false, false, false, false, false}},
	{"where", [6]bool{true, true, true, true, true, true}},
}

func TestAuthorisationMatrixEnvironments(t *testing.T) {
	for _, path := range []string{"mention", "button"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			runAuthzEnvPath(t, path)
		})
	}
	t.Cleanup(func() {
		if !t.Failed() {
			t.Logf("FIGURE authorisation matrix with environments: 2 paths × %d commands × %d actors = %d cells, all as expected",
				len(authzEnvAllowed), len(authzEnvActors), 2*len(authzEnvAllowed)*len(authzEnvActors))
		}
	})
}

func runAuthzEnvPath(t *testing.T, path string) {
	fs := fakeslack.New(t)
	fs.SetChannelMembers(releaseChannel, ann, bob, adm, qaAdm, dep)
	type cell struct {
		text, verb string
		actor      int
		ticket     string
		want       bool
	}
	var cells []cell
	var comps []string
	n := 0
	for _, row := range authzEnvAllowed {
		for a := range authzEnvActors {
			n++
			ticket, comp := fmt.Sprintf("PAY-%d", n), fmt.Sprintf("c-%d", n)
			text := strings.NewReplacer("X", ticket, "C", comp).Replace(row.text)
			if strings.Contains(row.text, "C") {
				comps = append(comps, comp)
			}
			cells = append(cells, cell{text: text, verb: row.text, actor: a, ticket: ticket, want: row.want[a]})
		}
	}
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{}, func(_ *Slack, c *commands.Config) {
		c.Policy = commands.Policy{Requesters: []string{ann}, Approvers: []string{bob}, Admins: []string{adm}, Components: comps, Channel: releaseChannel,
			Envs: []commands.EnvPolicy{
				{Name: "qa", Requesters: []string{ann}, Approvers: []string{bob}, Admins: []string{adm, qaAdm}, Components: comps, Approval: true, Approvals: 1},
				{Name: "production", Requesters: []string{ann}, Approvers: []string{bob}, Admins: []string{adm}, Deployers: []string{dep}, Components: comps, Approval: true, Approvals: 1},
			}}
	})
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Hour)
	err := h.db.Update(ctx, func(tx commands.Tx) error {
		for _, c := range cells {
			rel := commands.Release{Ticket: c.ticket, Env: "production", Requester: ann, Components: []string{"web"}, Created: t0, Updated: t0}
			switch c.verb {
			case "dep start X in production":
				rel.State, rel.Approver = commands.StateAccepted, bob
			case "dep finish X in production":
				rel.State, rel.Approver, rel.Started = commands.StateDeploying, bob, t0
			case "dep start X in qa":
				rel.Env, rel.State, rel.Approver = "qa", commands.StateAccepted, bob
			case "accept X in production":
				rel.State = commands.StateRequested
			case "promote X":
				rel.Env, rel.State = "qa", commands.StateDone
			default:
				continue
			}
			if _, err := tx.PutRelease(rel); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	replies := func(user string) int {
		return len(fs.Ephemerals(user)) + len(fs.Messages(fakeslack.DMChannel(user)))
	}
	for i, c := range cells {
		user := authzEnvActors[c.actor]
		before := replies(user)
		var seq0 uint64
		_ = h.db.View(ctx, func(tx commands.Tx) error { seq0, _, err = tx.AuditHead(); return err })
		var env fakeslack.Envelope
		var eventID string
		if path == "mention" {
			e := fakeslack.Mention(user, releaseChannel, c.text)
			e.ID = fmt.Sprintf("EvENV%d", i)
			env, eventID = fs.EventEnvelope(e), e.ID
		} else {
			click := fakeslack.Click{User: user, Channel: fakeslack.DMChannel(user), MessageTS: "1700000000.000100",
				ActionID: buttonPrefix + "0", BlockID: "b", Value: c.text, TriggerID: fmt.Sprintf("%d.1.envcell", 1000+i)}
			env, eventID = fs.ClickEnvelope(click), "button:"+click.TriggerID
		}
		do(t, fs, env)
		name := fmt.Sprintf("%s by %s via %s", c.text, user, path)
		eventually(t, name+" handled and answered", func() bool {
			var processed bool
			_ = h.db.View(ctx, func(tx commands.Tx) error {
				ev, _, err := tx.Event(eventID)
				processed = ev.Processed
				return err
			})
			p, err := h.db.Pending(ctx, 1)
			return processed && err == nil && len(p) == 0
		})
		var entries []commands.AuditEntry
		if err := h.db.Audit(ctx, commands.AuditFilter{}, func(e commands.AuditEntry) error {
			if e.Seq > seq0 {
				entries = append(entries, e)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := c.want
		var got bool
		var why string
		switch {
		case c.verb == "where":
			got, why = replies(user) > before, "a reply"
		case len(entries) == 0:
			t.Errorf("%s: no audit entry", name)
			continue
		default:
			e := entries[0]
			got, why = e.Action != commands.ActionRefused, string(e.Action)+": "+e.Detail
			if !got && !slices.ContainsFunc(append(slices.Clone(authzDenials), "Only the deployers"), func(d string) bool { return strings.Contains(e.Detail, d) }) {
				t.Errorf("%s: refused for another reason than authorisation: %s", name, e.Detail)
			}
		}
		if got != want {
			t.Errorf("%s: allowed = %v, want %v (%s)", name, got, want, why)
		}
	}
}
