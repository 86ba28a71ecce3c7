package fakejira

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a fake Jira. Its methods are safe for concurrent use, also
// while requests are being served.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:port, without a
	// trailing slash.
	URL string

	srv     *httptest.Server
	closing chan struct{} // closed by Close, to release hanging requests
	once    sync.Once

	mu       sync.Mutex
	issues   map[string]Issue
	ids      map[string]int // issue key → issue ID, stable across AddIssue
	failures map[string]*Failure
	creds    *credentials
	myself   User
	requests []Request
	comments []Comment
}

// Issue is an issue as the fake serves it. Zero fields are served as Jira
// serves an issue without them: a nil Assignee as "assignee": null, empty
// FixVersions and Components as [].
type Issue struct {
	Key     string
	Summary string
	Status  string
	// StatusCategory is "new", "indeterminate" or "done"; empty derives it
	// from Status ("To Do" is new, "Done" is done, most others indeterminate).
	StatusCategory string
	IssueType      string // "Task" when empty
	Assignee       *User
	FixVersions    []string
	Components     []string
	ProjectName    string // the project key when empty
	// Fields holds further fields (custom or not) by ID, as JSON values:
	// string, number, bool, map[string]any, []any, or nil for a field that
	// exists but has no value, served as null. A field not in Fields is not
	// on the issue: Jira leaves it out even when asked for it.
	Fields map[string]any
}

// User is a Jira account. Cloud accounts have an AccountID (and an
// EmailAddress only if its owner shares it); Data Center accounts have a
// Name and Key.
type User struct {
	AccountID    string
	Name         string
	Key          string
	EmailAddress string
	DisplayName  string
}

// Failure makes the server misbehave. With Status set it answers that
// status (with a realistic body, and Retry-After when set) instead of the
// real answer; with Delay it first waits that long; with Hang it never
// answers, until the client goes away or the server closes. Delay alone
// slows the real answer down.
type Failure struct {
	Status     int
	RetryAfter string // the Retry-After header: seconds or an HTTP date
	Delay      time.Duration
	Hang       bool
	// Times is how many requests the failure applies to before the server
	// behaves again; 0 means until Heal.
	Times int
}

// AuthKind is how a request authenticated.
type AuthKind string

// The kinds of authentication a request can carry.
const (
	AuthNone   AuthKind = "none"
	AuthBasic  AuthKind = "basic"  // Jira Cloud: e-mail and API token
	AuthBearer AuthKind = "bearer" // Jira Data Center: personal access token
	AuthOther  AuthKind = "other"
)

// Auth is what the server noted of a request's credentials: never the
// secret itself.
type Auth struct {
	Kind AuthKind
	User string // the basic-auth user
	// Valid reports whether the credentials matched those set with
	// SetCredentials; always true when none were set.
	Valid bool
}

// Request is a request the server received.
type Request struct {
	Method string
	Path   string
	Query  map[string][]string
	Auth   Auth
	Time   time.Time
}

// Comment is a comment posted to an issue.
type Comment struct {
	Key  string
	Body string
	Auth Auth
}

type credentials struct{ user, token string }

// New starts a fake Jira on 127.0.0.1 holding the issues of Fixtures, and
// closes it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakejira: listen: %v", err)
	}
	s := &Server{
		closing:  make(chan struct{}),
		issues:   make(map[string]Issue),
		ids:      make(map[string]int),
		failures: make(map[string]*Failure),
		myself: User{
			AccountID:    "5b10ac8d82e05b22cc7d4ef5",
			Name:         "dobrobot",
			Key:          "JIRAUSER10100",
			EmailAddress: "bot@example.com",
			DisplayName:  "Dobrobot",
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rest/api/2/issue/{key}", s.getIssue)
	mux.HandleFunc("POST /rest/api/2/issue/{key}/comment", s.postComment)
	mux.HandleFunc("GET /rest/api/2/myself", s.getMyself)
	mux.HandleFunc("GET /rest/api/2/search", s.getSearch)
	s.srv = httptest.NewUnstartedServer(s.serve(mux))
	s.srv.Listener = l
	s.srv.Start()
	s.URL = s.srv.URL
	for _, is := range Fixtures() {
		s.AddIssue(is)
	}
	t.Cleanup(s.Close)
	return s
}

// Close releases hanging and delayed requests and shuts the server down.
// It may be called more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		s.srv.Close()
	})
}

// AddIssue adds is, or replaces the issue with its key.
func (s *Server) AddIssue(is Issue) {
	is.FixVersions = slices.Clone(is.FixVersions)
	is.Components = slices.Clone(is.Components)
	is.Fields = maps.Clone(is.Fields)
	if is.Assignee != nil {
		a := *is.Assignee
		is.Assignee = &a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[is.Key]; !ok {
		s.ids[is.Key] = 10001 + len(s.ids)
	}
	s.issues[is.Key] = is
}

// DeleteIssue removes the issue with the given key; Jira then answers 404.
func (s *Server) DeleteIssue(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.issues, key)
}

// Fail makes requests about issue key (its issue and comment endpoints)
// fail as f says; key "" makes every request fail, also /myself. A failure
// for the key wins over the one for every request. Fail replaces an
// earlier failure for the same key.
func (s *Server) Fail(key string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[key] = &f
}

// Heal removes every failure.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.failures)
}

// SetCredentials makes the server accept only these credentials and answer
// 401 to any other: basic auth as user with token as password, or, with
// user empty, the bearer token. Requests note whether theirs matched.
func (s *Server) SetCredentials(user, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds = &credentials{user: user, token: token}
}

// SetMyself sets the account /rest/api/2/myself describes.
func (s *Server) SetMyself(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.myself = u
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Comments returns the comments posted so far, in order.
func (s *Server) Comments() []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.comments)
}

// serve records each request and applies failures and credentials before
// the real handler.
func (s *Server) serve(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := ""
		if rest, ok := strings.CutPrefix(r.URL.Path, "/rest/api/2/issue/"); ok {
			key, _, _ = strings.Cut(rest, "/")
		}
		s.mu.Lock()
		auth := s.auth(r)
		s.requests = append(s.requests, Request{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Auth: auth, Time: time.Now(),
		})
		f := s.failure(key)
		s.mu.Unlock()

		if f != nil {
			if f.Hang {
				s.wait(r, -1)
				return
			}
			if f.Delay > 0 {
				if !s.wait(r, f.Delay) {
					return
				}
			}
			if f.Status != 0 {
				if f.RetryAfter != "" {
					w.Header().Set("Retry-After", f.RetryAfter)
				}
				writeStatus(w, f.Status)
				return
			}
		}
		if !auth.Valid {
			w.Header().Set("X-Seraph-LoginReason", "AUTHENTICATED_FAILED")
			writeStatus(w, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// failure returns the failure that applies to a request about key, using
// up one of its Times. s.mu must be held.
func (s *Server) failure(key string) *Failure {
	for _, k := range []string{key, ""} {
		f, ok := s.failures[k]
		if !ok {
			continue
		}
		g := *f
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				delete(s.failures, k)
			}
		}
		return &g
	}
	return nil
}

// wait waits d (forever when d < 0) and reports whether it did. A client
// that goes away ends the wait; so does Close, which also aborts the
// connection rather than answer.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closing:
		panic(http.ErrAbortHandler)
	}
}

// auth notes how r authenticated. s.mu must be held.
func (s *Server) auth(r *http.Request) Auth {
	a := Auth{Kind: AuthNone}
	h := r.Header.Get("Authorization")
	var secret string
	switch {
	case h == "":
	case strings.HasPrefix(h, "Basic "):
		a.Kind = AuthBasic
		a.User, secret, _ = r.BasicAuth()
	case strings.HasPrefix(h, "Bearer "):
		a.Kind = AuthBearer
		secret = strings.TrimPrefix(h, "Bearer ")
	default:
		a.Kind = AuthOther
	}
	switch c := s.creds; {
	case c == nil:
		a.Valid = true
	case c.user != "":
		a.Valid = a.Kind == AuthBasic && a.User == c.user && secret == c.token
	default:
		a.Valid = a.Kind == AuthBearer && secret == c.token
	}
	return a
}

func (s *Server) getIssue(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	s.mu.Lock()
	is, ok := s.issues[key]
	id := s.ids[key]
	s.mu.Unlock()
	if !ok {
		writeStatus(w, http.StatusNotFound)
		return
	}
	fields := selectFields(s.fields(is), r.URL.Query().Get("fields"))
	writeJSON(w, http.StatusOK, map[string]any{
		"expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
		"id":     fmt.Sprint(id),
		"self":   fmt.Sprintf("%s/rest/api/2/issue/%d", s.URL, id),
		"key":    is.Key,
		"fields": fields,
	})
}

func (s *Server) postComment(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	var in struct {
		Body string `json:"body"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody([]string{"Unexpected character in the comment's JSON: " + err.Error()}, nil))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.ids[key]
	if _, ok := s.issues[key]; !ok {
		writeStatus(w, http.StatusNotFound)
		return
	}
	if strings.TrimSpace(in.Body) == "" {
		writeJSON(w, http.StatusBadRequest, errorBody(nil, map[string]string{"comment": "Comment body can not be empty!"}))
		return
	}
	s.comments = append(s.comments, Comment{Key: key, Body: in.Body, Auth: s.auth(r)})
	cid := 10500 + len(s.comments)
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000-0700")
	writeJSON(w, http.StatusCreated, map[string]any{
		"self":         fmt.Sprintf("%s/rest/api/2/issue/%d/comment/%d", s.URL, id, cid),
		"id":           fmt.Sprint(cid),
		"author":       s.user(s.myself),
		"body":         in.Body,
		"updateAuthor": s.user(s.myself),
		"created":      now,
		"updated":      now,
		"jsdPublic":    true,
	})
}

func (s *Server) getMyself(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	u := s.user(s.myself)
	s.mu.Unlock()
	u["locale"] = "en_US"
	u["groups"] = map[string]any{"size": 1, "items": []any{}}
	u["applicationRoles"] = map[string]any{"size": 1, "items": []any{}}
	u["expand"] = "groups,applicationRoles"
	writeJSON(w, http.StatusOK, u)
}

// fields renders every field of is as Jira does.
func (s *Server) fields(is Issue) map[string]any {
	project := strings.SplitN(is.Key, "-", 2)[0]
	f := map[string]any{
		"summary":     is.Summary,
		"status":      s.status(is),
		"assignee":    nil,
		"fixVersions": []any{},
		"components":  []any{},
		"project": map[string]any{
			"self":           fmt.Sprintf("%s/rest/api/2/project/%d", s.URL, fakeID(project)),
			"id":             fmt.Sprint(fakeID(project)),
			"key":            project,
			"name":           cmp.Or(is.ProjectName, project),
			"projectTypeKey": "software",
			"simplified":     false,
			"avatarUrls":     s.avatars("projectavatar", fakeID(project)),
		},
		"issuetype": map[string]any{
			"self":        fmt.Sprintf("%s/rest/api/2/issuetype/%d", s.URL, fakeID(cmp.Or(is.IssueType, "Task"))),
			"id":          fmt.Sprint(fakeID(cmp.Or(is.IssueType, "Task"))),
			"description": "A piece of work.",
			"iconUrl":     s.URL + "/secure/viewavatar?size=medium&avatarId=10318&avatarType=issuetype",
			"name":        cmp.Or(is.IssueType, "Task"),
			"subtask":     false,
			"avatarId":    10318,
		},
	}
	if is.Assignee != nil {
		f["assignee"] = s.user(*is.Assignee)
	}
	var versions []any
	for _, v := range is.FixVersions {
		versions = append(versions, map[string]any{
			"self":        fmt.Sprintf("%s/rest/api/2/version/%d", s.URL, fakeID(v)),
			"id":          fmt.Sprint(fakeID(v)),
			"description": "",
			"name":        v,
			"archived":    false,
			"released":    false,
			"releaseDate": "2025-07-01",
		})
	}
	if versions != nil {
		f["fixVersions"] = versions
	}
	var comps []any
	for _, c := range is.Components {
		comps = append(comps, map[string]any{
			"self": fmt.Sprintf("%s/rest/api/2/component/%d", s.URL, fakeID(c)),
			"id":   fmt.Sprint(fakeID(c)),
			"name": c,
		})
	}
	if comps != nil {
		f["components"] = comps
	}
	maps.Copy(f, is.Fields)
	return f
}

func (s *Server) status(is Issue) map[string]any {
	cat := is.StatusCategory
	if cat == "" {
		switch strings.ToLower(is.Status) {
		case "to do", "open", "backlog", "new", "selected for development":
			cat = "new"
		case "done", "closed", "resolved", "released":
			cat = "done"
		default:
			cat = "indeterminate"
		}
	}
	catID, catColor, catName := 4, "yellow", "In Progress"
	switch cat {
	case "new":
		catID, catColor, catName = 2, "blue-gray", "To Do"
	case "done":
		catID, catColor, catName = 3, "green", "Done"
	}
	return map[string]any{
		"self":        fmt.Sprintf("%s/rest/api/2/status/%d", s.URL, fakeID(is.Status)),
		"description": "",
		"iconUrl":     s.URL + "/images/icons/statuses/generic.png",
		"name":        is.Status,
		"id":          fmt.Sprint(fakeID(is.Status)),
		"statusCategory": map[string]any{
			"self":      fmt.Sprintf("%s/rest/api/2/statuscategory/%d", s.URL, catID),
			"id":        catID,
			"key":       cat,
			"colorName": catColor,
			"name":      catName,
		},
	}
}

// user renders a Jira account; Cloud accounts have an accountId, Data
// Center ones a name and key.
func (s *Server) user(u User) map[string]any {
	m := map[string]any{
		"displayName": u.DisplayName,
		"active":      true,
		"timeZone":    "Europe/Berlin",
		"avatarUrls":  s.avatars("useravatar", fakeID(u.AccountID+u.Name)),
	}
	if u.AccountID != "" {
		m["self"] = s.URL + "/rest/api/2/user?accountId=" + u.AccountID
		m["accountId"] = u.AccountID
		m["accountType"] = "atlassian"
	} else {
		m["self"] = s.URL + "/rest/api/2/user?username=" + u.Name
	}
	if u.Name != "" {
		m["name"] = u.Name
	}
	if u.Key != "" {
		m["key"] = u.Key
	}
	if u.EmailAddress != "" {
		m["emailAddress"] = u.EmailAddress
	}
	return m
}

func (s *Server) avatars(kind string, n int) map[string]any {
	m := map[string]any{}
	for _, size := range []string{"48x48", "24x24", "16x16", "32x32"} {
		m[size] = fmt.Sprintf("%s/secure/%s?size=%s&avatarId=%d", s.URL, kind, size, n)
	}
	return m
}

// selectFields keeps the fields a fields= query asks for, loosely as Jira
// does: a comma-separated list of field IDs, *all or *navigable for every
// field, -ID to leave one out; unknown IDs are ignored.
func selectFields(all map[string]any, query string) map[string]any {
	if strings.TrimSpace(query) == "" {
		return all
	}
	out := map[string]any{}
	var exclude []string
	for f := range strings.SplitSeq(query, ",") {
		switch f = strings.TrimSpace(f); {
		case f == "*all" || f == "*navigable":
			maps.Copy(out, all)
		case strings.HasPrefix(f, "-"):
			exclude = append(exclude, f[1:])
		default:
			if v, ok := all[f]; ok {
				out[f] = v
			}
		}
	}
	for _, f := range exclude {
		delete(out, f)
	}
	return out
}

// writeStatus answers status with the body Jira sends with it.
func writeStatus(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusNotFound:
		writeJSON(w, status, errorBody([]string{"Issue does not exist or you do not have permission to see it."}, nil))
	case http.StatusUnauthorized:
		writeJSON(w, status, errorBody([]string{"You are not authenticated. Authentication required to perform this operation."}, nil))
	case http.StatusForbidden:
		writeJSON(w, status, errorBody([]string{"You do not have the permission to see the specified issue."}, nil))
	case http.StatusTooManyRequests:
		writeJSON(w, status, errorBody([]string{"Rate limit exceeded."}, nil))
	case http.StatusServiceUnavailable:
		w.Header().Set("Content-Type", "text/html;charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprint(w, "<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1><p>Jira is down for maintenance.</p></body></html>")
	default:
		writeJSON(w, status, errorBody([]string{http.StatusText(status)}, nil))
	}
}

func errorBody(msgs []string, errs map[string]string) map[string]any {
	if msgs == nil {
		msgs = []string{}
	}
	if errs == nil {
		errs = map[string]string{}
	}
	return map[string]any{"errorMessages": msgs, "errors": errs}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// fakeID is a stable, realistic-looking ID for a name.
func fakeID(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return 10000 + int(h.Sum32()%90000)
}
