package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/cmd/internal/intake"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/failpoint"
)

// TestCrashAroundDelivery kills the bot (kill -9) at each failpoint of a CI
// delivery's transaction, starts it again and lets CI retry the same
// delivery: killed before the commit, the retry is the first time it is
// carried out (202); killed after it, before the answer, the retry answers
// 200 with the same release. Either way the audit log holds one request.
func TestCrashAroundDelivery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		failpoint string
		retry     int // the status the retry is answered with
	}{
		{failpoint.BeforeBuildCommit, http.StatusAccepted},
		{failpoint.AfterBuildCommitBeforeAnswer, http.StatusOK},
	} {
		t.Run(tc.failpoint, func(t *testing.T) {
			t.Parallel()
			const secret = "crash-intake-secret"
			w := newWorld(t, worldOptions{extra: "intake: {listen: \"127.0.0.1:0\", secret: " + secret + "}\n"})
			body := []byte(`{"id":"crash-1","ticket":"PAY-1","version":"1.2.3","status":"success"}`)
			post := func(p *proc) (*http.Response, []byte, error) {
				var m []string
				for deadline := time.Now().Add(10 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					m = intakeListening.FindStringSubmatch(p.logs.String())
				}
				if m == nil {
					t.Fatalf("the bot did not log the address of its intake")
				}
				req, _ := http.NewRequest(http.MethodPost, "http://"+m[1]+"/builds", bytes.NewReader(body))
				ts, sig := intake.Sign(secret, time.Now(), body)
				req.Header.Set(intake.TimestampHeader, ts)
				req.Header.Set(intake.SignatureHeader, sig)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return nil, nil, err
				}
				defer resp.Body.Close()
				answer, err := io.ReadAll(resp.Body)
				return resp, answer, err
			}

			p := w.start(tc.failpoint)
			if resp, _, err := post(p); err == nil {
				t.Fatalf("the delivery was answered %d though the bot died at %s", resp.StatusCode, tc.failpoint)
			}
			p.waitCrash(tc.failpoint)

			p = w.start("")
			resp, answer, err := post(p)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Release uint64 `json:"release"`
				State   string `json:"state"`
			}
			if err := json.Unmarshal(answer, &got); err != nil || resp.StatusCode != tc.retry || got.Release == 0 {
				t.Errorf("the retry was answered %d %s (%v), want %d naming the release", resp.StatusCode, answer, err, tc.retry)
			}
			p.stop()
			requests := 0
			for _, e := range w.audit("PAY-1") {
				if e.Action == commands.ActionRequest {
					requests++
					if e.Actor != "ci" || e.Via != "ci" {
						t.Errorf("request by %q via %q, want ci via ci", e.Actor, e.Via)
					}
				}
			}
			if requests != 1 {
				t.Errorf("%d request entries for PAY-1, want 1", requests)
			}
		})
	}
}
