package tracker_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/tracker"
	"github.com/dobrobot/dobrobot/tracker/fakejira"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
)

const (
	botUser  = "bot@example.com"
	botToken = "ATATT3xFfGF0-not-a-real-token-9f8e7d"
)

// newJira returns a Jira tracker on the fake, authenticating as the bot
// with basic auth unless change says otherwise.
func newJira(t *testing.T, s *fakejira.Server, change func(*tracker.JiraConfig)) *tracker.Jira {
	t.Helper()
	cfg := tracker.JiraConfig{URL: s.URL, User: botUser, Token: botToken, Timeout: 3 * time.Second}
	if change != nil {
		change(&cfg)
	}
	j, err := tracker.NewJira(cfg)
	if err != nil {
		t.Fatalf("NewJira: %v", err)
	}
	t.Cleanup(j.Close)
	return j
}

func TestJiraMapsFixtures(t *testing.T) {
	s := fakejira.New(t)
	j := newJira(t, s, func(c *tracker.JiraConfig) {
		c.RequiredFields = []string{"customfield_10010", "customfield_10011", "customfield_10012",
			"customfield_10013", "customfield_10014", "customfield_99999", "labels"}
		c.ComponentMap = map[string]string{"Frontend Web": "web", "CDN": "web"}
	})
	base := s.URL + "/browse/"
	empty := map[string]string{
		"customfield_10010": "", "customfield_10011": "", "customfield_10012": "",
		"customfield_10013": "", "customfield_10014": "", "customfield_99999": "", "labels": "",
	}
	with := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range empty {
			out[k] = v
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		key  string
		want commands.Ticket
	}{
		{"PAY-1", commands.Ticket{
			Key: "PAY-1", Project: "PAY", Summary: "Faster checkout", Status: "Ready for Release",
			Assignee: "Ann Example", IssueType: "Story", FixVersions: []string{"2.4.0"},
			Components: []string{"backend", "payments"}, URL: base + "PAY-1",
			Fields: with(map[string]string{
				"customfield_10010": "QA passed", "customfield_10011": "3",
				"customfield_10012": "Low", "customfield_10013": "EU, US",
			}),
		}},
		{"PAY-2", commands.Ticket{
			Key: "PAY-2", Project: "PAY", Summary: "Refund e-mails are sent twice", Status: "In Progress",
			IssueType: "Bug", Components: []string{"backend"}, URL: base + "PAY-2", Fields: empty,
		}},
		{"WEB-7", commands.Ticket{
			Key: "WEB-7", Project: "WEB", Summary: "New landing page", Status: "Ready for Release",
			Assignee: "Bob Builder", IssueType: "Task", FixVersions: []string{"2025.06", "2025.07"},
			Components: []string{"web"}, URL: base + "WEB-7",
			Fields: with(map[string]string{"customfield_10013": "mobile, desktop", "labels": "release, web"}),
		}},
		{"OPS-3", commands.Ticket{
			Key: "OPS-3", Project: "OPS", Summary: "Rotate the TLS certificates", Status: "Done",
			Assignee: "Carol Ops", IssueType: "Bug", FixVersions: []string{"ops-2025-06"},
			URL: base + "OPS-3", Fields: empty,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, err := j.Ticket(context.Background(), tt.key)
			if err != nil {
				t.Fatalf("Ticket: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Ticket(%s) (-want +got):\n%s", tt.key, diff)
			}
		})
	}
}

func TestJiraAsksForTheFieldsItNeeds(t *testing.T) {
	s := fakejira.New(t)
	j := newJira(t, s, func(c *tracker.JiraConfig) {
		c.RequiredFields = []string{"customfield_10010", "customfield_10010", "summary"}
	})
	if _, err := j.Ticket(context.Background(), "PAY-1"); err != nil {
		t.Fatal(err)
	}
	reqs := s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	got := struct{ Method, Path, Fields string }{reqs[0].Method, reqs[0].Path, strings.Join(reqs[0].Query["fields"], "|")}
	want := struct{ Method, Path, Fields string }{"GET", "/rest/api/2/issue/PAY-1",
		"summary,status,assignee,fixVersions,components,project,issuetype,customfield_10010"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestJiraFieldShapes(t *testing.T) {
	s := fakejira.New(t)
	const id = "customfield_10100"
	j := newJira(t, s, func(c *tracker.JiraConfig) { c.RequiredFields = []string{id} })
	tests := []struct {
		name   string
		value  any
		want   string
		absent bool
	}{
		{"string", "QA passed", "QA passed", false},
		{"string with spaces", "  signed off  ", "signed off", false},
		{"blank string", "   ", "", false},
		{"integer", 42, "42", false},
		{"decimal", 2.5, "2.5", false},
		{"zero", 0, "0", false},
		{"big number", 12345678901.0, "12345678901", false},
		{"bool", true, "true", false},
		{"option", map[string]any{"self": "x", "value": "High", "id": "1"}, "High", false},
		{"cascading option", map[string]any{"value": "EU", "child": map[string]any{"value": "Berlin"}}, "EU - Berlin", false},
		{"version object", map[string]any{"id": "1", "name": "2.4.0"}, "2.4.0", false},
		{"user object", map[string]any{"accountId": "abc", "displayName": "Ann"}, "Ann", false},
		{"array of options", []any{map[string]any{"value": "EU"}, map[string]any{"value": "US"}}, "EU, US", false},
		{"array of strings", []any{"a", "", "b"}, "a, b", false},
		{"array of numbers", []any{1, 2.5}, "1, 2.5", false},
		{"empty array", []any{}, "", false},
		{"null", nil, "", false},
		{"empty object", map[string]any{}, "", false},
		{"object of unknown shape", map[string]any{"start": "2025-06-01"}, `{"start":"2025-06-01"}`, false},
		{"absent", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := fakejira.Issue{Key: "FLD-1", Summary: "s", Status: "Open", Fields: map[string]any{id: tt.value}}
			if tt.absent {
				is.Fields = nil
			}
			s.AddIssue(is)
			got, err := j.Ticket(context.Background(), "FLD-1")
			if err != nil {
				t.Fatal(err)
			}
			v, ok := got.Fields[id]
			if !ok || v != tt.want {
				t.Errorf("Fields[%s] = %q (present %v), want %q", id, v, ok, tt.want)
			}
		})
	}
}

func TestJiraAssignee(t *testing.T) {
	s := fakejira.New(t)
	j := newJira(t, s, nil)
	tests := []struct {
		name string
		user *fakejira.User
		want string
	}{
		{"unassigned", nil, ""},
		{"display name", &fakejira.User{AccountID: "a1", EmailAddress: "ann@example.com", DisplayName: "Ann"}, "Ann"},
		{"e-mail only", &fakejira.User{EmailAddress: "ann@example.com"}, "ann@example.com"},
		{"Data Center name", &fakejira.User{Name: "ann", Key: "JIRAUSER1"}, "ann"},
		{"Cloud account ID only", &fakejira.User{AccountID: "557058:abc"}, "557058:abc"},
		{"assigned but nameless", &fakejira.User{}, "(unnamed user)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.AddIssue(fakejira.Issue{Key: "ASG-1", Summary: "s", Status: "Open", Assignee: tt.user})
			got, err := j.Ticket(context.Background(), "ASG-1")
			if err != nil {
				t.Fatal(err)
			}
			if got.Assignee != tt.want {
				t.Errorf("Assignee = %q, want %q", got.Assignee, tt.want)
			}
		})
	}
}

func TestJiraComponentMapping(t *testing.T) {
	s := fakejira.New(t)
	s.AddIssue(fakejira.Issue{Key: "CMP-1", Summary: "s", Status: "Open",
		Components: []string{"Backend API", "payments", "Backend Workers", "iOS App", " "}})
	j := newJira(t, s, func(c *tracker.JiraConfig) {
		c.ComponentMap = map[string]string{"Backend API": "backend", "Backend Workers": "backend", "iOS App": "ios"}
	})
	got, err := j.Ticket(context.Background(), "CMP-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"backend", "payments", "ios"}, got.Components); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
}

func TestJiraAuthModes(t *testing.T) {
	tests := []struct {
		name     string
		user     string
		want     fakejira.Auth
		wantCode string
		serverAs string // the user SetCredentials expects; "" with token: bearer
	}{
		{"Cloud basic", botUser, fakejira.Auth{Kind: fakejira.AuthBasic, User: botUser, Valid: true}, "", botUser},
		{"Data Center bearer", "", fakejira.Auth{Kind: fakejira.AuthBearer, Valid: true}, "", ""},
		{"bearer where basic expected", "", fakejira.Auth{Kind: fakejira.AuthBearer}, commands.EFORBIDDEN, botUser},
		{"basic where bearer expected", botUser, fakejira.Auth{Kind: fakejira.AuthBasic, User: botUser}, commands.EFORBIDDEN, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakejira.New(t)
			s.SetCredentials(tt.serverAs, botToken)
			j := newJira(t, s, func(c *tracker.JiraConfig) { c.User = tt.user })
			_, err := j.Ticket(context.Background(), "PAY-1")
			if got := commands.ErrorCode(err); got != tt.wantCode {
				t.Errorf("error code = %q (%v), want %q", got, err, tt.wantCode)
			}
			reqs := s.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if diff := cmp.Diff(tt.want, reqs[0].Auth); diff != "" {
				t.Errorf("auth seen by Jira (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJiraFailures(t *testing.T) {
	t.Parallel()
	const (
		unreachable = "could not reach Jira: not queued, try again"
		notFound    = "PAY-9 was not found or is not visible to the bot's Jira account"
	)
	tests := []struct {
		name     string
		key      string
		fail     *fakejira.Failure
		timeout  time.Duration // default 3s
		attempts int           // MaxAttempts; default 3
		wantCode string        // "" for success
		wantMsg  string
		wantReqs int
		upTo     bool // at most wantReqs: a request may time out before Jira sees it
		atLeast  time.Duration
		atMost   time.Duration
	}{
		{name: "404 is not retried", key: "PAY-9", wantCode: commands.ENOTFOUND, wantMsg: notFound, wantReqs: 1, atMost: 2900 * time.Millisecond},
		{name: "401", key: "PAY-1", fail: &fakejira.Failure{Status: 401}, wantCode: commands.EFORBIDDEN,
			wantMsg: "Jira rejected the bot's credentials (401): ask an admin to check the token", wantReqs: 1, atMost: 2900 * time.Millisecond},
		{name: "403", key: "PAY-1", fail: &fakejira.Failure{Status: 403}, wantCode: commands.EFORBIDDEN,
			wantMsg: "Jira refused the bot access to PAY-1 (403): ask an admin to check the bot account's permissions", wantReqs: 1, atMost: 2900 * time.Millisecond},
		{name: "429 then 200 waits Retry-After", key: "PAY-1", fail: &fakejira.Failure{Status: 429, RetryAfter: "1", Times: 1},
			wantReqs: 2, atLeast: time.Second, atMost: 2900 * time.Millisecond},
		{name: "503 then 200 waits Retry-After", key: "PAY-1", fail: &fakejira.Failure{Status: 503, RetryAfter: "1", Times: 1},
			wantReqs: 2, atLeast: time.Second, atMost: 2900 * time.Millisecond},
		{name: "Retry-After beyond the budget gives up at once", key: "PAY-1", fail: &fakejira.Failure{Status: 429, RetryAfter: "10"},
			timeout: 5 * time.Second, wantCode: commands.EUNAVAILABLE, wantMsg: unreachable + " in 10s", wantReqs: 1, atMost: 1500 * time.Millisecond},
		{name: "503 Retry-After beyond the budget", key: "PAY-1", fail: &fakejira.Failure{Status: 503, RetryAfter: "30"},
			timeout: 5 * time.Second, wantCode: commands.EUNAVAILABLE, wantMsg: unreachable, wantReqs: 1, atMost: 1500 * time.Millisecond},
		{name: "429 forever stops after MaxAttempts", key: "PAY-1", fail: &fakejira.Failure{Status: 429, RetryAfter: "0"},
			wantCode: commands.EUNAVAILABLE, wantMsg: unreachable, wantReqs: 3, atMost: 2900 * time.Millisecond},
		{name: "MaxAttempts 1", key: "PAY-1", fail: &fakejira.Failure{Status: 503}, attempts: 1,
			wantCode: commands.EUNAVAILABLE, wantMsg: unreachable, wantReqs: 1, atMost: 1500 * time.Millisecond},
		{name: "500 is retried with backoff", key: "PAY-1", fail: &fakejira.Failure{Status: 500},
			wantCode: commands.EUNAVAILABLE, wantMsg: unreachable, wantReqs: 3, atLeast: 300 * time.Millisecond, atMost: 2900 * time.Millisecond},
		{name: "502 once then 200", key: "PAY-1", fail: &fakejira.Failure{Status: 502, Times: 1}, wantReqs: 2, atMost: 2900 * time.Millisecond},
		{name: "400 fails closed without retry", key: "PAY-1", fail: &fakejira.Failure{Status: 400},
			wantCode: commands.EUNAVAILABLE, wantMsg: unreachable, wantReqs: 1, atMost: 1500 * time.Millisecond},
		{name: "hang", key: "PAY-1", fail: &fakejira.Failure{Hang: true}, timeout: 300 * time.Millisecond,
			wantCode: commands.EUNAVAILABLE, wantMsg: unreachable, wantReqs: 1, upTo: true, atLeast: 300 * time.Millisecond, atMost: 1300 * time.Millisecond},
		{name: "slow", key: "PAY-1", fail: &fakejira.Failure{Delay: 2 * time.Second}, timeout: 300 * time.Millisecond,
			wantCode: commands.EUNAVAILABLE, wantMsg: unreachable, wantReqs: 1, upTo: true, atLeast: 300 * time.Millisecond, atMost: 1300 * time.Millisecond},
		{name: "slow but in time", key: "PAY-1", fail: &fakejira.Failure{Delay: 100 * time.Millisecond}, wantReqs: 1, atMost: 2900 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := fakejira.New(t)
			if tt.fail != nil {
				s.Fail(tt.key, *tt.fail)
			}
			j := newJira(t, s, func(c *tracker.JiraConfig) {
				if tt.timeout != 0 {
					c.Timeout = tt.timeout
				}
				c.MaxAttempts = tt.attempts
			})
			start := time.Now()
			got, err := j.Ticket(context.Background(), tt.key)
			took := time.Since(start)
			if code := commands.ErrorCode(err); code != tt.wantCode {
				t.Errorf("error code = %q (%v), want %q", code, err, tt.wantCode)
			}
			if msg := commands.ErrorMessage(err); msg != tt.wantMsg && !(tt.wantCode == commands.EUNAVAILABLE && strings.HasPrefix(msg, tt.wantMsg)) {
				t.Errorf("error message = %q, want %q", msg, tt.wantMsg)
			}
			if err == nil && got.Summary != "Faster checkout" {
				t.Errorf("ticket = %+v, want PAY-1", got)
			}
			if n := len(s.Requests()); n != tt.wantReqs && !(tt.upTo && n < tt.wantReqs) {
				t.Errorf("%d requests, want %d", n, tt.wantReqs)
			}
			if took < tt.atLeast || tt.atMost != 0 && took > tt.atMost {
				t.Errorf("took %s, want between %s and %s", took, tt.atLeast, tt.atMost)
			}
		})
	}
}

func TestJiraRetryHonoursTheWait(t *testing.T) {
	t.Parallel()
	s := fakejira.New(t)
	s.Fail("PAY-1", fakejira.Failure{Status: 429, RetryAfter: "1", Times: 2})
	j := newJira(t, s, func(c *tracker.JiraConfig) { c.Timeout = 4 * time.Second })
	if _, err := j.Ticket(context.Background(), "PAY-1"); err != nil {
		t.Fatalf("Ticket: %v", err)
	}
	reqs := s.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i := 1; i < len(reqs); i++ {
		if gap := reqs[i].Time.Sub(reqs[i-1].Time); gap < time.Second {
			t.Errorf("request %d came %s after the previous one, want at least the 1s Jira asked for", i+1, gap)
		}
	}
}

func TestJiraHonoursTheCallersDeadline(t *testing.T) {
	s := fakejira.New(t)
	s.Fail("", fakejira.Failure{Hang: true})
	j := newJira(t, s, func(c *tracker.JiraConfig) { c.Timeout = 10 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := j.Ticket(ctx, "PAY-1")
	checkErr(t, err, commands.EUNAVAILABLE, "could not reach Jira")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s, want about the caller's 150ms", took)
	}
}

func TestJiraUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	j, err := tracker.NewJira(tracker.JiraConfig{URL: url, User: botUser, Token: botToken, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	start := time.Now()
	_, err = j.Ticket(context.Background(), "PAY-1")
	checkErr(t, err, commands.EUNAVAILABLE, "could not reach Jira: not queued, try again")
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Errorf("took %s, want a few short backoffs, not the 5s timeout", took)
	}
}

func TestJiraUnreadableAnswer(t *testing.T) {
	// A proxy or SSO page answering 200 with HTML instead of Jira's JSON.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body>Please log in</body></html>"))
	}))
	defer srv.Close()
	j, err := tracker.NewJira(tracker.JiraConfig{URL: srv.URL, Token: botToken})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	_, err = j.Ticket(context.Background(), "PAY-1")
	checkErr(t, err, commands.EUNAVAILABLE, "could not read Jira's answer for PAY-1")
	_, err = j.Check(context.Background())
	checkErr(t, err, commands.EUNAVAILABLE, "not Jira's JSON")
}

func TestJiraRefusesBadKeysWithoutARequest(t *testing.T) {
	s := fakejira.New(t)
	j := newJira(t, s, nil)
	for _, key := range []string{
		"", "pay-1", "PAY-1;rm -rf /", "PAY-1/comment", "../PAY-1", "PAY-1?fields=*all", "PAY-1%2F..",
		"P-1", "PAY-", "PAY-1\n", "$(id)", strings.Repeat("A", 60) + "-12345",
	} {
		_, err := j.Ticket(context.Background(), key)
		checkErr(t, err, commands.EINVALID, "is not a ticket key")
		err = j.Comment(context.Background(), key, "hello")
		checkErr(t, err, commands.EINVALID, "is not a ticket key")
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d requests for invalid keys, want none", n)
	}
}

// TestJiraLeavesNoGoroutines runs a burst of lookups against a Jira that
// hangs: each must give up in its time and leave nothing behind.
func TestJiraLeavesNoGoroutines(t *testing.T) {
	s := fakejira.New(t)
	s.Fail("", fakejira.Failure{Hang: true})
	j := newJira(t, s, func(c *tracker.JiraConfig) { c.Timeout = 50 * time.Millisecond })
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()

	const lookups, workers = 1000, 50
	keys := make(chan int)
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for range keys {
				_, err := j.Ticket(context.Background(), "PAY-1")
				mu.Lock()
				codes[commands.ErrorCode(err)]++
				mu.Unlock()
			}
		})
	}
	for i := range lookups {
		keys <- i
	}
	close(keys)
	wg.Wait()
	took := time.Since(start)

	if diff := cmp.Diff(map[string]int{commands.EUNAVAILABLE: lookups}, codes); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	// 20 rounds of 50ms, with generous room for the race detector on a busy machine.
	if took > 30*time.Second {
		t.Errorf("%d lookups took %s, want each bounded by its 50ms", lookups, took)
	}
	j.Close()
	var n int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n = runtime.NumGoroutine(); n <= base+5 {
			return
		}
	}
	buf := make([]byte, 1<<20)
	t.Errorf("%d goroutines after the burst, baseline %d:\n%s", n, base, buf[:runtime.Stack(buf, true)])
}

func TestJiraNeverLogsTheToken(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := zerolog.New(&logs).Level(zerolog.DebugLevel)
	basic := base64.StdEncoding.EncodeToString([]byte(botUser + ":" + botToken))
	var errs []error
	for _, f := range []fakejira.Failure{
		{Status: 401}, {Status: 403}, {Status: 500}, {Status: 429, RetryAfter: "0"}, {Hang: true},
	} {
		for _, user := range []string{botUser, ""} {
			s := fakejira.New(t)
			s.Fail("", f)
			j := newJira(t, s, func(c *tracker.JiraConfig) {
				c.User, c.Log, c.Timeout = user, log, 200*time.Millisecond
			})
			_, err := j.Ticket(context.Background(), "PAY-1")
			errs = append(errs, err, j.Comment(context.Background(), "PAY-1", "hi"))
			_, err = j.Check(context.Background())
			errs = append(errs, err)
		}
	}
	errs = append(errs, func() error {
		_, err := tracker.NewJira(tracker.JiraConfig{URL: "https://bot:" + botToken + "@jira.example.com", Token: botToken})
		return err
	}())
	out := logs.String()
	for _, err := range errs {
		out += "\n" + err.Error()
	}
	for _, secret := range []string{botToken, basic, "Authorization"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs or errors contain %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{`"level":"error"`, "expired or revoked", "lacks a permission"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

func TestJiraComment(t *testing.T) {
	t.Parallel()
	s := fakejira.New(t)
	j := newJira(t, s, nil)
	ctx := context.Background()
	if err := j.Comment(ctx, "PAY-1", "Released to production by dobrobot."); err != nil {
		t.Fatalf("Comment: %v", err)
	}
	want := []fakejira.Comment{{Key: "PAY-1", Body: "Released to production by dobrobot.",
		Auth: fakejira.Auth{Kind: fakejira.AuthBasic, User: botUser, Valid: true}}}
	if diff := cmp.Diff(want, s.Comments()); diff != "" {
		t.Errorf("comments (-want +got):\n%s", diff)
	}

	tests := []struct {
		name     string
		key      string
		fail     fakejira.Failure
		wantCode string
		wantMsg  string
		wantReqs int // POSTs sent
		wantNew  int // comments added
	}{
		{"429 is retried", "PAY-1", fakejira.Failure{Status: 429, RetryAfter: "0", Times: 1}, "", "", 2, 1},
		{"503 is not retried", "PAY-1", fakejira.Failure{Status: 503, Times: 1}, commands.EUNAVAILABLE, "could not comment on PAY-1 in Jira", 1, 0},
		{"500 is not retried", "PAY-1", fakejira.Failure{Status: 500, Times: 1}, commands.EUNAVAILABLE, "could not comment on PAY-1 in Jira", 1, 0},
		{"403", "PAY-1", fakejira.Failure{Status: 403}, commands.EFORBIDDEN, "Add comments permission", 1, 0},
		{"401", "PAY-1", fakejira.Failure{Status: 401}, commands.EFORBIDDEN, "(401)", 1, 0},
		{"404", "PAY-9", fakejira.Failure{}, commands.ENOTFOUND, "PAY-9 was not found or is not visible", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, posts := len(s.Comments()), len(s.Requests())
			s.Heal()
			if tt.fail != (fakejira.Failure{}) {
				s.Fail(tt.key, tt.fail)
			}
			err := j.Comment(ctx, tt.key, "hello")
			if code := commands.ErrorCode(err); code != tt.wantCode {
				t.Errorf("error code = %q (%v), want %q", code, err, tt.wantCode)
			}
			if !strings.Contains(commands.ErrorMessage(err), tt.wantMsg) {
				t.Errorf("error = %q, want it to contain %q", commands.ErrorMessage(err), tt.wantMsg)
			}
			if got := len(s.Requests()) - posts; got != tt.wantReqs {
				t.Errorf("%d requests, want %d", got, tt.wantReqs)
			}
			if got := len(s.Comments()) - before; got != tt.wantNew {
				t.Errorf("%d comments added, want %d", got, tt.wantNew)
			}
		})
	}
	s.Heal()
	err := j.Comment(ctx, "PAY-1", "  ")
	checkErr(t, err, commands.EINVALID, "needs some text")
}

func TestJiraCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		user    string
		myself  *fakejira.User
		fail    *fakejira.Failure
		want    string
		wantErr string
	}{
		{name: "Cloud", user: botUser, want: "Jira: ok as bot@example.com"},
		{name: "Data Center", myself: &fakejira.User{Name: "dobrobot", DisplayName: "Dobrobot"}, want: "Jira: ok as dobrobot"},
		{name: "401", user: botUser, fail: &fakejira.Failure{Status: 401}, wantErr: "Jira: 401 — token rejected"},
		{name: "403", user: botUser, fail: &fakejira.Failure{Status: 403}, wantErr: "Jira: 403"},
		{name: "404", user: botUser, fail: &fakejira.Failure{Status: 404}, wantErr: "tracker.url does not look like Jira's base URL"},
		{name: "hang", user: botUser, fail: &fakejira.Failure{Hang: true}, wantErr: "Jira: no answer from"},
		{name: "503", user: botUser, fail: &fakejira.Failure{Status: 503, RetryAfter: "60"}, wantErr: "Jira: 503 from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakejira.New(t)
			if tt.myself != nil {
				s.SetMyself(*tt.myself)
			}
			if tt.fail != nil {
				s.Fail("", *tt.fail)
			}
			j := newJira(t, s, func(c *tracker.JiraConfig) { c.User, c.Timeout = tt.user, 300*time.Millisecond })
			got, err := j.Check(context.Background())
			if got != tt.want {
				t.Errorf("Check = %q, want %q", got, tt.want)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Check error = %v, want one containing %q", err, tt.wantErr)
			}
			// A hanging request may time out before Jira even sees it.
			reqs := s.Requests()
			if len(reqs) == 0 && (tt.fail == nil || !tt.fail.Hang) || len(reqs) > 0 && reqs[0].Path != "/rest/api/2/myself" {
				t.Errorf("requests = %+v, want GET /rest/api/2/myself", reqs)
			}
		})
	}
}

func TestNewJiraRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  tracker.JiraConfig
		want string
	}{
		{"no URL", tracker.JiraConfig{Token: botToken}, "tracker.url is empty"},
		{"not http", tracker.JiraConfig{URL: "ftp://jira.example.com", Token: botToken}, "http or https"},
		{"no host", tracker.JiraConfig{URL: "https://", Token: botToken}, "http or https"},
		{"credentials in URL", tracker.JiraConfig{URL: "https://bot:" + botToken + "@jira.example.com", Token: botToken}, "must not contain credentials"},
		{"query", tracker.JiraConfig{URL: "https://jira.example.com/?x=1", Token: botToken}, "query"},
		{"no token", tracker.JiraConfig{URL: "https://jira.example.com"}, "tracker.token is empty"},
		{"negative timeout", tracker.JiraConfig{URL: "https://jira.example.com", Token: botToken, Timeout: -time.Second}, "negative"},
		{"bad field ID", tracker.JiraConfig{URL: "https://jira.example.com", Token: botToken, RequiredFields: []string{"QA status"}}, `"QA status" is not a Jira field ID`},
		{"field ID with a comma", tracker.JiraConfig{URL: "https://jira.example.com", Token: botToken, RequiredFields: []string{"a,b"}}, "not a Jira field ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tracker.NewJira(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewJira error = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), botToken) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestJiraConfigStringHidesTheToken(t *testing.T) {
	cfg := tracker.JiraConfig{URL: "https://x.atlassian.net", User: botUser, Token: botToken}
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", &cfg)} {
		if strings.Contains(s, botToken) || !strings.Contains(s, botUser) {
			t.Errorf("config printed as %q: want the user, not the token", s)
		}
	}
}
