package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/cmd/internal/intake"
)

// TestIntakeSign: the headers `dobrobot intake sign` prints are accepted
// by the real listener, and a changed body is refused with them.
func TestIntakeSign(t *testing.T) {
	body := `{"id":"local-1","ticket":"PAY-1","status":"success","version":"1.0.0"}`
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	code, out, errs := run(t, body, map[string]string{"DOBROBOT_INTAKE_SECRET": "k3y"}, "intake", "sign", "--at", strconv.FormatInt(at.Unix(), 10))
	if code != 0 {
		t.Fatalf("intake sign: exit %d %s", code, errs)
	}
	headers := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("intake sign printed %q, not Header: value lines", out)
		}
		headers[k] = v
	}
	core := &fakeCore{}
	srv, err := intake.Start("127.0.0.1:0", intake.Options{Secret: "k3y", Service: core, Now: func() time.Time { return at.Add(time.Minute) }, Log: zerolog.New(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	post := func(body string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+srv.Addr()+"/builds", strings.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(body); got != http.StatusAccepted {
		t.Errorf("the signed body: %d, want 202", got)
	}
	if got := post(strings.Replace(body, "1.0.0", "6.6.6", 1)); got != http.StatusUnauthorized {
		t.Errorf("another body with the same headers: %d, want 401", got)
	}
	if len(core.builds) != 1 || core.builds[0].Delivery != "builds:local-1" {
		t.Errorf("the core got %+v, want the one signed build", core.builds)
	}

	// What the intake would refuse is refused here, saying why.
	for _, tc := range []struct {
		name, stdin string
		env         map[string]string
		args        []string
		want        string
	}{
		{"no secret", body, nil, nil, "--secret or DOBROBOT_INTAKE_SECRET"},
		{"a bad body", `{"id":"x"}`, nil, []string{"--secret", "k"}, `would answer 400: "status" is required`},
		{"over 1 MiB", `{"id":"x","status":"success","url":"` + strings.Repeat("a", intake.MaxBody) + `"}`, nil, []string{"--secret", "k"}, "over 1 MiB"},
	} {
		code, _, errs := run(t, tc.stdin, tc.env, append([]string{"intake", "sign"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d %q, want %d saying %q", tc.name, code, errs, exitUsage, tc.want)
		}
	}
}
