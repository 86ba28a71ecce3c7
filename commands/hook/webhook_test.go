package hook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

const testSecret = "s3cr3t-hmac-key-for-tests"

// receiver is a webhook receiver that records every request and answers with
// the next of its scripted replies (the last one repeats).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []request
	replies []func(http.ResponseWriter, *http.Request)
}

type request struct {
	Header http.Header
	Body   []byte
}

func newReceiver(t *testing.T, replies ...func(http.ResponseWriter, *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{replies: replies}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, request{r.Header.Clone(), body})
		rc.mu.Unlock()
		rc.replies[min(n, len(rc.replies)-1)](w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.got...)
}

func status(code int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// hang answers only when the request is abandoned.
func hang(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

func testWebhook(t *testing.T, url string) *Webhook {
	t.Helper()
	w, err := NewWebhook(url, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	w.Timeout = 2 * time.Second
	return w
}

func TestWebhookRequest(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, status(http.StatusNoContent, ""))
	w := testWebhook(t, rc.URL+"/deploy")
	job := testJob()
	res := w.Run(context.Background(), job)
	if !res.OK || res.ExitCode != 0 || res.Error != "" {
		t.Fatalf("Run = %+v", res)
	}
	if res.Phase != job.Phase || res.Attempt != job.Attempt || res.Duration <= 0 || res.Ended.IsZero() {
		t.Errorf("Run = %+v: want phase, attempt, duration and end", res)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]

	// The receiver checks the signature with nothing but the secret.
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write(r.Body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := r.Header.Get("X-Dobrobot-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("signature %q, want %q", got, want)
	}
	gotHeaders := map[string]string{
		"Content-Type":    r.Header.Get("Content-Type"),
		"Idempotency-Key": r.Header.Get("Idempotency-Key"),
	}
	wantHeaders := map[string]string{"Content-Type": "application/json", "Idempotency-Key": job.Attempt}
	if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	wantBody := map[string]any{
		"ticket": "PAY-123", "phase": "start", "requester": "U01REQ", "admin": "U02ADMIN",
		"components": []any{"backend", "payments"}, "attempt": job.Attempt, "env": "qa", "version": "v2.4.0+build.7",
	}
	if diff := cmp.Diff(wantBody, body); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestWebhookEmptyFields(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, status(http.StatusOK, ""))
	job := testJob()
	job.Admin, job.Components, job.Env, job.Build = "", nil, "", ""
	if res := testWebhook(t, rc.URL).Run(context.Background(), job); !res.OK {
		t.Fatalf("Run = %+v", res)
	}
	got := string(rc.requests()[0].Body)
	want := `{"ticket":"PAY-123","phase":"start","requester":"U01REQ","admin":"","components":[],"attempt":"0123456789abcdef","env":"production","version":""}`
	if got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		replies  []func(http.ResponseWriter, *http.Request)
		requests int
		want     commands.HookResult // Phase, Attempt, Duration and Ended not compared
	}{
		{
			name:     "500, 500, then 200",
			replies:  []func(http.ResponseWriter, *http.Request){status(500, "oops"), status(500, "oops"), status(200, "ok")},
			requests: 3,
			want:     commands.HookResult{OK: true},
		},
		{
			name:     "503 three times",
			replies:  []func(http.ResponseWriter, *http.Request){status(503, "deployer is down")},
			requests: 3,
			want:     commands.HookResult{ExitCode: 503, Error: "answered 503 Service Unavailable (3 attempts)", Output: "deployer is down"},
		},
		{
			name:     "404 is not retried",
			replies:  []func(http.ResponseWriter, *http.Request){status(404, `{"error":"no such service"}`)},
			requests: 1,
			want:     commands.HookResult{ExitCode: 404, Error: "answered 404 Not Found", Output: `{"error":"no such service"}`},
		},
		{
			name:     "500, a hang, then 200",
			replies:  []func(http.ResponseWriter, *http.Request){status(500, ""), hang, status(200, "")},
			requests: 3,
			want:     commands.HookResult{OK: true},
		},
		{
			name:     "long body is cut",
			replies:  []func(http.ResponseWriter, *http.Request){status(400, strings.Repeat("é", maxBody))},
			requests: 1,
			want:     commands.HookResult{ExitCode: 400, Error: "answered 400 Bad Request", Output: strings.Repeat("é", maxBody/2) + "…[truncated]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, tt.replies...)
			w := testWebhook(t, rc.URL)
			w.Timeout = 1500 * time.Millisecond
			got := w.Run(context.Background(), testJob())
			got.Phase, got.Attempt, got.Duration, got.Ended = "", "", 0, time.Time{}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Run (-want +got):\n%s", diff)
			}
			reqs := rc.requests()
			if len(reqs) != tt.requests {
				t.Fatalf("%d requests, want %d", len(reqs), tt.requests)
			}
			for i, r := range reqs {
				if key := r.Header.Get("Idempotency-Key"); key != testJob().Attempt {
					t.Errorf("request %d: Idempotency-Key %q, want %q", i, key, testJob().Attempt)
				}
				if string(r.Body) != string(reqs[0].Body) || r.Header.Get("X-Dobrobot-Signature") != reqs[0].Header.Get("X-Dobrobot-Signature") {
					t.Errorf("request %d differs from the first", i)
				}
			}
		})
	}
}

func TestWebhookTimeout(t *testing.T) {
	t.Parallel()
	// Each attempt gets a share of the timeout: enough, even on a loaded
	// machine, for every request to reach the receiver.
	tests := []struct {
		attempts int
		timeout  time.Duration
		want     string
	}{
		{1, 300 * time.Millisecond, "timed out after 300ms"},
		{3, 1200 * time.Millisecond, "timed out after 1.2s (3 attempts)"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.attempts), func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, hang)
			w := testWebhook(t, rc.URL)
			w.Timeout, w.MaxAttempts = tt.timeout, tt.attempts
			start := time.Now()
			res := w.Run(context.Background(), testJob())
			if res.OK || res.Error != tt.want || res.ExitCode != -1 {
				t.Errorf("Run = %+v, want error %q", res, tt.want)
			}
			if took := time.Since(start); took > w.Timeout+slack {
				t.Errorf("Run took %v", took)
			}
			if n := len(rc.requests()); n != tt.attempts {
				t.Errorf("%d requests, want %d", n, tt.attempts)
			}
		})
	}
}

func TestWebhookCancel(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, hang)
	w := testWebhook(t, rc.URL)
	w.Timeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res := w.Run(ctx, testJob())
	if res.OK || !strings.HasPrefix(res.Error, "cancelled after ") {
		t.Errorf("Run = %+v, want cancelled", res)
	}
	if took := time.Since(start); took > slack {
		t.Errorf("Run took %v", took)
	}
}

func TestWebhookRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	other := newReceiver(t, status(200, ""))
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	})
	// The host name differs too: localhost against 127.0.0.1.
	res := testWebhook(t, strings.Replace(rc.URL, "127.0.0.1", "localhost", 1)).Run(context.Background(), testJob())
	if res.OK || res.ExitCode != http.StatusFound || !strings.Contains(res.Error, "redirects are not followed") {
		t.Errorf("Run = %+v, want a refused redirect", res)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("%d requests, want 1 (a redirect is not retried)", n)
	}
}

func TestWebhookRedirectNotFollowedWithOwnClient(t *testing.T) {
	t.Parallel()
	other := newReceiver(t, status(200, ""))
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
	})
	w := testWebhook(t, rc.URL)
	w.Client = &http.Client{} // follows redirects by default
	if res := w.Run(context.Background(), testJob()); res.OK {
		t.Errorf("Run = %+v, want failure", res)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
}

func TestWebhookUntrustedCertificate(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	conns, handled := 0, 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		mu.Lock()
		handled++
		mu.Unlock()
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	w := testWebhook(t, srv.URL)
	w.Timeout = 10 * time.Second // a slow handshake on a loaded machine is not what this tests
	res := w.Run(context.Background(), testJob())
	if res.OK || !strings.Contains(res.Error, "certificate") {
		t.Errorf("Run = %+v, want a certificate error", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 || handled != 0 {
		t.Errorf("%d connections, %d requests handled; want 1 connection (not retried), 0 requests", conns, handled)
	}
}

func TestWebhookNeverShowsSecrets(t *testing.T) {
	t.Parallel()
	echo := newReceiver(t, status(http.StatusUnauthorized, "bad signature for key "+testSecret))
	res := testWebhook(t, echo.URL).Run(context.Background(), testJob())
	if res.OK || strings.Contains(res.Output+res.Error, testSecret) {
		t.Errorf("Run = %+v, shows the secret", res)
	}

	// Nothing listens there any more; the URL's query holds a token.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	w := testWebhook(t, gone.URL+"/hook?token=query-token-123")
	w.Timeout = 500 * time.Millisecond
	res = w.Run(context.Background(), testJob())
	if res.OK || !strings.Contains(res.Error, "could not reach the receiver") || strings.Contains(res.Error, "query-token-123") {
		t.Errorf("Run = %+v, want a connection error without the URL's query", res)
	}
}

func TestWebhookRefusesBadJob(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, status(200, ""))
	w := testWebhook(t, rc.URL)
	for _, ticket := range []string{"PROJ-1; touch /tmp/pwned", "$(id)", "PROJ-1\n", "../../etc/passwd"} {
		job := testJob()
		job.Ticket = ticket
		if res := w.Run(context.Background(), job); res.OK || !strings.HasPrefix(res.Error, "refused") {
			t.Errorf("ticket %q: Run = %+v, want refused", ticket, res)
		}
	}
	job := testJob()
	job.Attempt = ""
	if res := w.Run(context.Background(), job); res.OK || !strings.HasPrefix(res.Error, "refused") {
		t.Errorf("no attempt: Run = %+v, want refused", res)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("%d requests sent, want 0", n)
	}
	// A Webhook built without NewWebhook is checked too.
	bad := &Webhook{URL: "http://example.com/hook", Secret: testSecret}
	if res := bad.Run(context.Background(), testJob()); res.OK || !strings.HasPrefix(res.Error, "could not start") {
		t.Errorf("http URL: Run = %+v, want could not start", res)
	}
}

func TestNewWebhook(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, secret string
		want        string // "" when accepted, else part of the error
	}{
		{"https://deploy.example.com/hook", "k", ""},
		{"https://deploy.example.com:8443/hook?x=1", "k", ""},
		{"http://127.0.0.1:8080/hook", "k", ""},
		{"http://localhost/hook", "k", ""},
		{"http://[::1]:9000/", "k", ""},
		{"http://example.com/hook", "k", "must be https://"},
		{"http://127.0.0.1.example.com/", "k", "must be https://"},
		{"http://localhost.example.com/", "k", "must be https://"},
		{"ftp://deploy.example.com/", "k", "must be https://"},
		{"https:///path-only", "k", "must be https://"},
		{"deploy.example.com/hook", "k", "must be https://"},
		{"", "k", "must be https://"},
		{"https://user:hunter2@deploy.example.com/", "k", "has credentials"},
		{"https://deploy.example.com/\x7f", "k", "does not parse"},
		{"https://deploy.example.com/hook", "", "the secret is empty"},
	}
	for _, tt := range tests {
		w, err := NewWebhook(tt.url, tt.secret)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("NewWebhook(%q): %v", tt.url, err)
		case tt.want == "" && (w.URL != tt.url || w.Secret != tt.secret || w.Timeout != DefaultWebhookTimeout || w.MaxAttempts != DefaultMaxAttempts):
			t.Errorf("NewWebhook(%q) = %+v", tt.url, w)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("NewWebhook(%q): error %v, want one containing %q", tt.url, err, tt.want)
		case err != nil && (strings.Contains(err.Error(), "hunter2") || commands.ErrorCode(err) != commands.EINVALID):
			t.Errorf("NewWebhook(%q): error %q (code %s)", tt.url, err, commands.ErrorCode(err))
		}
	}
}

func TestSign(t *testing.T) {
	t.Parallel()
	// RFC 4231 test case 2.
	got := Sign("Jefe", []byte("what do ya want for nothing?"))
	want := "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}
