package tracker

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/dobrobot/dobrobot/commands"
)

// MaxSearch is the most tickets a search returns: enough for a select's
// list as a person types, few enough that Jira answers quickly.
const MaxSearch = 20

// Scope limits a search to the tickets dobro would accept: those of
// Projects (any project when empty) in one of Statuses (any status when
// empty), as the policy's rules.projects and rules.ready_statuses say.
type Scope struct {
	Projects []string
	Statuses []string
}

// Searcher is a tracker that can search its tickets within a scope.
type Searcher interface {
	Search(ctx context.Context, scope Scope, text string, max int) ([]commands.Ticket, error)
}

// Ready is a Searcher bound to the scope of the policy: what the Slack
// modal's ticket select asks (bot.TicketSearcher).
type Ready struct {
	Tracker Searcher
	Scope   Scope
}

// SearchTickets returns up to max (at most MaxSearch) tickets in r's scope
// whose key or summary matches text.
func (r Ready) SearchTickets(ctx context.Context, text string, max int) ([]commands.Ticket, error) {
	return r.Tracker.Search(ctx, r.Scope, text, max)
}

// searchMax bounds a caller's max to 1..MaxSearch.
func searchMax(max int) int {
	if max <= 0 || max > MaxSearch {
		return MaxSearch
	}
	return max
}

// searchWords splits what a person typed into the words a summary search
// looks for: runs of letters and digits, at most 8 of at most 40 runes.
// Everything else — quotes, backslashes, JQL and Lucene operators — only
// separates words, so typed text can never change the query's structure.
func searchWords(text string) []string {
	words := strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	out := make([]string, 0, min(len(words), 8))
	for _, w := range words {
		if len(out) == 8 {
			break
		}
		if r := []rune(w); len(r) > 40 {
			w = string(r[:40])
		}
		out = append(out, w)
	}
	return out
}

// typedKey returns text as a ticket key when it is one (any case, spaces
// around ignored), else "".
func typedKey(text string) string {
	k := strings.ToUpper(strings.TrimSpace(text))
	if commands.ValidTicket(k) {
		return k
	}
	return ""
}

// jqlString quotes s as a JQL string literal: backslashes and double quotes
// are escaped, and control characters (which JQL cannot hold and a config
// value has no business holding) are dropped.
func jqlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '\\' || r == '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		case unicode.IsControl(r):
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// jqlList is a JQL list of string literals: ("A", "B").
func jqlList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = jqlString(v)
	}
	return "(" + strings.Join(q, ", ") + ")"
}

// searchJQL builds the query of a search: the scope's projects and
// statuses, and the typed text as a key (when it is one) or as words of
// the summary, the last word as a prefix. Every value is a quoted literal;
// nothing typed is ever written into the query unquoted.
func searchJQL(scope Scope, text string) string {
	var and []string
	if len(scope.Projects) > 0 {
		and = append(and, "project in "+jqlList(scope.Projects))
	}
	if len(scope.Statuses) > 0 {
		and = append(and, "status in "+jqlList(scope.Statuses))
	}
	var or []string
	if k := typedKey(text); k != "" {
		or = append(or, "key = "+jqlString(k))
	}
	if words := searchWords(text); len(words) > 0 {
		words[len(words)-1] += "*"
		or = append(or, "summary ~ "+jqlString(strings.Join(words, " ")))
	}
	switch len(or) {
	case 0:
	case 1:
		and = append(and, or[0])
	default:
		and = append(and, "("+strings.Join(or, " OR ")+")")
	}
	return strings.Join(and, " AND ") + " ORDER BY updated DESC"
}

// Search finds up to max (at most MaxSearch) tickets in scope whose key or
// summary matches text, most recently updated first, with one GET of
// /rest/api/2/search (the request go-jira's IssueService.Search sends),
// retried as lookups are within ctx and the configured timeout. The query
// is validated leniently (validateQuery=warn), so that a typed key of an
// issue that does not exist finds nothing instead of failing the search.
// Errors: EFORBIDDEN when Jira rejects the bot's credentials,
// EUNAVAILABLE otherwise.
func (j *Jira) Search(ctx context.Context, scope Scope, text string, max int) ([]commands.Ticket, error) {
	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	q := url.Values{
		"jql":           {searchJQL(scope, text)},
		"maxResults":    {strconv.Itoa(searchMax(max))},
		"fields":        {j.fields},
		"validateQuery": {"warn"},
	}
	var out struct {
		Issues []struct {
			Key    string          `json:"key"`
			Fields json.RawMessage `json:"fields"`
		} `json:"issues"`
	}
	res := j.call(ctx, http.MethodGet, "rest/api/2/search?"+q.Encode(), nil, &out, true)
	switch {
	case res.ok():
	case res.status == http.StatusUnauthorized || res.status == http.StatusForbidden:
		j.alert(j.log, res)
		return nil, commands.Errorf(commands.EFORBIDDEN, "Jira refused the bot's search (%d): ask an admin to check the token and permissions", res.status)
	default:
		return nil, j.unavailable(j.log, res, "could not search Jira")
	}
	tickets := make([]commands.Ticket, 0, len(out.Issues))
	for _, is := range out.Issues {
		if !commands.ValidTicket(is.Key) {
			continue
		}
		t, err := j.ticket(is.Key, is.Fields)
		if err != nil {
			j.log.Warn().Err(err).Str("ticket", is.Key).Msg("a search result could not be read; left out")
			continue
		}
		tickets = append(tickets, t)
	}
	return tickets[:min(len(tickets), searchMax(max))], nil
}

// Search finds up to max (at most MaxSearch) tickets of the file in scope
// whose key starts with text (any case) or whose summary holds every word
// of it, by key. Errors as Ticket's.
func (f *File) Search(_ context.Context, scope Scope, text string, max int) ([]commands.Ticket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reload(); err != nil {
		return nil, commands.Errorf(commands.EUNAVAILABLE, "could not use the tickets file (%v)", err)
	}
	return search(f.tickets, scope, text, max), nil
}

// Search is File's Search over the static tickets.
func (s *Static) Search(_ context.Context, scope Scope, text string, max int) ([]commands.Ticket, error) {
	return search(s.tickets, scope, text, max), nil
}

func search(tickets map[string]commands.Ticket, scope Scope, text string, max int) []commands.Ticket {
	prefix := strings.ToUpper(strings.TrimSpace(text))
	words := searchWords(strings.ToLower(text))
	var out []commands.Ticket
	for _, t := range tickets {
		if len(scope.Projects) > 0 && !slices.ContainsFunc(scope.Projects, func(p string) bool { return strings.EqualFold(p, t.Project) }) ||
			len(scope.Statuses) > 0 && !slices.ContainsFunc(scope.Statuses, func(s string) bool { return strings.EqualFold(s, t.Status) }) {
			continue
		}
		summary := strings.ToLower(t.Summary)
		match := prefix == "" || strings.HasPrefix(t.Key, prefix) ||
			len(words) > 0 && !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(summary, w) })
		if match {
			c, _ := lookup(tickets, t.Key)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b commands.Ticket) int {
		return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(len(a.Key), len(b.Key)), cmp.Compare(a.Key, b.Key))
	})
	return out[:min(len(out), searchMax(max))]
}
