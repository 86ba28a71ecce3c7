package intake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// hook is a POST /github as GitHub sends it: the event's name, a delivery
// ID, and the body signed with secret (X-Hub-Signature-256).
func hook(t *testing.T, base, secret, event, delivery string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/test")
	return req
}

// edit returns the testdata payload name with fields changed: path is a
// dotted path into the JSON, value its new value.
func edit(t *testing.T, name string, changes map[string]any) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(readTestdata(t, name), &doc); err != nil {
		t.Fatal(err)
	}
	for path, v := range changes {
		parts := strings.Split(path, ".")
		m := doc
		for _, p := range parts[:len(parts)-1] {
			m = m[p].(map[string]any)
		}
		m[parts[len(parts)-1]] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGitHubEvents(t *testing.T) {
	changed := commands.BuildAnswer{Outcome: commands.BuildChanged, Release: 3, State: "requested"}
	wr := readTestdata(t, "workflow_run.completed.json")
	cs := readTestdata(t, "check_suite.completed.json")
	wrBuild := commands.Build{
		Delivery: "github:72d3162e-cc78-11e3-81ab-4c9367dc0958", BodyHash: sum(wr), Source: "github", ID: "90210001",
		Ticket: "REL-42", Components: []string{"backend", "worker"}, Version: "4f2a9c1e7b3d",
		Commit: "4f2a9c1e7b3d5a6f8091c2d3e4f5a6b7c8d9e0f1", Branch: "feature/REL-42-faster-login",
		URL: "https://github.com/acme/backend/actions/runs/90210001", Status: commands.BuildSuccess, Received: now,
	}
	csBuild := commands.Build{
		Delivery: "github:72d3162e-cc78-11e3-81ab-4c9367dc0958", BodyHash: sum(cs), Source: "github", ID: "55502",
		Ticket: "REL-43", Components: []string{"backend", "worker"}, Version: "b7e1d2c3a4f5",
		Commit: "b7e1d2c3a4f5061728394a5b6c7d8e9f00112233", Branch: "main",
		URL: "https://github.com/acme/backend/commit/b7e1d2c3a4f5061728394a5b6c7d8e9f00112233/checks", Status: commands.BuildFailure, Received: now,
	}
	withStatus := func(b commands.Build, body []byte, s commands.BuildStatus) *commands.Build {
		b.BodyHash, b.Status = sum(body), s
		return &b
	}
	cancelled := edit(t, "workflow_run.completed.json", map[string]any{"workflow_run.conclusion": "cancelled"})
	timedOut := edit(t, "workflow_run.completed.json", map[string]any{"workflow_run.conclusion": "timed_out"})
	neutral := edit(t, "workflow_run.completed.json", map[string]any{"workflow_run.conclusion": "neutral"})
	csSuccess := edit(t, "check_suite.completed.json", map[string]any{"check_suite.conclusion": "success"})
	upperRepo := edit(t, "workflow_run.completed.json", map[string]any{"repository.full_name": "Acme/Backend"})
	tests := []struct {
		name   string
		event  string
		body   []byte
		status int
		build  *commands.Build
	}{
		{"a successful workflow run", "workflow_run", wr, 202, &wrBuild},
		{"a cancelled run failed", "workflow_run", cancelled, 202, withStatus(wrBuild, cancelled, commands.BuildFailure)},
		{"a timed-out run failed", "workflow_run", timedOut, 202, withStatus(wrBuild, timedOut, commands.BuildFailure)},
		{"a neutral run is pending", "workflow_run", neutral, 202, withStatus(wrBuild, neutral, commands.BuildPending)},
		{"the repository's case does not matter", "workflow_run", upperRepo, 202, withStatus(wrBuild, upperRepo, commands.BuildSuccess)},
		{"a failed check suite, ticket from the commit message", "check_suite", cs, 202, &csBuild},
		{"a successful check suite", "check_suite", csSuccess, 202, withStatus(csBuild, csSuccess, commands.BuildSuccess)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := &fakeCore{answer: changed}
			base := start(t, core, nil)
			g := do(t, hook(t, base, testGHSecret, tt.event, "72d3162e-cc78-11e3-81ab-4c9367dc0958", tt.body))
			if diff := cmp.Diff(got{Status: tt.status, Body: reply{Release: 3, State: "requested"}}, g); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]commands.Build{*tt.build}, core.got()); diff != "" {
				t.Errorf("given to the core (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGitHubNotTaken: what the intake answers without asking the core.
func TestGitHubNotTaken(t *testing.T) {
	wr := readTestdata(t, "workflow_run.completed.json")
	big := append(bytes.Repeat([]byte(" "), MaxBody), wr...)
	tests := []struct {
		name   string
		req    func(t *testing.T, base string) *http.Request
		status int
		reason string
	}{
		{"ping", func(t *testing.T, base string) *http.Request {
			return hook(t, base, testGHSecret, "ping", "d-1", readTestdata(t, "ping.json"))
		}, 200, ""},
		{"an event the intake does not handle", func(t *testing.T, base string) *http.Request {
			return hook(t, base, testGHSecret, "push", "d-2", readTestdata(t, "push.json"))
		}, 204, ""},
		{"an event go-github does not know", func(t *testing.T, base string) *http.Request {
			return hook(t, base, testGHSecret, "tea_brewed", "d-3", []byte(`{"cups":2}`))
		}, 204, ""},
		{"a workflow run that was only requested", func(t *testing.T, base string) *http.Request {
			return hook(t, base, testGHSecret, "workflow_run", "d-4", edit(t, "workflow_run.completed.json", map[string]any{"action": "requested"}))
		}, 204, ""},
		{"a check suite that was rerequested", func(t *testing.T, base string) *http.Request {
			return hook(t, base, testGHSecret, "check_suite", "d-5", edit(t, "check_suite.completed.json", map[string]any{"action": "rerequested"}))
		}, 204, ""},
		{"an unknown repository", func(t *testing.T, base string) *http.Request {
			return hook(t, base, testGHSecret, "workflow_run", "d-6", edit(t, "workflow_run.completed.json", map[string]any{"repository.full_name": "acme/frontend"}))
		}, 422, `"acme/frontend"`},
		{"another secret", func(t *testing.T, base string) *http.Request {
			return hook(t, base, "not-the-secret", "workflow_run", "d-7", wr)
		}, 401, "signature"},
		{"no signature", func(t *testing.T, base string) *http.Request {
			r := hook(t, base, testGHSecret, "workflow_run", "d-8", wr)
			r.Header.Del("X-Hub-Signature-256")
			return r
		}, 401, "missing X-Hub-Signature-256"},
		{"only the SHA-1 signature", func(t *testing.T, base string) *http.Request {
			r := hook(t, base, testGHSecret, "workflow_run", "d-9", wr)
			r.Header.Del("X-Hub-Signature-256")
			m := hmac.New(sha1.New, []byte(testGHSecret))
			m.Write(wr)
			r.Header.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(m.Sum(nil)))
			return r
		}, 401, "missing X-Hub-Signature-256"},
		{"a signed ping with a wrong signature is refused too", func(t *testing.T, base string) *http.Request {
			return hook(t, base, "not-the-secret", "ping", "d-10", readTestdata(t, "ping.json"))
		}, 401, "signature"},
		{"no delivery ID", func(t *testing.T, base string) *http.Request {
			r := hook(t, base, testGHSecret, "workflow_run", "", wr)
			return r
		}, 400, "X-GitHub-Delivery"},
		{"a payload that does not parse", func(t *testing.T, base string) *http.Request {
			return hook(t, base, testGHSecret, "workflow_run", "d-11", []byte(`{"action":`))
		}, 400, "does not parse"},
		{"an unsupported content type", func(t *testing.T, base string) *http.Request {
			r := hook(t, base, testGHSecret, "workflow_run", "d-12", wr)
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, 400, "content type"},
		{"over 1 MiB", func(t *testing.T, base string) *http.Request {
			return hook(t, base, testGHSecret, "workflow_run", "d-13", big)
		}, 413, "1 MiB"},
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
