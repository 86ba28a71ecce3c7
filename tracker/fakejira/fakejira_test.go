package fakejira_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	jira "github.com/andygrunwald/go-jira"
	"github.com/dobrobot/dobrobot/tracker/fakejira"
	"github.com/google/go-cmp/cmp"
)

var client = &http.Client{Timeout: 5 * time.Second}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, ctx context.Context, method, url string, body io.Reader, auth func(*http.Request)) (answer, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != nil {
		auth(req)
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func get(t *testing.T, url string) answer {
	t.Helper()
	a, err := do(t, context.Background(), http.MethodGet, url, nil, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return a
}

// names lists the names of go-jira values that have one.
func names[T any](vs []*T, name func(*T) string) []string {
	var out []string
	for _, v := range vs {
		out = append(out, name(v))
	}
	return out
}

// TestFixturesDecodeWithGoJira checks that the fake's JSON is what go-jira,
// written against real Jira, decodes: a fake that drifted from Jira's shape
// would fail here.
func TestFixturesDecodeWithGoJira(t *testing.T) {
	s := fakejira.New(t)
	c, err := jira.NewClient(client, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		Key, Summary, Status, Category, Assignee, Project, Type string
		FixVersions, Components                                 []string
		Unknowns                                                map[string]any
	}
	tests := []struct {
		key  string
		want view
	}{
		{"PAY-1", view{
			Key: "PAY-1", Summary: "Faster checkout", Status: "Ready for Release", Category: "indeterminate",
			Assignee: "Ann Example", Project: "PAY", Type: "Story",
			FixVersions: []string{"2.4.0"}, Components: []string{"backend", "payments"},
			Unknowns: map[string]any{
				"customfield_10010": "QA passed",
				"customfield_10011": 3.0,
				"customfield_10012": map[string]any{"self": "https://example.atlassian.net/rest/api/2/customFieldOption/10020", "value": "Low", "id": "10020"},
				"customfield_10013": []any{
					map[string]any{"self": "https://example.atlassian.net/rest/api/2/customFieldOption/10030", "value": "EU", "id": "10030"},
					map[string]any{"self": "https://example.atlassian.net/rest/api/2/customFieldOption/10031", "value": "US", "id": "10031"},
				},
				"customfield_10014": nil,
			},
		}},
		{"PAY-2", view{
			Key: "PAY-2", Summary: "Refund e-mails are sent twice", Status: "In Progress", Category: "indeterminate",
			Project: "PAY", Type: "Bug", Components: []string{"backend"},
			Unknowns: map[string]any{"customfield_10010": nil, "customfield_10011": nil},
		}},
		{"WEB-7", view{
			Key: "WEB-7", Summary: "New landing page", Status: "Ready for Release", Category: "indeterminate",
			Assignee: "Bob Builder", Project: "WEB", Type: "Task",
			FixVersions: []string{"2025.06", "2025.07"}, Components: []string{"Frontend Web", "CDN"},
			Unknowns: map[string]any{"customfield_10010": "", "customfield_10013": []any{"mobile", "desktop"}},
		}},
		{"OPS-3", view{
			Key: "OPS-3", Summary: "Rotate the TLS certificates", Status: "Done", Category: "done",
			Assignee: "Carol Ops", Project: "OPS", Type: "Bug", FixVersions: []string{"ops-2025-06"},
			Unknowns: map[string]any{},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			is, _, err := c.Issue.Get(tt.key, nil)
			if err != nil {
				t.Fatalf("go-jira Issue.Get: %v", err)
			}
			f := is.Fields
			got := view{
				Key: is.Key, Summary: f.Summary, Status: f.Status.Name, Category: f.Status.StatusCategory.Key,
				Project: f.Project.Key, Type: f.Type.Name,
				FixVersions: names(f.FixVersions, func(v *jira.FixVersion) string { return v.Name }),
				Components:  names(f.Components, func(v *jira.Component) string { return v.Name }),
				Unknowns:    map[string]any(f.Unknowns),
			}
			if f.Assignee != nil {
				got.Assignee = f.Assignee.DisplayName
			}
			delete(got.Unknowns, "labels") // go-jira knows labels; older versions did not
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("issue %s (-want +got):\n%s", tt.key, diff)
			}
		})
	}
}

func TestNullAssigneeIsServedAsNull(t *testing.T) {
	s := fakejira.New(t)
	a := get(t, s.URL+"/rest/api/2/issue/PAY-2?fields=assignee,fixVersions")
	if got, want := string(a.body), `"fields":{"assignee":null,"fixVersions":[]}`; !strings.Contains(got, want) {
		t.Errorf("body = %s, want it to contain %s", got, want)
	}
}

func TestFieldsSelection(t *testing.T) {
	s := fakejira.New(t)
	tests := []struct {
		fields string
		want   []string
	}{
		{"summary,customfield_10010", []string{"customfield_10010", "summary"}},
		{"summary, status ,customfield_99999", []string{"status", "summary"}},
		{"*all,-customfield_10013,-labels,-customfield_10011,-customfield_10012,-customfield_10014,-customfield_10010",
			[]string{"assignee", "components", "fixVersions", "issuetype", "project", "status", "summary"}},
		{"", []string{"assignee", "components", "customfield_10010", "customfield_10011", "customfield_10012",
			"customfield_10013", "customfield_10014", "fixVersions", "issuetype", "project", "status", "summary"}},
	}
	for _, tt := range tests {
		t.Run(tt.fields, func(t *testing.T) {
			a := get(t, s.URL+"/rest/api/2/issue/PAY-1?fields="+strings.ReplaceAll(tt.fields, " ", "%20"))
			var is struct {
				Key    string                     `json:"key"`
				Fields map[string]json.RawMessage `json:"fields"`
			}
			if err := json.Unmarshal(a.body, &is); err != nil {
				t.Fatalf("decode %s: %v", a.body, err)
			}
			var got []string
			for k := range is.Fields {
				got = append(got, k)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIssues(t *testing.T) {
	s := fakejira.New(t)
	s.AddIssue(fakejira.Issue{Key: "NEW-1", Summary: "Added", Status: "To Do"})
	s.AddIssue(fakejira.Issue{Key: "PAY-1", Summary: "Replaced", Status: "Done"})
	s.DeleteIssue("WEB-7")
	tests := []struct {
		key        string
		wantStatus int
		wantIn     string
	}{
		{"NEW-1", 200, `"statusCategory":{"colorName":"blue-gray","id":2,"key":"new"`},
		{"PAY-1", 200, `"summary":"Replaced"`},
		{"WEB-7", 404, `{"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}`},
		{"NOPE-1", 404, `Issue does not exist`},
	}
	for _, tt := range tests {
		a := get(t, s.URL+"/rest/api/2/issue/"+tt.key)
		if a.status != tt.wantStatus || !strings.Contains(string(a.body), tt.wantIn) {
			t.Errorf("GET %s = %d %s, want %d with %s", tt.key, a.status, a.body, tt.wantStatus, tt.wantIn)
		}
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name      string
		key       string // "" fails every request
		f         fakejira.Failure
		path      string
		want      []int  // statuses of three requests in a row
		wantRetry string // Retry-After of the first answer
		wantIn    string // in the first answer's body
	}{
		{"404 for one key", "PAY-1", fakejira.Failure{Status: 404}, "/rest/api/2/issue/PAY-1", []int{404, 404, 404}, "", "Issue does not exist"},
		{"other keys unaffected", "PAY-1", fakejira.Failure{Status: 404}, "/rest/api/2/issue/PAY-2", []int{200, 200, 200}, "", "PAY-2"},
		{"401 everywhere", "", fakejira.Failure{Status: 401}, "/rest/api/2/myself", []int{401, 401, 401}, "", "not authenticated"},
		{"403", "PAY-1", fakejira.Failure{Status: 403}, "/rest/api/2/issue/PAY-1", []int{403, 403, 403}, "", "permission"},
		{"429 twice", "", fakejira.Failure{Status: 429, RetryAfter: "7", Times: 2}, "/rest/api/2/issue/PAY-1", []int{429, 429, 200}, "7", "Rate limit"},
		{"503 once", "PAY-1", fakejira.Failure{Status: 503, RetryAfter: "Wed, 21 Oct 2037 07:28:00 GMT", Times: 1},
			"/rest/api/2/issue/PAY-1", []int{503, 200, 200}, "Wed, 21 Oct 2037 07:28:00 GMT", "Service Unavailable"},
		{"500", "", fakejira.Failure{Status: 500}, "/rest/api/2/issue/PAY-1", []int{500, 500, 500}, "", "Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakejira.New(t)
			s.Fail(tt.key, tt.f)
			var got []int
			var first answer
			for i := range 3 {
				a := get(t, s.URL+tt.path)
				if i == 0 {
					first = a
				}
				got = append(got, a.status)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			if got := first.header.Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			if !strings.Contains(string(first.body), tt.wantIn) {
				t.Errorf("body = %s, want it to contain %q", first.body, tt.wantIn)
			}
			if got, want := len(s.Requests()), 3; got != want {
				t.Errorf("recorded %d requests, want %d", got, want)
			}
		})
	}
}

func TestKeyFailureWinsAndHealRestores(t *testing.T) {
	s := fakejira.New(t)
	s.Fail("", fakejira.Failure{Status: 503})
	s.Fail("PAY-1", fakejira.Failure{Status: 403})
	if got := get(t, s.URL+"/rest/api/2/issue/PAY-1").status; got != 403 {
		t.Errorf("PAY-1 = %d, want 403", got)
	}
	if got := get(t, s.URL+"/rest/api/2/issue/PAY-2").status; got != 503 {
		t.Errorf("PAY-2 = %d, want 503", got)
	}
	s.Heal()
	if got := get(t, s.URL+"/rest/api/2/issue/PAY-1").status; got != 200 {
		t.Errorf("after Heal PAY-1 = %d, want 200", got)
	}
}

func TestDelay(t *testing.T) {
	s := fakejira.New(t)
	s.Fail("", fakejira.Failure{Delay: time.Second, Times: 1})
	start := time.Now()
	a := get(t, s.URL+"/rest/api/2/issue/PAY-1")
	if took := time.Since(start); took < time.Second || a.status != 200 {
		t.Errorf("delayed GET = %d after %s, want 200 after at least 1s", a.status, took)
	}
	start = time.Now()
	get(t, s.URL+"/rest/api/2/issue/PAY-1")
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("second GET took %s, want it undelayed", took)
	}
}

func TestHangEndsWhenClientGivesUp(t *testing.T) {
	s := fakejira.New(t)
	s.Fail("PAY-1", fakejira.Failure{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := do(t, ctx, http.MethodGet, s.URL+"/rest/api/2/issue/PAY-1", nil, nil); err == nil {
		t.Fatal("GET of a hanging issue succeeded, want the client's timeout")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("hung GET returned after %s, want about 100ms", took)
	}
	if got := get(t, s.URL+"/rest/api/2/issue/PAY-2").status; got != 200 {
		t.Errorf("another issue = %d while PAY-1 hangs, want 200", got)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close blocked: the hanging handler did not end when its client went away")
	}
}

func TestCloseReleasesHangingRequests(t *testing.T) {
	s := fakejira.New(t)
	s.Fail("", fakejira.Failure{Hang: true})
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := do(t, context.Background(), http.MethodGet, s.URL+"/rest/api/2/issue/PAY-1", nil, nil)
			errs <- err
		}()
	}
	for deadline := time.Now().Add(3 * time.Second); len(s.Requests()) < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 3 requests arrived", len(s.Requests()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	s.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %s with hanging requests, want it prompt", took)
	}
	for range 3 {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("a hanging request got an answer after Close, want the connection aborted")
			}
		case <-time.After(3 * time.Second):
			t.Fatal("a hanging request did not end after Close")
		}
	}
}

func TestAuthIsRecordedWithoutTheSecret(t *testing.T) {
	const token = "s3cret-token-value"
	tests := []struct {
		name  string
		creds [2]string // user, token set with SetCredentials; empty token: none
		auth  func(*http.Request)
		want  fakejira.Auth
		code  int
	}{
		{"none", [2]string{}, nil, fakejira.Auth{Kind: fakejira.AuthNone, Valid: true}, 200},
		{"basic", [2]string{}, func(r *http.Request) { r.SetBasicAuth("bot@example.com", token) },
			fakejira.Auth{Kind: fakejira.AuthBasic, User: "bot@example.com", Valid: true}, 200},
		{"bearer", [2]string{}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) },
			fakejira.Auth{Kind: fakejira.AuthBearer, Valid: true}, 200},
		{"other", [2]string{}, func(r *http.Request) { r.Header.Set("Authorization", "Token "+token) },
			fakejira.Auth{Kind: fakejira.AuthOther, Valid: true}, 200},
		{"basic right", [2]string{"bot@example.com", token}, func(r *http.Request) { r.SetBasicAuth("bot@example.com", token) },
			fakejira.Auth{Kind: fakejira.AuthBasic, User: "bot@example.com", Valid: true}, 200},
		{"basic wrong token", [2]string{"bot@example.com", token}, func(r *http.Request) { r.SetBasicAuth("bot@example.com", "nope") },
			fakejira.Auth{Kind: fakejira.AuthBasic, User: "bot@example.com"}, 401},
		{"basic wrong user", [2]string{"bot@example.com", token}, func(r *http.Request) { r.SetBasicAuth("eve@example.com", token) },
			fakejira.Auth{Kind: fakejira.AuthBasic, User: "eve@example.com"}, 401},
		{"bearer right", [2]string{"", token}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) },
			fakejira.Auth{Kind: fakejira.AuthBearer, Valid: true}, 200},
		{"basic where bearer expected", [2]string{"", token}, func(r *http.Request) { r.SetBasicAuth("bot", token) },
			fakejira.Auth{Kind: fakejira.AuthBasic, User: "bot"}, 401},
		{"none where bearer expected", [2]string{"", token}, nil, fakejira.Auth{Kind: fakejira.AuthNone}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakejira.New(t)
			if tt.creds[1] != "" {
				s.SetCredentials(tt.creds[0], tt.creds[1])
			}
			a, err := do(t, context.Background(), http.MethodGet, s.URL+"/rest/api/2/issue/PAY-1", nil, tt.auth)
			if err != nil {
				t.Fatal(err)
			}
			if a.status != tt.code {
				t.Errorf("status = %d, want %d", a.status, tt.code)
			}
			reqs := s.Requests()
			if len(reqs) != 1 {
				t.Fatalf("recorded %d requests, want 1", len(reqs))
			}
			if diff := cmp.Diff(tt.want, reqs[0].Auth); diff != "" {
				t.Errorf("auth (-want +got):\n%s", diff)
			}
			if dump := fmt.Sprintf("%#v", reqs); strings.Contains(dump, token) {
				t.Errorf("the recorded request holds the secret: %s", dump)
			}
		})
	}
}

func TestRequestsAreRecorded(t *testing.T) {
	s := fakejira.New(t)
	get(t, s.URL+"/rest/api/2/issue/PAY-1?fields=summary,status")
	get(t, s.URL+"/rest/api/2/myself")
	type req struct {
		Method, Path string
		Query        map[string][]string
	}
	var got []req
	for _, r := range s.Requests() {
		got = append(got, req{r.Method, r.Path, r.Query})
	}
	want := []req{
		{"GET", "/rest/api/2/issue/PAY-1", map[string][]string{"fields": {"summary,status"}}},
		{"GET", "/rest/api/2/myself", map[string][]string{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestComments(t *testing.T) {
	s := fakejira.New(t)
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }
	post := func(key, body string) answer {
		a, err := do(t, context.Background(), http.MethodPost, s.URL+"/rest/api/2/issue/"+key+"/comment", strings.NewReader(body), bearer)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := post("PAY-1", `{"body":"Released by dobrobot."}`); a.status != 201 || !strings.Contains(string(a.body), `"body":"Released by dobrobot."`) {
		t.Errorf("comment = %d %s, want 201 echoing the body", a.status, a.body)
	}
	if a := post("NOPE-1", `{"body":"x"}`); a.status != 404 {
		t.Errorf("comment on a missing issue = %d, want 404", a.status)
	}
	if a := post("PAY-1", `{"body":"  "}`); a.status != 400 || !strings.Contains(string(a.body), "can not be empty") {
		t.Errorf("empty comment = %d %s, want 400", a.status, a.body)
	}
	if a := post("PAY-1", `{`); a.status != 400 {
		t.Errorf("bad JSON = %d, want 400", a.status)
	}
	s.Fail("PAY-2", fakejira.Failure{Status: 403})
	if a := post("PAY-2", `{"body":"x"}`); a.status != 403 {
		t.Errorf("comment on a key failing 403 = %d, want 403", a.status)
	}
	want := []fakejira.Comment{{Key: "PAY-1", Body: "Released by dobrobot.", Auth: fakejira.Auth{Kind: fakejira.AuthBearer, Valid: true}}}
	if diff := cmp.Diff(want, s.Comments()); diff != "" {
		t.Errorf("comments (-want +got):\n%s", diff)
	}
}

func TestMyself(t *testing.T) {
	s := fakejira.New(t)
	c, err := jira.NewClient(client, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	me, _, err := c.User.GetSelf()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := me.EmailAddress, "bot@example.com"; got != want {
		t.Errorf("myself e-mail = %q, want %q", got, want)
	}
	s.SetMyself(fakejira.User{Name: "dobrobot", DisplayName: "Dobrobot DC"})
	me, _, err = c.User.GetSelf()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := [3]string{me.Name, me.DisplayName, me.AccountID}, [3]string{"dobrobot", "Dobrobot DC", ""}; got != want {
		t.Errorf("myself = %q, want %q", got, want)
	}
}
