package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/cmd/internal/intake"
	"github.com/dobrobot/dobrobot/commands"
)

func TestIntakeConfig(t *testing.T) {
	env := lookupIn(map[string]string{"DOBROBOT_INTAKE_SECRET": "from-env", "GITHUB_WEBHOOK_SECRET": "gh-env"})
	c, err := parseConfig([]byte(`
intake:
  listen: :8088
  secret: ${DOBROBOT_INTAKE_SECRET}
  github_secret: ${GITHUB_WEBHOOK_SECRET}
  ticket_pattern: 'PAY-[0-9]+'
components:
  - {name: Backend, repo: acme/backend}
  - {name: worker, repo: Acme/Backend}
  - payments
  - {name: web}
`), env)
	if err != nil {
		t.Fatal(err)
	}
	want := IntakeConfig{Listen: "127.0.0.1:8088", Secret: "from-env", GitHubSecret: "gh-env", TicketPattern: "PAY-[0-9]+"}
	if diff := cmp.Diff(want, c.Intake); diff != "" {
		t.Errorf("intake (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"backend", "worker", "payments", "web"}, c.Components); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]string{"acme/backend": {"backend", "worker"}}, c.Repos()); diff != "" {
		t.Errorf("repos (-want +got):\n%s", diff)
	}
	if got := c.Policy().Components; !cmp.Equal(got, []string{"backend", "worker", "payments", "web"}) {
		t.Errorf("the core's components: %q", got)
	}
	// A delivery's answer is its inbox record: kept past GitHub's three
	// days of Redeliver with the intake on; the default otherwise.
	if got := c.inboxTTL(); got != 4*24*time.Hour {
		t.Errorf("inbox TTL with the intake on: %v, want 96h", got)
	}
	if got := (&Config{}).inboxTTL(); got != 0 {
		t.Errorf("inbox TTL without the intake: %v, want 0 (the core's default)", got)
	}
}

func TestIntakeConfigProblems(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"a host name", "intake: {listen: 'localhost:8088', secret: s}", "intake.listen: \"localhost:8088\": the host must be an IP address"},
		{"no secret", "intake: {listen: '127.0.0.1:8088'}", "neither intake.secret (POST /builds) nor intake.github_secret"},
		{"the http listener's address", "http: {listen: ':9090'}\nintake: {listen: ':9090', secret: s}", "intake.listen and http.listen are the same address"},
		{"a bad ticket pattern", "intake: {ticket_pattern: '[A-Z'}", "intake.ticket_pattern: error parsing regexp"},
		{"a repo that is not owner/name", "components: [{name: backend, repo: 'https://github.com/acme/backend'}]", "components[0].repo: \"https://github.com/acme/backend\" is not a GitHub repository"},
		{"a misspelt key of a component", "components: [{name: backend, repository: acme/backend}]", "a component has name and repo, not \"repository\""},
		{"a list as a component", "components: [[backend]]", "a component is a name or {name, repo}"},
		{"an unknown intake key", "intake: {listen: ':8088', secret: s, secrets: t}", "field secrets not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tc.yaml+"\n"), lookupIn(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	// Port 0 is a free port for each listener: not the same address.
	if _, err := parseConfig([]byte("http: {listen: '127.0.0.1:0'}\nintake: {listen: '127.0.0.1:0', secret: s}\n"), lookupIn(nil)); err != nil {
		t.Errorf("both listeners on port 0: %v", err)
	}
	// The secret's value is never in a problem.
	_, err := parseConfig([]byte("intake: {listen: 'example.com:1', secret: hunter2, github_secret: hunter3}\n"), lookupIn(nil))
	if err == nil || strings.Contains(err.Error(), "hunter") {
		t.Errorf("error %v: want one, without the secrets", err)
	}
}

// TestBuildGate: the intake reaches the Service only while this instance
// leads; otherwise CI is told to retry (503), and nothing is handled.
func TestBuildGate(t *testing.T) {
	core := &fakeCore{}
	leading := true
	g := &buildGate{leading: func() bool { return leading }}
	ask := func() error {
		_, err := g.Build(context.Background(), commands.Build{Delivery: "builds:1", Status: commands.BuildSuccess})
		return err
	}
	if err := ask(); commands.ErrorCode(err) != commands.EUNAVAILABLE {
		t.Errorf("between terms (no Service): %v, want EUNAVAILABLE", err)
	}
	g.set(core)
	if err := ask(); err != nil {
		t.Errorf("leading: %v", err)
	}
	leading = false
	if err := ask(); commands.ErrorCode(err) != commands.EUNAVAILABLE {
		t.Errorf("deposed (a standby): %v, want EUNAVAILABLE", err)
	}
	if len(core.builds) != 1 {
		t.Errorf("the Service handled %d builds, want the one asked while leading", len(core.builds))
	}
}

// fakeCore records the builds the listener hands on.
type fakeCore struct{ builds []commands.Build }

func (f *fakeCore) Build(_ context.Context, b commands.Build) (commands.BuildAnswer, error) {
	f.builds = append(f.builds, b)
	return commands.BuildAnswer{Outcome: commands.BuildChanged, Release: 1, State: commands.State("requested")}, nil
}

// TestConsoleServesIntake: with intake.listen set, the console serves the
// intake while it runs: an unsigned delivery is refused, a signed one
// reaches the console's Service.
func TestConsoleServesIntake(t *testing.T) {
	cfg, _ := consoleConfig(t, "intake: {listen: '127.0.0.1:0', secret: k3y}\n")
	in, feed := io.Pipe()
	var out, errs lockedBuffer
	done := make(chan int)
	go func() {
		done <- Main(context.Background(), []string{"--config", cfg, "console"}, in, &out, &errs, lookupIn(nil))
	}()
	addrRe := regexp.MustCompile(`CI intake listening on (127\.0\.0\.1:[0-9]+)`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := addrRe.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		feed.Close()
		t.Fatalf("the console did not say where the intake listens: %s %s", out.String(), errs.String())
	}
	body := []byte(`{"id":"console-1","ticket":"PAY-1","status":"success"}`)
	post := func(sign bool) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/builds", bytes.NewReader(body))
		if sign {
			ts, sig := intake.Sign("k3y", time.Now(), body)
			req.Header.Set(intake.TimestampHeader, ts)
			req.Header.Set(intake.SignatureHeader, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(false); got != http.StatusUnauthorized {
		t.Errorf("unsigned: %d, want 401", got)
	}
	// Past the signature check, the answer is the core's (with the
	// stand-in core, 503; with the real one, 202): not a refusal of the
	// listener's own.
	if got := post(true); got == http.StatusUnauthorized || got == http.StatusNotFound || got == http.StatusBadRequest {
		t.Errorf("signed: %d, want the core's answer", got)
	}
	feed.Close()
	if code := <-done; code != 0 {
		t.Errorf("console: exit %d %s", code, errs.String())
	}
}

// intakeSecret signs the deliveries of the cluster tests.
const intakeSecret = "cluster-intake-secret"

var intakeListening = regexp.MustCompile(`"addr":"(127\.0\.0\.1:\d+)"[^\n]*intake listening`)

// TestStandbyIntake: on PostgreSQL every instance serves the intake, and
// only the leader hands a delivery to its Service: a standby answers 503
// with Retry-After, so CI retries (and reaches the leader through the
// proxy in front of them).
func TestStandbyIntake(t *testing.T) {
	c := startCluster(t, clusterOptions{instances: 2, tickets: 1, intake: true})
	lead, _ := c.leader(0, 20*time.Second)
	body := []byte(`{"id":"cluster-1","ticket":"PAY-1","status":"success"}`)
	for _, p := range c.procs {
		var m []string
		for deadline := time.Now().Add(10 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			m = intakeListening.FindStringSubmatch(p.logs.String())
		}
		if m == nil {
			t.Fatalf("%s did not log the address of its intake", p.name)
		}
		post := func() (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+m[1]+"/builds", bytes.NewReader(body))
			ts, sig := intake.Sign(intakeSecret, time.Now(), body)
			req.Header.Set(intake.TimestampHeader, ts)
			req.Header.Set(intake.SignatureHeader, sig)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp, answer
		}
		resp, answer := post()
		// The leader's Service comes a moment after its term begins: until
		// then it answers as a standby, which CI's retry covers.
		for deadline := time.Now().Add(10 * time.Second); p == lead && strings.Contains(string(answer), "does not lead") && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			resp, answer = post()
		}
		standby := strings.Contains(string(answer), "does not lead")
		switch {
		case p == lead && standby:
			t.Errorf("the leader %s answered as a standby: %d %s", p.name, resp.StatusCode, answer)
		case p != lead && (resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !standby):
			t.Errorf("the standby %s answered %d (Retry-After %q) %s, want 503 saying it does not lead", p.name, resp.StatusCode, resp.Header.Get("Retry-After"), answer)
		}
	}
	c.terminate()
	for _, p := range c.procs {
		if strings.Contains(p.logs.String(), intakeSecret) {
			t.Errorf("the intake secret appears in the logs of %s", p.name)
		}
	}
}

// TestConfigCheckIntake: config check says what the intake serves, and
// warns when GitHub's builds could match no component.
func TestConfigCheckIntake(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"both endpoints", "intake: {listen: ':8088', secret: a, github_secret: b}\ncomponents: [{name: backend, repo: acme/backend}]\n",
			"intake: POST /builds and POST /github (1 repository) on 127.0.0.1:8088\n"},
		{"GitHub without a repo", "intake: {listen: ':8088', github_secret: b}\ncomponents: [backend]\n",
			"intake.github_secret is set and no component has a repo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := consoleConfig(t, tc.yaml)
			_, out, errs := run(t, "", nil, "--config", cfg, "config", "check")
			if !strings.Contains(out, tc.want) {
				t.Errorf("config check said:\n%s%s\nwant a line with %q", out, errs, tc.want)
			}
		})
	}
}
