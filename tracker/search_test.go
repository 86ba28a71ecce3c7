package tracker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/tracker"
	"github.com/dobrobot/dobrobot/tracker/fakejira"
	"github.com/google/go-cmp/cmp"
)

func keys(ts []commands.Ticket) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.Key)
	}
	return out
}

var readyScope = tracker.Scope{Projects: []string{"PAY", "WEB"}, Statuses: []string{"Ready for Release"}}

func TestJiraSearch(t *testing.T) {
	s := fakejira.New(t)
	s.AddIssue(fakejira.Issue{Key: "PAY-10", Summary: "Checkout in one click", Status: "Ready for Release"})
	s.AddIssue(fakejira.Issue{Key: "SECRET-1", Summary: "Faster checkout, secretly", Status: "Ready for Release"})
	j := newJira(t, s, nil)
	tests := []struct {
		text string
		want []string
	}{
		{"", []string{"PAY-1", "PAY-10", "WEB-7"}},
		{"pay-1", []string{"PAY-1"}},
		{"checkout", []string{"PAY-1", "PAY-10"}},
		{"check", []string{"PAY-1", "PAY-10"}},
		{"landing", []string{"WEB-7"}},
		{"refund", []string{}}, // PAY-2 is in progress
		{"PAY-999", []string{}},
		{`checkout" OR project = SECRET OR summary ~ "x`, []string{}},
		{`x") OR project in ("SECRET`, []string{}},
		{`\" OR key = SECRET-1 OR \"`, []string{}},
	}
	for _, tt := range tests {
		got, err := j.Search(context.Background(), readyScope, tt.text, 0)
		if err != nil {
			t.Errorf("Search(%q): %v", tt.text, err)
			continue
		}
		if diff := cmp.Diff(tt.want, keys(got)); diff != "" {
			t.Errorf("Search(%q) (-want +got):\n%s", tt.text, diff)
		}
	}
	// The request is go-jira's Search's: GET /rest/api/2/search with jql,
	// maxResults and fields.
	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	if last.Method != "GET" || last.Path != "/rest/api/2/search" || last.Query["maxResults"][0] != "20" ||
		last.Query["validateQuery"][0] != "warn" || len(last.Query["fields"]) != 1 || len(last.Query["jql"]) != 1 {
		t.Errorf("last request = %+v, want GET /rest/api/2/search with jql, fields, maxResults=20, validateQuery=warn", last)
	}
	got, err := j.Search(context.Background(), readyScope, "pay-1", 0)
	if err != nil || len(got) != 1 || got[0].Summary != "Faster checkout" || got[0].Status != "Ready for Release" {
		t.Errorf("Search(pay-1) = %+v, %v; want PAY-1 mapped as a lookup maps it", got, err)
	}
}

func TestJiraSearchLimitAndFailures(t *testing.T) {
	s := fakejira.New(t)
	for i := 100; i < 130; i++ {
		s.AddIssue(fakejira.Issue{Key: fmt.Sprintf("PAY-%d", i), Summary: "bulk", Status: "Ready for Release"})
	}
	j := newJira(t, s, nil)
	got, err := j.Search(context.Background(), readyScope, "bulk", 50)
	if err != nil || len(got) != tracker.MaxSearch {
		t.Errorf("Search(max 50) = %d tickets, %v; want %d", len(got), err, tracker.MaxSearch)
	}

	s.Fail("", fakejira.Failure{Delay: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err = j.Search(ctx, readyScope, "bulk", 0)
	if commands.ErrorCode(err) != commands.EUNAVAILABLE || time.Since(began) > time.Second {
		t.Errorf("slow Jira: Search = %v after %s, want EUNAVAILABLE within the caller's 100ms", err, time.Since(began))
	}
	s.Heal()
	s.Fail("", fakejira.Failure{Status: 401})
	if _, err := j.Search(context.Background(), readyScope, "", 0); commands.ErrorCode(err) != commands.EFORBIDDEN {
		t.Errorf("401: Search = %v, want EFORBIDDEN", err)
	}
}

func TestFileSearch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tickets.yaml")
	const doc = `tickets:
  - {key: PAY-1, summary: Faster checkout, status: Ready for Release}
  - {key: PAY-12, summary: Checkout in one click, status: ready for release}
  - {key: PAY-2, summary: Refunds, status: In Progress}
  - {key: WEB-7, summary: New landing page, status: Ready for Release}
  - {key: OPS-3, summary: Faster disks, status: Ready for Release}
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := tracker.OpenFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	r := tracker.Ready{Tracker: f, Scope: readyScope}
	tests := []struct {
		text string
		max  int
		want []string
	}{
		{"", 0, []string{"PAY-1", "PAY-12", "WEB-7"}},
		{"", 2, []string{"PAY-1", "PAY-12"}},
		{"pay-1", 0, []string{"PAY-1", "PAY-12"}},
		{"CHECKOUT", 0, []string{"PAY-1", "PAY-12"}},
		{"faster", 0, []string{"PAY-1"}}, // OPS is not an allowed project
		{"refunds", 0, []string{}},       // not ready
		{`" OR 1=1`, 0, []string{}},
	}
	for _, tt := range tests {
		got, err := r.SearchTickets(context.Background(), tt.text, tt.max)
		if err != nil {
			t.Fatalf("SearchTickets(%q): %v", tt.text, err)
		}
		if diff := cmp.Diff(tt.want, keys(got)); diff != "" {
			t.Errorf("SearchTickets(%q, %d) (-want +got):\n%s", tt.text, tt.max, diff)
		}
	}
	got, _ := r.SearchTickets(context.Background(), "PAY-1", 1)
	got[0].Summary = "changed"
	again, _ := r.SearchTickets(context.Background(), "PAY-1", 1)
	if again[0].Summary != "Faster checkout" || !slices.Equal(keys(again), []string{"PAY-1"}) {
		t.Errorf("a search result shares the tracker's ticket: %+v", again)
	}
}
