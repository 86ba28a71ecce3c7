package fakejira

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// getSearch answers GET /rest/api/2/search as Jira does, for the JQL the
// fake understands: clauses `field in ("a", "b")`, `field = "a"` and
// `summary ~ "words prefix*"` over project, status, key and summary,
// joined by AND and OR with parentheses, and an ORDER BY it ignores
// (results come by key). Other JQL, or a string literal that does not
// close, is answered 400 with Jira's error body, as Jira answers a query
// it cannot parse: a test of the escaping of typed text sees it.
func (s *Server) getSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	max := 50
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, errorBody([]string{"The value '" + v + "' is invalid for maxResults."}, nil))
			return
		}
		max = n
	}
	match, err := parseJQL(q.Get("jql"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody([]string{"Error in the JQL Query: " + err.Error()}, nil))
		return
	}
	s.mu.Lock()
	var found []Issue
	for _, is := range s.issues {
		if match(is) {
			found = append(found, is)
		}
	}
	slices.SortFunc(found, func(a, b Issue) int { return strings.Compare(a.Key, b.Key) })
	issues := []any{}
	for _, is := range found[:min(len(found), max)] {
		id := s.ids[is.Key]
		issues = append(issues, map[string]any{
			"expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
			"id":     fmt.Sprint(id),
			"self":   fmt.Sprintf("%s/rest/api/2/issue/%d", s.URL, id),
			"key":    is.Key,
			"fields": selectFields(s.fields(is), q.Get("fields")),
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"expand": "schema,names", "startAt": 0, "maxResults": max, "total": len(found), "issues": issues,
	})
}

// jqlToken is a token of a query: a string literal (quoted), a word, or
// one of ( ) , = ~.
type jqlToken struct {
	text   string
	quoted bool
}

func lexJQL(s string) ([]jqlToken, error) {
	var out []jqlToken
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case strings.ContainsRune("(),=~", r):
			out = append(out, jqlToken{text: string(r)})
			i++
		case r == '"' || r == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(rs) && rs[j] != r; j++ {
				if rs[j] == '\\' && j+1 < len(rs) {
					j++
				}
				b.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("the quoted string starting at character %d is not closed", i+1)
			}
			out = append(out, jqlToken{text: b.String(), quoted: true})
			i = j + 1
		default:
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && !strings.ContainsRune("(),=~\"'", rs[j]) {
				j++
			}
			out = append(out, jqlToken{text: string(rs[i:j])})
			i = j
		}
	}
	return out, nil
}

type jqlParser struct {
	toks []jqlToken
	pos  int
}

func (p *jqlParser) peek(word string) bool {
	return p.pos < len(p.toks) && !p.toks[p.pos].quoted && strings.EqualFold(p.toks[p.pos].text, word)
}

func (p *jqlParser) next() (jqlToken, bool) {
	if p.pos >= len(p.toks) {
		return jqlToken{}, false
	}
	p.pos++
	return p.toks[p.pos-1], true
}

// parseJQL returns the predicate of a query the fake understands.
func parseJQL(jql string) (func(Issue) bool, error) {
	toks, err := lexJQL(jql)
	if err != nil {
		return nil, err
	}
	p := &jqlParser{toks: toks}
	if len(toks) == 0 || p.peek("order") {
		return func(Issue) bool { return true }, nil
	}
	m, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.peek("order") {
		return m, nil // the fake orders by key
	}
	if t, ok := p.next(); ok {
		return nil, fmt.Errorf("expecting AND, OR or ORDER BY but got %q", t.text)
	}
	return m, nil
}

func (p *jqlParser) or() (func(Issue) bool, error) {
	m, err := p.and()
	for err == nil && p.peek("or") {
		p.pos++
		var n func(Issue) bool
		if n, err = p.and(); err == nil {
			a, b := m, n
			m = func(is Issue) bool { return a(is) || b(is) }
		}
	}
	return m, err
}

func (p *jqlParser) and() (func(Issue) bool, error) {
	m, err := p.term()
	for err == nil && p.peek("and") {
		p.pos++
		var n func(Issue) bool
		if n, err = p.term(); err == nil {
			a, b := m, n
			m = func(is Issue) bool { return a(is) && b(is) }
		}
	}
	return m, err
}

func (p *jqlParser) term() (func(Issue) bool, error) {
	if p.peek("(") {
		p.pos++
		m, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.peek(")") {
			return nil, fmt.Errorf("expecting ')'")
		}
		p.pos++
		return m, nil
	}
	field, ok := p.next()
	if !ok || field.quoted {
		return nil, fmt.Errorf("expecting a field name")
	}
	get, known := map[string]func(Issue) string{
		"project": func(is Issue) string { return strings.SplitN(is.Key, "-", 2)[0] },
		"status":  func(is Issue) string { return is.Status },
		"key":     func(is Issue) string { return is.Key },
		"issue":   func(is Issue) string { return is.Key },
		"summary": func(is Issue) string { return is.Summary },
	}[strings.ToLower(field.text)]
	if !known {
		return nil, fmt.Errorf("field '%s' does not exist or you do not have permission to view it", field.text)
	}
	op, ok := p.next()
	if !ok || op.quoted {
		return nil, fmt.Errorf("expecting an operator after '%s'", field.text)
	}
	switch strings.ToLower(op.text) {
	case "=":
		v, err := p.value()
		return func(is Issue) bool { return strings.EqualFold(get(is), v) }, err
	case "in":
		vs, err := p.list()
		return func(is Issue) bool {
			return slices.ContainsFunc(vs, func(v string) bool { return strings.EqualFold(get(is), v) })
		}, err
	case "~":
		v, err := p.value()
		terms := textWords(v)
		return func(is Issue) bool { return textMatch(textWords(get(is)), terms) }, err
	}
	return nil, fmt.Errorf("the operator '%s' is not supported by the fake", op.text)
}

func (p *jqlParser) value() (string, error) {
	t, ok := p.next()
	if !ok || !t.quoted && strings.ContainsAny(t.text, "(),=~") {
		return "", fmt.Errorf("expecting a value")
	}
	return t.text, nil
}

func (p *jqlParser) list() ([]string, error) {
	if !p.peek("(") {
		return nil, fmt.Errorf("expecting '(' after IN")
	}
	p.pos++
	var vs []string
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
		switch {
		case p.peek(","):
			p.pos++
		case p.peek(")"):
			p.pos++
			return vs, nil
		default:
			return nil, fmt.Errorf("expecting ',' or ')' in a list")
		}
	}
}

// textWords splits text into lower-case words, keeping a trailing * (a
// prefix search term).
func textWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '*'
	})
}

// textMatch reports whether every term is a word of words, or a prefix of
// one when it ends in *: Jira's text search, without its stemming.
func textMatch(words, terms []string) bool {
	for _, t := range terms {
		prefix, isPrefix := strings.CutSuffix(t, "*")
		if !slices.ContainsFunc(words, func(w string) bool {
			return w == t || isPrefix && strings.HasPrefix(w, prefix)
		}) {
			return false
		}
	}
	return len(terms) > 0
}
