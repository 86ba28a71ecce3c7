package intake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
)

const (
	testSecret   = "s3cret-for-builds"
	testGHSecret = "s3cret-for-github"
)

// now is the intake's clock in these tests.
var now = time.Date(2026, 12, 4, 9, 15, 0, 0, time.UTC)

// fakeCore is the core as the intake sees it: it records what it is
// given and answers what the test says.
type fakeCore struct {
	mu     sync.Mutex
	builds []commands.Build
	answer commands.BuildAnswer
	err    error
}

func (f *fakeCore) Build(_ context.Context, b commands.Build) (commands.BuildAnswer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.builds = append(f.builds, b)
	return f.answer, f.err
}

func (f *fakeCore) got() []commands.Build {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]commands.Build(nil), f.builds...)
}

// start runs a real intake listener on 127.0.0.1 with core behind it.
func start(t *testing.T, core BuildService, tweak func(*Options)) string {
	t.Helper()
	o := Options{
		Secret: testSecret, GitHubSecret: testGHSecret,
		Repos:   map[string][]string{"acme/backend": {"backend", "worker"}},
		Service: core,
		Now:     func() time.Time { return now },
		Log:     zerolog.New(io.Discard),
	}
	if tweak != nil {
		tweak(&o)
	}
	s, err := Start("127.0.0.1:0", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return "http://" + s.Addr()
}

// got is an answer as a client sees it.
type got struct {
	Status     int
	RetryAfter string
	Body       reply
}

func do(t *testing.T, req *http.Request) got {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	g := got{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &g.Body); err != nil {
			t.Fatalf("the answer %q is not JSON: %v", raw, err)
		}
	}
	return g
}

// signed is a POST /builds of body signed with secret at ts.
func signed(t *testing.T, base, secret string, ts time.Time, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/builds", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	tsh, sig := Sign(secret, ts, body)
	req.Header.Set(TimestampHeader, tsh)
	req.Header.Set(SignatureHeader, sig)
	req.Header.Set("Content-Type", "application/json")
	return req
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const goodBody = `{"id":"gl-9001","ticket":"REL-42","components":["backend"],"version":"1.4.2","commit":"4f2a9c1e7b3d",` +
	`"branch":"main","environment":"qa","status":"success","url":"https://ci.example.com/pipelines/9001"}`

func TestBuildsAnswers(t *testing.T) {
	changed := commands.BuildAnswer{Outcome: commands.BuildChanged, Release: 7, State: "deploying"}
	refused := commands.BuildAnswer{Outcome: commands.BuildRefused, Reason: "REL-42 is not ready in the tracker"}
	wantBuild := commands.Build{
		Delivery: "builds:gl-9001", BodyHash: sum([]byte(goodBody)), Source: "builds", ID: "gl-9001", Ticket: "REL-42",
		Env: "qa", Components: []string{"backend"}, Version: "1.4.2", Commit: "4f2a9c1e7b3d", Branch: "main",
		URL: "https://ci.example.com/pipelines/9001", Status: commands.BuildSuccess, Received: now,
	}
	tests := []struct {
		name   string
		body   string
		answer commands.BuildAnswer
		err    error
		want   got
		build  *commands.Build // what the core is given
	}{
		{name: "a change is 202", body: goodBody, answer: changed,
			want: got{Status: 202, Body: reply{Release: 7, State: "deploying"}}, build: &wantBuild},
		{name: "a delivery seen before is 200 with the first answer", body: goodBody,
			answer: commands.BuildAnswer{Outcome: commands.BuildSeen, First: &changed},
			want:   got{Status: 200, Body: reply{Release: 7, State: "deploying"}}, build: &wantBuild},
		{name: "a delivery refused before is refused again", body: goodBody,
			answer: commands.BuildAnswer{Outcome: commands.BuildSeen, First: &refused},
			want:   got{Status: 422, Body: reply{Error: refused.Reason}}, build: &wantBuild},
		{name: "a refusal is 422 with the reason", body: goodBody, answer: refused,
			want: got{Status: 422, Body: reply{Error: refused.Reason}}, build: &wantBuild},
		{name: "the core's invalid is 400 with the reason", body: goodBody,
			answer: commands.BuildAnswer{Outcome: commands.BuildInvalid, Reason: `unknown environment "qa"`},
			want:   got{Status: 400, Body: reply{Error: `unknown environment "qa"`}}, build: &wantBuild},
		{name: "unavailable is 503 with Retry-After", body: goodBody,
			err:  commands.Errorf(commands.EUNAVAILABLE, "this instance stands by"),
			want: got{Status: 503, RetryAfter: "5", Body: reply{Error: "this instance stands by"}}, build: &wantBuild},
		{name: "another error is 500 without details", body: goodBody, err: io.ErrUnexpectedEOF,
			want: got{Status: 500, Body: reply{Error: "internal error"}}, build: &wantBuild},
		{name: "the ticket is found in the branch",
			body:   `{"id":"gh-1","branch":"feature/REL-77-search","status":"pending"}`,
			answer: changed, want: got{Status: 202, Body: reply{Release: 7, State: "deploying"}},
			build: &commands.Build{Delivery: "builds:gh-1", BodyHash: sum([]byte(`{"id":"gh-1","branch":"feature/REL-77-search","status":"pending"}`)),
				Source: "builds", ID: "gh-1", Ticket: "REL-77", Branch: "feature/REL-77-search", Status: commands.BuildPending, Received: now}},
		{name: "no ticket anywhere is the core's to judge",
			body:   `{"id":"gh-2","branch":"main","status":"failure"}`,
			answer: refused, want: got{Status: 422, Body: reply{Error: refused.Reason}},
			build: &commands.Build{Delivery: "builds:gh-2", BodyHash: sum([]byte(`{"id":"gh-2","branch":"main","status":"failure"}`)),
				Source: "builds", ID: "gh-2", Branch: "main", Status: commands.BuildFailure, Received: now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := &fakeCore{answer: tt.answer, err: tt.err}
			base := start(t, core, nil)
			g := do(t, signed(t, base, testSecret, now, []byte(tt.body)))
			if diff := cmp.Diff(tt.want, g); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			var want []commands.Build
			if tt.build != nil {
				want = []commands.Build{*tt.build}
			}
			if diff := cmp.Diff(want, core.got()); diff != "" {
				t.Errorf("given to the core (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBuildsBadInput: each bad delivery is answered with its status and
// nothing of it reaches the core.
func TestBuildsBadInput(t *testing.T) {
	body := []byte(goodBody)
	big := append([]byte(`{"id":"x","status":"success","url":"`), bytes.Repeat([]byte("a"), MaxBody)...)
	big = append(big, `"}`...)
	tests := []struct {
		name   string
		req    func(t *testing.T, base string) *http.Request
		status int
		reason string // a part of the answer's error
	}{
		{"no signature", func(t *testing.T, base string) *http.Request {
			r := signed(t, base, testSecret, now, body)
			r.Header.Del(SignatureHeader)
			return r
		}, 401, "missing"},
		{"no timestamp", func(t *testing.T, base string) *http.Request {
			r := signed(t, base, testSecret, now, body)
			r.Header.Del(TimestampHeader)
			return r
		}, 401, "missing"},
		{"another secret", func(t *testing.T, base string) *http.Request {
			return signed(t, base, "not-the-secret", now, body)
		}, 401, "does not match"},
		{"the signature of another body", func(t *testing.T, base string) *http.Request {
			r := signed(t, base, testSecret, now, body)
			r2 := signed(t, base, testSecret, now, []byte(strings.Replace(goodBody, "1.4.2", "1.4.3", 1)))
			r2.Header.Set(SignatureHeader, r.Header.Get(SignatureHeader))
			return r2
		}, 401, "does not match"},
		{"the signature of another timestamp", func(t *testing.T, base string) *http.Request {
			r := signed(t, base, testSecret, now, body)
			r.Header.Set(TimestampHeader, "1796375701")
			return r
		}, 401, "does not match"},
		{"an old timestamp", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now.Add(-Window-time.Second), body)
		}, 401, "5 minutes"},
		{"a future timestamp", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now.Add(Window+time.Second), body)
		}, 401, "5 minutes"},
		{"a timestamp that is not a number", func(t *testing.T, base string) *http.Request {
			r := signed(t, base, testSecret, now, body)
			r.Header.Set(TimestampHeader, "yesterday")
			return r
		}, 401, "Unix seconds"},
		{"a signature without sha256=", func(t *testing.T, base string) *http.Request {
			r := signed(t, base, testSecret, now, body)
			r.Header.Set(SignatureHeader, strings.TrimPrefix(r.Header.Get(SignatureHeader), "sha256="))
			return r
		}, 401, "sha256=<hex>"},
		{"over 1 MiB", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now, big)
		}, 413, "1 MiB"},
		{"JSON that does not parse", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now, []byte(`{"id":"x","status":`))
		}, 400, "not a build report"},
		{"no id", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now, []byte(`{"ticket":"REL-1","status":"success"}`))
		}, 400, `"id" is required`},
		{"no status", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now, []byte(`{"id":"x","ticket":"REL-1"}`))
		}, 400, `"status" is required`},
		{"a bad status", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now, []byte(`{"id":"x","status":"green"}`))
		}, 400, `"status" is "green"`},
		{"a misspelt field", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now, []byte(`{"id":"x","status":"success","enviroment":"qa"}`))
		}, 400, "enviroment"},
		{"two JSON values", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now, []byte(`{"id":"x","status":"success"}{}`))
		}, 400, "not a build report"},
		{"a name given twice", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now, []byte(`{"id":"x","status":"failure","status":"success"}`))
		}, 400, "duplicate"},
		{"a name in another case", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now, []byte(`{"ID":"x","status":"success"}`))
		}, 400, "not a build report"},
		{"invalid UTF-8", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now, []byte("{\"id\":\"x\xff\",\"status\":\"success\"}"))
		}, 400, "not a build report"},
		{"a control character", func(t *testing.T, base string) *http.Request {
			return signed(t, base, testSecret, now, []byte(`{"id":"x\u0007","status":"success"}`))
		}, 400, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := &fakeCore{answer: commands.BuildAnswer{Outcome: commands.BuildChanged, Release: 1}}
			base := start(t, core, nil)
			g := do(t, tt.req(t, base))
			if g.Status != tt.status || !strings.Contains(g.Body.Error, tt.reason) {
				t.Errorf("got %d %q, want %d with %q", g.Status, g.Body.Error, tt.status, tt.reason)
			}
			if n := len(core.got()); n != 0 {
				t.Errorf("the core was given %d builds, want none", n)
			}
		})
	}
}

// TestEndpointsOff: an endpoint whose secret is not set does not exist, and
// only POST is served.
func TestEndpointsOff(t *testing.T) {
	core := &fakeCore{}
	base := start(t, core, func(o *Options) { o.Secret, o.GitHubSecret = "", "" })
	for _, path := range []string{"/builds", "/github"} {
		req := signed(t, base, "", now, []byte(goodBody))
		req.URL.Path = path
		if g := do(t, req); g.Status != http.StatusNotFound {
			t.Errorf("POST %s with no secret set: %d, want 404", path, g.Status)
		}
	}
	base = start(t, core, nil)
	resp, err := http.Get(base + "/builds")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /builds: %d, want 405", resp.StatusCode)
	}
	if n := len(core.got()); n != 0 {
		t.Errorf("the core was given %d builds, want none", n)
	}
}

func TestSignMatchesAByHandHMAC(t *testing.T) {
	// The documented recipe (docs/ci.md, openssl dgst -sha256 -hmac) is
	// HMAC-SHA256 of "<ts>.<body>": Sign must be exactly that.
	ts, sig := Sign("k", time.Unix(1700000000, 0), []byte(`{"a":1}`))
	m := hmac.New(sha256.New, []byte("k"))
	m.Write([]byte(`1700000000.{"a":1}`))
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if ts != "1700000000" || sig != want {
		t.Errorf("Sign = %q, %q; want 1700000000, %q", ts, sig, want)
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
