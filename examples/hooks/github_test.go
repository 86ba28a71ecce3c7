//go:build unix

package hooks_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/hook"
)

// dispatchPath is where the cookbook's block sends its workflow_dispatch.
const dispatchPath = "/repos/example/shop/actions/workflows/deploy.yml/dispatches"

// apiRequest is what a stand-in for GitHub's API saw of one request.
type apiRequest struct {
	Method        string
	Path          string
	Authorization string
	Accept        string
	APIVersion    string
	ContentType   string
	Signature     string
	Body          map[string]any
}

// fakeAPI is a stand-in for GitHub's API on 127.0.0.1 that records every
// request and answers each with status and body.
type fakeAPI struct {
	*httptest.Server
	mu  sync.Mutex
	got []apiRequest
}

func newFakeAPI(t *testing.T, status int, body string) *fakeAPI {
	t.Helper()
	api := &fakeAPI{}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := apiRequest{
			Method: r.Method, Path: r.URL.Path,
			Authorization: r.Header.Get("Authorization"), Accept: r.Header.Get("Accept"),
			APIVersion: r.Header.Get("X-GitHub-Api-Version"), ContentType: r.Header.Get("Content-Type"),
			Signature: r.Header.Get(hook.SignatureHeader),
		}
		if err := json.Unmarshal(raw, &req.Body); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		api.mu.Lock()
		api.got = append(api.got, req)
		api.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(api.Close)
	return api
}

func (api *fakeAPI) requests() []apiRequest {
	api.mu.Lock()
	defer api.mu.Unlock()
	return append([]apiRequest(nil), api.got...)
}

// TestGitHubDispatchWithCurl runs github-dispatch.sh with the real curl, the
// cookbook block's argv and --api pointing at a stand-in for GitHub on
// 127.0.0.1, and checks the request GitHub would get, and that an answer
// other than 2xx fails the hook with GitHub's message in its output.
func TestGitHubDispatchWithCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed; TestScripts checks the command line with a stub")
	}
	block := snippets(t)["github-dispatch.sh"]
	const token = "ghp_0123456789abcdefABCDEF"
	tests := []struct {
		name       string
		phase      commands.Phase
		status     int
		answer     string
		wantStatus int
		wantOutput string
	}{
		{name: "start is dispatched", phase: commands.PhaseStart, status: http.StatusNoContent},
		{name: "cancel is dispatched", phase: commands.PhaseCancel, status: http.StatusNoContent},
		{
			name: "GitHub refuses", phase: commands.PhaseStart, status: http.StatusUnprocessableEntity,
			answer:     `{"message":"Unexpected inputs provided: [\"attempt\"]"}`,
			wantStatus: 22, wantOutput: `Unexpected inputs provided: [\"attempt\"]`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t, tc.status, tc.answer)
			args := append(slices.Clip(block.args(tc.phase)), "--api="+api.URL)
			got := runScript(t, "github-dispatch.sh", args, block.Env, release{
				phase: tc.phase, real: []string{"curl"},
				vars: map[string]string{"GITHUB_TOKEN": token, "DOBROBOT_VERSION": "v2.4.0-rc.1"},
			})
			want := []apiRequest{{
				Method: http.MethodPost, Path: dispatchPath,
				Authorization: "Bearer " + token, Accept: "application/vnd.github+json",
				APIVersion: "2022-11-28", ContentType: "application/json",
				Body: map[string]any{
					"ref": "main",
					"inputs": map[string]any{
						"environment": "qa", "version": "v2.4.0-rc.1", "ticket": "PAY-123",
						"phase": string(tc.phase), "attempt": "9f86d081884c7d65",
					},
				},
			}}
			if diff := cmp.Diff(want, api.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s\noutput:\n%s", diff, got.output)
			}
			if got.status != tc.wantStatus {
				t.Errorf("exit status %d, want %d; output:\n%s", got.status, tc.wantStatus, got.output)
			}
			if !strings.Contains(got.output, tc.wantOutput) {
				t.Errorf("the output does not contain %q:\n%s", tc.wantOutput, got.output)
			}
			if strings.Contains(got.output, token) {
				t.Errorf("the output shows the token:\n%s", got.output)
			}
		})
	}
}

// TestWebhookHookCannotDispatch pins why the cookbook calls GitHub from an
// exec hook: dobrobot's webhook executor, pointed at the workflow_dispatch
// endpoint, POSTs its own signed body, without the ref and inputs GitHub
// needs and without an Authorization header. When this test fails, the
// executor has learnt to send such a request: show it in the GitHub section
// of docs/hooks-cookbook.md.
func TestWebhookHookCannotDispatch(t *testing.T) {
	api := newFakeAPI(t, http.StatusNoContent, "")
	const secret = "webhook-secret-for-tests"
	w, err := hook.NewWebhook(api.URL+dispatchPath, secret)
	if err != nil {
		t.Fatal(err)
	}
	w.Timeout = 5 * time.Second
	job := commands.Job{
		Phase: commands.PhaseStart, Attempt: "9f86d081884c7d65", Ticket: "PAY-123",
		Requester: "U01REQ", Components: []string{"backend"},
	}
	if res := w.Run(t.Context(), job); !res.OK {
		t.Fatalf("the webhook failed: %s", res.Error)
	}
	got := api.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1: %+v", len(got), got)
	}
	req := got[0]
	if req.Method != http.MethodPost || req.Path != dispatchPath {
		t.Errorf("request %s %s, want POST %s", req.Method, req.Path, dispatchPath)
	}
	if req.Authorization != "" {
		t.Errorf("the webhook sent Authorization %q: it can now authenticate to GitHub; update docs/hooks-cookbook.md", req.Authorization)
	}
	if !strings.HasPrefix(req.Signature, "sha256=") {
		t.Errorf("%s is %q, want sha256=…", hook.SignatureHeader, req.Signature)
	}
	for _, key := range []string{"ref", "inputs"} {
		if _, ok := req.Body[key]; ok {
			t.Errorf("the webhook's body has %q: it can now carry a workflow_dispatch; update docs/hooks-cookbook.md", key)
		}
	}
	if req.Body["ticket"] != "PAY-123" || req.Body["phase"] != "start" {
		t.Errorf("the webhook's body is not dobrobot's own: %v", req.Body)
	}
}
