package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/bolttest"
	"github.com/dobrobot/dobrobot/tracker"
)

// TestPipelineOnBothStores runs the seed's pipeline (issue 14) through the
// Service on bbolt and on PostgreSQL, and requires the same answers, the
// same audit log, the same "what is where" and a replay that matches the
// stored state: dobro to qa with no approval, done there, production
// requested by itself, two approvals, the owner's start refused while the
// bake lasts, then done; a freeze in qa only; a ticket open in both
// environments refused without in.
func TestPipelineOnBothStores(t *testing.T) {
	dsn := testDSN(t)
	type outcome struct {
		Replies  []string
		Audit    []string
		Deployed []commands.Deployed
	}
	runOn := func(t *testing.T, store commands.Store) outcome {
		ctx := context.Background()
		tr, err := tracker.NewStatic([]commands.Ticket{
			{Key: "PAY-1", Summary: "Checkout", Status: "Ready", Components: []string{"backend"}},
			{Key: "PAY-2", Summary: "Refunds", Status: "Ready", Components: []string{"backend"}},
		}, "")
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
		comps := []string{"backend"}
		svc := commands.NewService(commands.Config{
			Store: store, Tracker: tr, Log: zerolog.Nop(), Now: func() time.Time { return now },
			Policy: commands.Policy{Approvers: []string{"U0APP1", "U0APP2"}, Admins: []string{"U0ADM"}, Components: comps,
				Envs: []commands.EnvPolicy{
					{Name: "qa", Approvers: []string{"U0APP1"}, Admins: []string{"U0ADM"}, Components: comps, Approval: false, Approvals: 1},
					{Name: "production", Approvers: []string{"U0APP1", "U0APP2"}, Admins: []string{"U0ADM"}, Deployers: []string{"U0OWNER"},
						Components: comps, Approval: true, Approvals: 2, After: "qa", Bake: 30 * time.Minute, RequestAuto: true},
				}},
		})
		var out outcome
		n := 0
		say := func(user, text string) {
			n++
			m := commands.Message{EventID: fmt.Sprintf("ev-%d", n), User: user, Channel: "C0REL", Text: text, Via: commands.ViaMention, Time: now}
			if _, err := svc.Receive(ctx, m); err != nil {
				t.Fatalf("Receive(%q): %v", text, err)
			}
			if err := svc.Handle(ctx, m); err != nil {
				t.Fatalf("Handle(%q): %v", text, err)
			}
			svc.Wait()
			effects, err := store.Pending(ctx, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range effects {
				if e.Kind == commands.EffectReply {
					out.Replies = append(out.Replies, text+" → "+e.Text.String())
				}
				if err := store.Delivered(ctx, e.ID); err != nil {
					t.Fatal(err)
				}
			}
			now = now.Add(time.Minute)
		}
		say("U0ANN", "dobro PAY-1 to qa version 2.4.0")
		say("U0ANN", "dep start PAY-1")
		say("U0ANN", "dep finish PAY-1")
		say("U0APP1", "accept PAY-1")
		say("U0APP2", "accept PAY-1 in production")
		say("U0ADM", "here PAY-1")
		say("U0OWNER", "dep start PAY-1")
		say("U0ANN", "dobro PAY-2 to qa")
		say("U0ANN", "dobro PAY-2")
		say("U0ANN", "cancel PAY-2")
		say("U0ANN", "cancel PAY-2 in production")
		say("U0ADM", "lock backend in qa")
		say("U0ANN", "dep start PAY-2")
		say("U0ADM", "unlock backend in qa")
		now = now.Add(30 * time.Minute)
		say("U0OWNER", "dep start PAY-1")
		say("U0ANN", "dep start PAY-2")
		say("U0OWNER", "dep finish PAY-1")
		say("U0ANN", "dep finish PAY-2 in qa")
		say("U0ANN", "where")

		p := commands.NewProjection()
		if err := store.Audit(ctx, commands.AuditFilter{}, func(e commands.AuditEntry) error {
			out.Audit = append(out.Audit, strings.Join([]string{e.Actor, string(e.Action), e.Ticket, e.Env, e.Version, string(e.From), string(e.To)}, " "))
			return p.Add(e)
		}); err != nil {
			t.Fatalf("replay: %v", err)
		}
		err = store.View(ctx, func(tx commands.Tx) error {
			open, err := tx.Open()
			if err != nil {
				return err
			}
			locks, err := tx.Locks()
			if err != nil {
				return err
			}
			if err := p.Compare(open, locks); err != nil {
				return err
			}
			out.Deployed, err = tx.Deployed()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	bolt := runOn(t, bolttest.Open(t))
	pg := runOn(t, openStore(t, dsn, Options{Schema: newSchema(t, dsn)}))
	if diff := cmp.Diff(bolt, pg); diff != "" {
		t.Errorf("bbolt and PostgreSQL differ (-bbolt +postgres):\n%s", diff)
	}
	for _, want := range []string{
		"dep start PAY-1 → PAY-1 v2.4.0 was done in qa 4 min ago: bake until 09:32 UTC.",
		"cancel PAY-2 → PAY-2 is open in qa and production: say which, e.g. cancel PAY-2 in production.",
		"dep start PAY-2 → Backend is frozen in qa by",
		"where → What runs where:\nqa:\n• backend: PAY-2, done by @U0ANN 1 min ago\nproduction:\n• backend: v2.4.0 (PAY-1), done by @U0OWNER 2 min ago",
	} {
		if !strings.Contains(strings.Join(bolt.Replies, "\n"), want) {
			t.Errorf("the replies lack %q:\n%s", want, strings.Join(bolt.Replies, "\n"))
		}
	}
	if len(bolt.Deployed) != 2 {
		t.Errorf("deployed: %+v; want backend in qa (PAY-2) and in production (PAY-1)", bolt.Deployed)
	}
}
