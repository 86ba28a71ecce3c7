package tracker

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSearchJQLEscaping checks that whatever a person types becomes quoted
// literals of the query and never its structure, and that configured
// values are quoted too.
func TestSearchJQLEscaping(t *testing.T) {
	scope := Scope{Projects: []string{"PAY", "WEB"}, Statuses: []string{"Ready for Release"}}
	const base = `project in ("PAY", "WEB") AND status in ("Ready for Release")`
	tests := []struct {
		name  string
		scope Scope
		text  string
		want  string
	}{
		{"nothing typed", scope, "", base + " ORDER BY updated DESC"},
		{"a key", scope, " pay-12 ", base + ` AND (key = "PAY-12" OR summary ~ "pay 12*") ORDER BY updated DESC`},
		{"words", scope, "faster check", base + ` AND summary ~ "faster check*" ORDER BY updated DESC`},
		{"a quote that would close the literal", scope, `x" OR project = SECRET OR summary ~ "y`,
			base + ` AND summary ~ "x OR project SECRET OR summary y*" ORDER BY updated DESC`},
		{"backslashes and Lucene operators", scope, `a\" \\ (b) || c:d^2 ~e* ?f [g] {h}`,
			base + ` AND summary ~ "a b c d 2 e f g*" ORDER BY updated DESC`},
		{"JQL keywords alone", scope, "ORDER BY key", base + ` AND summary ~ "ORDER BY key*" ORDER BY updated DESC`},
		{"only punctuation", scope, `"\" ) ( , = ~ *`, base + " ORDER BY updated DESC"},
		{"control characters and newlines", scope, "a\n\"b\x00c", base + ` AND summary ~ "a b c*" ORDER BY updated DESC`},
		{"many words are cut at 8", scope, "1 2 3 4 5 6 7 8 9 10", base + ` AND summary ~ "1 2 3 4 5 6 7 8*" ORDER BY updated DESC`},
		{"configured values with quotes and backslashes", Scope{Projects: []string{`P"Q`}, Statuses: []string{`Ready\`, "Go\nLive"}}, "",
			`project in ("P\"Q") AND status in ("Ready\\", "GoLive") ORDER BY updated DESC`},
		{"no scope", Scope{}, "PAY-1", `(key = "PAY-1" OR summary ~ "PAY 1*") ORDER BY updated DESC`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := searchJQL(tt.scope, tt.text)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("searchJQL(%q) (-want +got):\n%s", tt.text, diff)
			}
		})
	}
}

func TestJQLString(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, `"plain"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{`\"`, `"\\\""`},
		{"tab\there", `"tabhere"`},
		{"ünï", `"ünï"`},
	}
	for _, tt := range tests {
		if got := jqlString(tt.in); got != tt.want {
			t.Errorf("jqlString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
