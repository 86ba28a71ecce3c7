package commands_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestApproverSeesChosenComponents (issue 12, item 5): the approver's DM and
// the card show the release's components and no_need_admin, and flag
// components the requester chose that differ from the ticket's, so that an
// approver approves what will actually be locked.
func TestApproverSeesChosenComponents(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		ticket     commands.Ticket
		want       []string // in the DM and the card
		wantNot    []string // in neither
		ticketSays []string // Release.TicketComponents
	}{
		{
			name: "requester chose another component", text: "dobro PAY-2 on ios no_need_admin",
			ticket: readyTicket("PAY-2", "backend"),
			want:   []string{"ios", "no admin needed", "requester chose ios; the ticket says backend"}, ticketSays: []string{"backend"},
		},
		{
			name: "ticket names none", text: "dobro PAY-2 on ios",
			ticket: readyTicket("PAY-2"),
			want:   []string{"ios", "needs an admin", "requester chose ios; the ticket names no component"},
		},
		{
			name: "requester chose a subset", text: "dobro PAY-2 on backend",
			ticket: readyTicket("PAY-2", "Backend", "Payments"),
			want:   []string{"backend", "needs an admin", "requester chose backend; the ticket says backend, payments"}, ticketSays: []string{"backend", "payments"},
		},
		{
			name: "requester chose the ticket's", text: "dobro PAY-2 on payments,backend no_need_admin",
			ticket: readyTicket("PAY-2", "Backend", "Payments"),
			want:   []string{"backend", "payments", "no admin needed"}, wantNot: []string{"requester chose"}, ticketSays: []string{"backend", "payments"},
		},
		{
			name: "the ticket's components", text: "dobro PAY-2",
			ticket: readyTicket("PAY-2", "Backend", "Web"),
			want:   []string{"backend, web (not locked)", "needs an admin"}, wantNot: []string{"requester chose"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.tracker.tickets["PAY-2"] = tc.ticket
			effects := h.say(ann, tc.text)
			dms := dmsTo(effects, approver)
			if len(dms) != 1 {
				t.Fatalf("DMs to the approver: %+v (reply %q)", dms, reply(effects))
			}
			i := slices.IndexFunc(effects, func(e commands.Effect) bool { return e.Kind == commands.EffectCard })
			if i < 0 {
				t.Fatalf("no card among %+v", effects)
			}
			card := render(commands.CardText(*effects[i].Release, h.now))
			for what, text := range map[string]string{"approver's DM": render(dms[0].Text), "card": card} {
				for _, w := range tc.want {
					if !strings.Contains(text, w) {
						t.Errorf("%s %q does not say %q", what, text, w)
					}
				}
				for _, w := range tc.wantNot {
					if strings.Contains(text, w) {
						t.Errorf("%s %q says %q", what, text, w)
					}
				}
			}
			if diff := cmp.Diff(tc.ticketSays, h.release("PAY-2").TicketComponents); diff != "" {
				t.Errorf("TicketComponents (-want +got):\n%s", diff)
			}
		})
	}
}
