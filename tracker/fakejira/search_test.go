package fakejira_test

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"

	jira "github.com/andygrunwald/go-jira"
	"github.com/dobrobot/dobrobot/tracker/fakejira"
	"github.com/google/go-cmp/cmp"
)

// The fake answers go-jira's own Search with the issues the JQL selects,
// and a query it cannot parse (an unclosed literal: what bad escaping
// produces) with 400 and Jira's error body.
func TestSearch(t *testing.T) {
	s := fakejira.New(t)
	c, err := jira.NewClient(nil, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		jql  string
		want []string
	}{
		{"", []string{"OPS-3", "PAY-1", "PAY-2", "WEB-7"}},
		{`project in ("PAY", "WEB") AND status in ("Ready for Release") ORDER BY updated DESC`, []string{"PAY-1", "WEB-7"}},
		{`project = PAY AND (key = "PAY-2" OR summary ~ "fast*")`, []string{"PAY-1", "PAY-2"}},
		{`summary ~ "landing page"`, []string{"WEB-7"}},
		{`summary ~ "land"`, nil}, // a whole word, without *
		{`status = "Ready for \"Release\""`, nil},
	}
	for _, tt := range tests {
		issues, _, err := c.Issue.SearchWithContext(context.Background(), tt.jql, &jira.SearchOptions{MaxResults: 20, Fields: []string{"summary", "status"}})
		if err != nil {
			t.Errorf("Search(%s): %v", tt.jql, err)
			continue
		}
		var got []string
		for _, is := range issues {
			got = append(got, is.Key)
			if is.Fields == nil || is.Fields.Summary == "" || is.Fields.Status == nil {
				t.Errorf("Search(%s): %s without the fields asked for", tt.jql, is.Key)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Search(%s) (-want +got):\n%s", tt.jql, diff)
		}
	}
	for _, bad := range []string{`summary ~ "abc`, `summary ~ "a\" OR project = OPS`, `labels = x`, `project in "PAY"`, `project = PAY extra`} {
		a := get(t, s.URL+"/rest/api/2/search?"+url.Values{"jql": {bad}}.Encode())
		var body struct {
			ErrorMessages []string `json:"errorMessages"`
		}
		if a.status != 400 || json.Unmarshal(a.body, &body) != nil || len(body.ErrorMessages) != 1 {
			t.Errorf("jql %s: %d %s, want 400 with an error message", bad, a.status, a.body)
		}
	}
	a := get(t, s.URL+"/rest/api/2/search?"+url.Values{"jql": {"project = PAY"}, "maxResults": {"1"}}.Encode())
	var page struct {
		Total      int               `json:"total"`
		MaxResults int               `json:"maxResults"`
		Issues     []json.RawMessage `json:"issues"`
	}
	if err := json.Unmarshal(a.body, &page); err != nil || page.Total != 2 || page.MaxResults != 1 || len(page.Issues) != 1 {
		t.Errorf("maxResults=1: %s", a.body)
	}
}
