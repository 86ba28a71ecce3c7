package main

import (
	"context"
	"testing"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/tracker"
)

// noSearch is a tracker that cannot search.
type noSearch struct{}

func (noSearch) Ticket(context.Context, string) (commands.Ticket, error) {
	return commands.Ticket{}, nil
}

// The form's ticket select searches the configured tracker within the
// rules: the file tracker of the demo finds its ready tickets; a tracker
// that cannot search leaves the select to typed keys.
func TestModalWiring(t *testing.T) {
	static, err := tracker.NewStatic([]commands.Ticket{
		{Key: "PAY-1", Summary: "Faster checkout", Status: "Ready"},
		{Key: "PAY-2", Summary: "Slower checkout", Status: "In Progress"},
		{Key: "OPS-1", Summary: "Checkout disks", Status: "Ready"},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	policy := commands.Policy{Components: []string{"backend"}, Rules: commands.Rules{Projects: []string{"PAY"}, ReadyStatuses: []string{"Ready"}}}
	m := modal(commands.Config{Tracker: static, Policy: policy})
	if m.Tickets == nil || len(m.Policy.Components) != 1 {
		t.Fatalf("modal = %+v, want a searcher and the policy", m)
	}
	got, err := m.Tickets.SearchTickets(t.Context(), "checkout", 20)
	if err != nil || len(got) != 1 || got[0].Key != "PAY-1" {
		t.Errorf("SearchTickets(checkout) = %+v, %v; want PAY-1 alone (ready, allowed project)", got, err)
	}
	if m := modal(commands.Config{Tracker: noSearch{}, Policy: policy}); m.Tickets != nil {
		t.Errorf("a tracker that cannot search got a searcher: %+v", m.Tickets)
	}
}
