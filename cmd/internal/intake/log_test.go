package intake

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// syncBuffer is a log the listener's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRefusalLog: a refused delivery is logged as a refusal with its
// reason, and the log holds neither secret, nor a signature sent, nor the
// body.
func TestRefusalLog(t *testing.T) {
	var log syncBuffer
	core := &fakeCore{}
	base := start(t, core, func(o *Options) { o.Log = zerolog.New(&log) })
	body := []byte(`{"id":"leak-check","ticket":"REL-1","status":"success","url":"https://ci.example.com/private-token-xyz"}`)
	req := signed(t, base, "an-attacker's-guess", now, body)
	sent := req.Header.Get(SignatureHeader)
	if g := do(t, req); g.Status != 401 {
		t.Fatalf("a wrong signature: %d, want 401", g.Status)
	}
	if g := do(t, hook(t, base, "another-guess", "workflow_run", "d-1", readTestdata(t, "workflow_run.completed.json"))); g.Status != 401 {
		t.Fatalf("a wrong GitHub signature: %d, want 401", g.Status)
	}
	out := log.String()
	if strings.Count(out, "delivery refused") != 2 || !strings.Contains(out, "does not match the body") {
		t.Errorf("the log does not say both deliveries were refused, and why:\n%s", out)
	}
	for _, secret := range []string{testSecret, testGHSecret, "an-attacker's-guess", "another-guess", strings.TrimPrefix(sent, "sha256="), "leak-check", "private-token-xyz", "acme/backend"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q:\n%s", secret, out)
		}
	}
	if n := len(core.got()); n != 0 {
		t.Errorf("the core was given %d builds, want none", n)
	}
}
