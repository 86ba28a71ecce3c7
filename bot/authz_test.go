package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// The authorisation matrix (docs/reliability.md, T44, T45, T48): every command,
// by every kind of actor, through each path into the bot (a mention in the
// release channel, a DM, a click on a button, a slash command, and for dobro
// the /dobro form's submission), against the real Slack
// adapter, Service and bbolt. One table says what is allowed; the bot must
// agree on every cell.

// authzActor is one kind of actor of the matrix.
type authzActor struct {
	name string
	user string
	// ignored: the bot must not even record the event (bots, the bot
	// itself, users of another workspace).
	ignored bool
}

var authzActors = []authzActor{
	{"requester", ann, false},
	{"approver", bob, false},
	{"admin", adm, false},
	{"other user", mallory, false},
	{"bot", fakeslack.BotUser, true},
	{"unknown", "U0STRANGER", true},
}

// authzAllowed is the expected table: for each command, whether the
// requester (of the release, and the only one in roles.requesters), the
// approver, the admin and any other user may run it. Bots and unknown users
// are ignored whatever they send.
var authzAllowed = map[string][4]bool{
	"dobro":      {true, false, false, false},
	"queue":      {true, true, true, true},
	"accept":     {false, true, false, false},
	"reject":     {false, true, false, false},
	"here":       {false, false, true, false},
	"dep start":  {true, false, true, false},
	"dep finish": {true, false, true, false},
	"cancel":     {true, false, true, false},
	"lock":       {false, false, true, false},
	"unlock":     {false, false, true, false},
	"status":     {true, true, true, true},
	"history":    {true, true, true, true},
	"log":        {true, true, true, true},
	"help":       {true, true, true, true},
	"home":       {true, true, true, true},
	"audit":      {false, false, true, false}, // and only by DM (authzDMOnly)
	"report":     {true, true, true, true},
}

// authzDMOnly are the verbs allowed only in a DM with the bot: by any other
// path nobody may use them.
var authzDMOnly = map[string]bool{"audit": true}

// authzDenials are how the one authorisation check words a refusal; a
// refusal for any other reason would make an allowed cell look denied.
var authzDenials = []string{"not allowed to request", "Only members of the release channel can request", "Only approvers",
	"cannot approve it yourself", "Only admins", "Only the requester"}

// authzOpenDobro is the dobro row when roles.requesters is empty (issue 12,
// item 10): the requesters are the release channel's members, where the
// requester, the approver and the admin are and the other user is not. A
// mention comes from the channel, so anyone there may request; by DM or
// button only a member may.
var authzOpenDobro = map[string][4]bool{
	"mention": {true, true, true, true},
	"DM":      {true, true, true, false},
	"button":  {true, true, true, false},
	"slash":   {true, true, true, false}, // typed anywhere: no proof of membership
	// A button of the App Home: no channel, no message, the clicker's
	// command as any button's.
	"home button": {true, true, true, false},
	"modal":       {true, true, true, false}, // the form of a slash command: the same
}

// authzPaths are the ways into the bot. The form (modal) submits only
// dobro: its other cells are skipped.
var authzPaths = []string{"mention", "DM", "button", "slash", "home button", "modal"}

func TestAuthorisationMatrix(t *testing.T) {
	verbs := make([]string, 0, len(authzAllowed))
	for v := range authzAllowed {
		verbs = append(verbs, v)
	}
	slices.Sort(verbs)
	for _, open := range []bool{false, true} {
		for _, path := range authzPaths {
			name := path
			if open {
				name += ", no requesters configured"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				runAuthzPath(t, path, verbs, open)
			})
		}
	}
	// Parallel subtests end before the cleanups of their parent run.
	t.Cleanup(func() {
		if !t.Failed() {
			t.Logf("FIGURE authorisation matrix: 2 role set-ups × (%d paths × %d commands + the form's dobro) × %d actors = %d cells, all as expected",
				len(authzPaths)-1, len(verbs), len(authzActors), 2*((len(authzPaths)-1)*len(verbs)+1)*len(authzActors))
		}
	})
}

func runAuthzPath(t *testing.T, path string, verbs []string, open bool) {
	fs := fakeslack.New(t)
	fs.SetChannelMembers(releaseChannel, ann, bob, adm)
	// Each cell gets its own ticket (PAY-n) or component (c-n), prepared in
	// the state its command needs.
	type cell struct {
		verb   string
		actor  authzActor
		ticket string
		comp   string
	}
	var cells []cell
	var comps []string
	n := 0
	for _, v := range verbs {
		for _, a := range authzActors {
			n++
			c := cell{verb: v, actor: a, ticket: fmt.Sprintf("PAY-%d", n)}
			if v == "lock" || v == "unlock" {
				c.comp = fmt.Sprintf("c-%d", n)
				comps = append(comps, c.comp)
			}
			cells = append(cells, c)
		}
	}
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{}, func(b *Slack, c *commands.Config) {
		b.Export = lineExporter(c.Store.(*storage.DB))
		c.Policy = commands.Policy{Requesters: []string{ann}, Approvers: []string{bob}, Admins: []string{adm},
			Components: comps, Channel: releaseChannel}
		if open {
			c.Policy.Requesters = nil
		}
		if path == "modal" {
			b.Modal = &Modal{Policy: c.Policy}
		}
	})
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Hour)
	err := h.db.Update(ctx, func(tx commands.Tx) error {
		for _, c := range cells {
			rel := commands.Release{Ticket: c.ticket, Requester: ann, NeedAdmin: true, Components: []string{"web"}, Created: t0, Updated: t0}
			switch c.verb {
			case "dobro", "queue", "history", "help", "lock", "audit", "report", "home":
				continue
			case "unlock":
				if err := tx.PutLock(commands.Lock{Component: c.comp, By: adm, Since: t0}); err != nil {
					return err
				}
				continue
			case "here":
				rel.State, rel.Approver = commands.StateAccepted, bob
			case "dep start":
				rel.State, rel.Approver, rel.NeedAdmin = commands.StateAccepted, bob, false
			case "dep finish":
				rel.State, rel.Approver, rel.NeedAdmin, rel.Started = commands.StateDeploying, bob, false, t0
			default:
				rel.State = commands.StateRequested
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
		return len(fs.Ephemerals(user)) + len(fs.Messages(fakeslack.DMChannel(user))) + len(fs.Uploads(fakeslack.DMChannel(user)))
	}
	head := func() uint64 {
		var seq uint64
		_ = h.db.View(ctx, func(tx commands.Tx) error {
			var err error
			seq, _, err = tx.AuditHead()
			return err
		})
		return seq
	}
	recorded := func(id string) (seen, processed bool) {
		_ = h.db.View(ctx, func(tx commands.Tx) error {
			ev, ok, err := tx.Event(id)
			seen, processed = ok, ev.Processed
			return err
		})
		return seen, processed
	}

	for i, c := range cells {
		if path == "modal" && c.verb != "dobro" {
			continue
		}
		text := c.verb
		switch {
		case c.comp != "":
			text += " " + c.comp
		case c.verb != "queue" && c.verb != "history" && c.verb != "help" && c.verb != "audit" && c.verb != "report" && c.verb != "home":
			text += " " + c.ticket
		}
		before, seq0 := replies(c.actor.user), head()
		uploads := len(fs.Uploads(""))
		var env fakeslack.Envelope
		var eventID string
		switch path {
		case "mention", "DM":
			e := fakeslack.Mention(c.actor.user, releaseChannel, text)
			if path == "DM" {
				e = fakeslack.DM(c.actor.user, text)
			}
			e.ID = fmt.Sprintf("EvCELL%d", i)
			switch c.actor.name {
			case "bot":
				e.BotID = fakeslack.BotID
			case "unknown":
				e.UserTeam = "T0OTHER"
			}
			env, eventID = fs.EventEnvelope(e), e.ID
		case "button":
			click := fakeslack.Click{User: c.actor.user, Channel: fakeslack.DMChannel(c.actor.user), MessageTS: "1700000000.000100",
				ActionID: buttonPrefix + "0", BlockID: "b", Value: text, TriggerID: fmt.Sprintf("%d.1.cell", 1000+i)}
			if c.actor.name == "unknown" {
				click.Team = "T0OTHER"
			}
			env, eventID = fs.ClickEnvelope(click), "button:"+click.TriggerID
		case "slash":
			// /dobro TEXT typed in the release channel.
			sl := fakeslack.Slash{User: c.actor.user, Channel: releaseChannel, Text: text, TriggerID: fmt.Sprintf("%d.1.slash", 1000+i)}
			if c.actor.name == "unknown" {
				sl.Team = "T0OTHER"
			}
			env, eventID = fs.SlashEnvelope(sl), "slash:"+sl.TriggerID
		case "home button":
			env = fs.HomeClickEnvelope(c.actor.user, fakeslack.Button{BlockID: "dobrobot.home.0", ActionID: buttonPrefix + "home.0", Label: "Do", Value: text})
			env, eventID = homeClickOf(t, env, c.actor.name == "unknown")
		case "modal":
			// The form, opened by /dobro in the release channel (for the
			// ignored actors, by the requester: Slack would not open one
			// for them) and submitted by the actor.
			opener := c.actor.user
			if c.actor.ignored {
				opener = ann
			}
			v := openForm(t, fs, opener, releaseChannel)
			sub := fakeslack.Submission{User: c.actor.user, ViewID: v.ID, Values: form{ticket: c.ticket}.values()}
			if c.actor.name == "unknown" {
				sub.Team = "T0OTHER"
			}
			env, eventID = fs.ViewSubmissionEnvelope(sub), "modal:"+v.ID
		}
		do(t, fs, env)

		name := fmt.Sprintf("%s by %s via %s", text, c.actor.name, path)
		if c.actor.ignored {
			// The decision precedes the ack: an event the bot takes is in
			// the inbox by now.
			if seen, _ := recorded(eventID); seen {
				t.Errorf("%s: the event was taken as a command; want it ignored", name)
			}
			continue
		}
		eventually(t, name+" handled and answered", func() bool {
			_, processed := recorded(eventID)
			p, err := h.db.Pending(ctx, 1)
			return processed && err == nil && len(p) == 0
		})
		var entries []commands.AuditEntry
		err := h.db.Audit(ctx, commands.AuditFilter{}, func(e commands.AuditEntry) error {
			if e.Seq > seq0 {
				entries = append(entries, e)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		col := slices.IndexFunc(authzActors, func(a authzActor) bool { return a.name == c.actor.name })
		want := authzAllowed[c.verb][col]
		if open && c.verb == "dobro" {
			want = authzOpenDobro[path][col]
		}
		if authzDMOnly[c.verb] && path != "DM" {
			want = false
		}
		changes := commands.Command{Verb: commands.Verb(c.verb)}.Changes()
		var got bool
		var why string
		switch {
		case authzDMOnly[c.verb]:
			// Refused or not, it is answered: what it was allowed to do is
			// the file.
			got = len(fs.Uploads("")) > uploads
			why = fmt.Sprintf("%d uploads", len(fs.Uploads(""))-uploads)
		case !changes:
			got = replies(c.actor.user) > before
			why = fmt.Sprintf("%d replies", replies(c.actor.user)-before)
		case len(entries) == 0:
			t.Errorf("%s: no audit entry; a state-changing command is audited whether allowed or refused", name)
			continue
		default:
			e := entries[0]
			if e.Actor != c.actor.user {
				t.Errorf("%s: audited as %s", name, e.Actor)
			}
			got = e.Action != commands.ActionRefused
			why = string(e.Action) + ": " + e.Detail
			if !got && !slices.ContainsFunc(authzDenials, func(d string) bool { return strings.Contains(e.Detail, d) }) {
				t.Errorf("%s: refused for another reason than authorisation: %s", name, e.Detail)
			}
		}
		if got != want {
			t.Errorf("%s: allowed = %v, want %v (%s)", name, got, want, why)
		}
		if replies(c.actor.user) <= before {
			t.Errorf("%s: no answer to the actor", name)
		}
	}
}

// homeClickOf returns a click from the App Home as a user of another
// workspace would send it when other is set, and its inbox event ID.
func homeClickOf(t *testing.T, env fakeslack.Envelope, other bool) (fakeslack.Envelope, string) {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(env.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if other {
		p["team"].(map[string]any)["id"] = "T0OTHER"
		p["user"].(map[string]any)["team_id"] = "T0OTHER"
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		env.Payload = b
	}
	return env, "button:" + p["trigger_id"].(string)
}
