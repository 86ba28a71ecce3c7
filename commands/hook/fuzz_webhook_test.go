package hook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// FuzzWebhookRequest builds webhook requests from arbitrary jobs and
// secrets and sends them to a real receiver on 127.0.0.1 (issue 12, the
// tests paragraph). A job checkJob refuses, or one without an attempt ID,
// sends nothing. Any other is sent once, and what the receiver gets is what
// a receiver relies on: a JSON body that decodes, with no unknown field, to
// exactly the job's fields; a signature header that verifies with the secret
// over the exact body received; the idempotency key equal to the attempt;
// no CR or LF in any header value; the secret nowhere in the result.
func FuzzWebhookRequest(f *testing.F) {
	j := testJob()
	f.Add(testSecret, j.Ticket, string(j.Phase), j.Requester, j.Admin, j.Attempt, strings.Join(j.Components, ","))
	f.Add("k", "PAY-1", "finish", "U1", "", "a", "")
	f.Add("k", "PAY-1", "cancel", "U1", "U2", "a-b.c_d", "x,y,z")
	f.Add("k\r\nX-Evil: 1", "PAY-1\r\nX-Evil: 1", "start", "U1", "U2", "a\r\nX-Evil: 1", "backend")
	f.Add("\"}{", "PAY-1", "start", "U1\"", "U2", "id", "back\"end")
	f.Add("k", "PAY-1", "start", "U1", "U2", "", "backend")
	f.Add("k", "pay-1", "deploy", "-rf", "../x", "--help", "a,,b")
	f.Add("k", "PAY-1", "start", "U1", "U2", strings.Repeat("a", maxName+1), "backend")

	var (
		mu  sync.Mutex
		got []request
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, request{r.Header.Clone(), body})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	f.Cleanup(srv.Close)

	f.Fuzz(func(t *testing.T, secret, ticket, phase, requester, admin, attempt, comps string) {
		if secret == "" {
			return // NewWebhook refuses it; Run refuses it too (TestWebhookRefusesBadJob)
		}
		var components []string
		if comps != "" {
			components = strings.Split(comps, ",")
		}
		job := commands.Job{Phase: commands.Phase(phase), Attempt: attempt, Ticket: ticket, Requester: requester,
			Admin: admin, Components: components}
		w := &Webhook{URL: srv.URL + "/deploy", Secret: secret, Timeout: 10 * time.Second, MaxAttempts: 1}
		mu.Lock()
		got = nil
		mu.Unlock()

		res := w.Run(context.Background(), job)

		mu.Lock()
		reqs := append([]request(nil), got...)
		mu.Unlock()
		if len(secret) >= 4 && (strings.Contains(res.Error, secret) || strings.Contains(res.Output, secret)) {
			t.Errorf("the secret is in the result %+v", res)
		}
		if checkJob(job) != nil || attempt == "" {
			if len(reqs) != 0 || res.OK || res.Error == "" {
				t.Fatalf("a job that must be refused: %d requests sent, result %+v", len(reqs), res)
			}
			return
		}
		if !res.OK || len(reqs) != 1 {
			t.Fatalf("a valid job: %d requests, result %+v; want one request, OK", len(reqs), res)
		}
		r := reqs[0]
		for name, values := range r.Header {
			for _, v := range values {
				if strings.ContainsAny(v, "\r\n") {
					t.Errorf("header %s carries CR or LF: %q", name, v)
				}
			}
		}
		if keys := r.Header.Values(IdempotencyHeader); len(keys) != 1 || keys[0] != attempt {
			t.Errorf("%s: %q, want exactly [%q]", IdempotencyHeader, keys, attempt)
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(r.Body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if sigs := r.Header.Values(SignatureHeader); len(sigs) != 1 || !hmac.Equal([]byte(sigs[0]), []byte(want)) {
			t.Errorf("%s: %q, want exactly [%q] (HMAC-SHA256 of the body received)", SignatureHeader, sigs, want)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		dec := json.NewDecoder(bytes.NewReader(r.Body))
		dec.DisallowUnknownFields()
		var p payload
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("body %q: %v", r.Body, err)
		}
		if dec.More() {
			t.Errorf("body %q: more after the JSON object", r.Body)
		}
		wantP := payload{Ticket: ticket, Phase: commands.Phase(phase), Requester: requester, Admin: admin,
			Components: components, Attempt: attempt, Env: commands.DefaultEnv}
		if wantP.Components == nil {
			wantP.Components = []string{} // sent as [], never null
		}
		if diff := cmp.Diff(wantP, p); diff != "" {
			t.Errorf("body (-job +decoded):\n%s", diff)
		}
	})
}
