package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/cmd/internal/monitor"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
	"github.com/dobrobot/dobrobot/tracker"
)

func TestHTTPListenConfig(t *testing.T) {
	for _, tc := range []struct {
		listen, want, wantErr string
	}{
		{listen: "", want: ""},
		{listen: ":9090", want: "127.0.0.1:9090"},
		{listen: "127.0.0.1:0", want: "127.0.0.1:0"},
		{listen: "localhost:9090", wantErr: `"localhost:9090": the host must be an IP address (127.0.0.1 keeps it local), not a name`},
		{listen: "0.0.0.0:9090", want: "0.0.0.0:9090"},
		{listen: "[::1]:9090", want: "[::1]:9090"},
		{listen: "9090", wantErr: "is not host:port"},
		{listen: "example.com:9090", wantErr: "the host must be an IP address"},
		{listen: "127.0.0.1:http", wantErr: "the port must be a number"},
		{listen: "127.0.0.1:70000", wantErr: "the port must be a number"},
	} {
		c, err := parseConfig([]byte(fmt.Sprintf("http: {listen: %q}\n", tc.listen)), lookupIn(nil))
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), "http.listen: ") || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("listen %q: error %v, want one saying %q", tc.listen, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("listen %q: %v", tc.listen, err)
		case c.HTTP.Listen != tc.want:
			t.Errorf("listen %q became %q, want %q", tc.listen, c.HTTP.Listen, tc.want)
		}
	}
}

// scrape returns the text of /metrics.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

// metricValue returns the value of the series line that starts with series
// (name and labels), or "" when there is none.
func metricValue(text, series string) string {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// TestMetrics feeds the metrics what the Service, the bot, Slack's answers
// and the tracker report, and reads them back from /metrics, with the state
// read from the database at the scrape.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	db, err := storage.Open(filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The queue: two open releases, one deploying with a lock and a hook
	// running, and a frozen component; one message in the outbox.
	err = db.Update(ctx, func(tx commands.Tx) error {
		a, err := tx.PutRelease(commands.Release{Ticket: "PAY-1", State: commands.StateDeploying, Locks: []string{"backend"},
			Running: &commands.HookRun{Phase: commands.PhaseStart, Attempt: "00000000000000aa"}})
		if err != nil {
			return err
		}
		if _, err := tx.PutRelease(commands.Release{Ticket: "PAY-2", State: commands.StateRequested}); err != nil {
			return err
		}
		if err := tx.PutLock(commands.Lock{Component: "backend", Release: a.ID, Ticket: "PAY-1"}); err != nil {
			return err
		}
		if err := tx.PutLock(commands.Lock{Component: "ios"}); err != nil {
			return err
		}
		_, err = tx.Emit(commands.Effect{Kind: commands.EffectDM, User: requester, Text: commands.Text{commands.Plain("hi")}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var up atomic.Bool
	up.Store(true)
	m := monitor.NewMetrics(db, up.Load, zerolog.Nop())

	m.Command(commands.VerbDobro, commands.OutcomeOK, 20*time.Millisecond)
	m.Command(commands.VerbDobro, commands.OutcomeOK, 30*time.Millisecond)
	m.Command(commands.VerbAccept, commands.OutcomeRefused, time.Millisecond)
	m.Command(commands.VerbUnknown, commands.OutcomeRefused, time.Millisecond)
	m.Hook(commands.HookResult{Phase: commands.PhaseStart, OK: true, Duration: 3 * time.Second})
	m.Hook(commands.HookResult{Phase: commands.PhaseFinish, OK: false, Duration: time.Minute})
	m.Ack(2*time.Millisecond, true)
	m.Ack(5*time.Second, false)

	// Slack's answers, through the counting transport.
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "chat.postMessage") {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer slack.Close()
	hc := &http.Client{Transport: m.ObserveSlack(http.DefaultTransport)}
	for _, method := range []string{"chat.postMessage", "chat.postMessage", "chat.update"} {
		resp, err := hc.Post(slack.URL+"/api/"+method, "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := hc.Get("http://127.0.0.1:1/api/auth.test"); err == nil {
		t.Fatal("a request to a closed port succeeded")
	}

	// The tracker's lookups.
	static, err := tracker.NewStatic([]commands.Ticket{{Key: "PAY-1", Summary: "x"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	tr := m.ObserveTracker(static)
	if _, err := tr.Ticket(ctx, "PAY-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Ticket(ctx, "PAY-404"); commands.ErrorCode(err) != commands.ENOTFOUND {
		t.Fatalf("lookup of a missing ticket: %v", err)
	}

	srv, err := monitor.Start("127.0.0.1:0", monitor.Options{Store: db, Connected: up.Load, Metrics: m}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	text := scrape(t, "http://"+srv.Addr()+"/metrics")
	for series, want := range map[string]string{
		`dobrobot_commands_total{command="dobro",outcome="ok"}`:                     "2",
		`dobrobot_commands_total{command="accept",outcome="refused"}`:               "1",
		`dobrobot_commands_total{command="unknown",outcome="refused"}`:              "1",
		`dobrobot_command_duration_seconds_count{command="dobro"}`:                  "2",
		`dobrobot_command_duration_seconds_sum{command="dobro"}`:                    "0.05",
		`dobrobot_hooks_total{phase="start",result="ok"}`:                           "1",
		`dobrobot_hooks_total{phase="finish",result="failed"}`:                      "1",
		`dobrobot_hook_duration_seconds_sum{phase="finish"}`:                        "60",
		`dobrobot_slack_acks_total{result="ok"}`:                                    "1",
		`dobrobot_slack_acks_total{result="failed"}`:                                "1",
		`dobrobot_slack_ack_duration_seconds_count`:                                 "2",
		`dobrobot_slack_api_requests_total{method="chat.postMessage",status="429"}`: "2",
		`dobrobot_slack_api_requests_total{method="chat.update",status="200"}`:      "1",
		`dobrobot_slack_api_requests_total{method="auth.test",status="error"}`:      "1",
		`dobrobot_tracker_lookups_total{outcome="ok"}`:                              "1",
		`dobrobot_tracker_lookups_total{outcome="not_found"}`:                       "1",
		`dobrobot_tracker_lookup_duration_seconds_count`:                            "2",
		`dobrobot_queue_length`:                                                     "2",
		`dobrobot_releases_open{state="deploying"}`:                                 "1",
		`dobrobot_releases_open{state="requested"}`:                                 "1",
		`dobrobot_releases_open{state="failed"}`:                                    "0",
		`dobrobot_locks_held`:                                                       "1",
		`dobrobot_components_frozen`:                                                "1",
		`dobrobot_hooks_running`:                                                    "1",
		`dobrobot_outbox_pending`:                                                   "1",
		`dobrobot_slack_connected`:                                                  "1",
		`dobrobot_database_up`:                                                      "1",
	} {
		if got := metricValue(text, series); got != want {
			t.Errorf("%s = %q, want %q", series, got, want)
		}
	}
	if !strings.Contains(text, "go_goroutines ") || !strings.Contains(text, "process_resident_memory_bytes ") {
		t.Error("/metrics lacks the Go and process collectors")
	}
	problems, err := testutil.GatherAndLint(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "dobrobot_") {
			t.Errorf("metric %s: %s", p.Metric, p.Text)
		}
	}

	up.Store(false)
	db.Close()
	text = scrape(t, "http://"+srv.Addr()+"/metrics")
	if metricValue(text, "dobrobot_database_up") != "0" || metricValue(text, "dobrobot_slack_connected") != "0" {
		t.Errorf("with the database closed and Slack down: database_up %q, slack_connected %q; want 0 and 0",
			metricValue(text, "dobrobot_database_up"), metricValue(text, "dobrobot_slack_connected"))
	}
	resp, err := http.Get("http://" + srv.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/healthz with the database closed: %s", resp.Status)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := http.Get("http://" + srv.Addr() + "/healthz"); err == nil {
		t.Error("the listener still answers after Close")
	}
}

var listenLine = regexp.MustCompile(`"addr":"([^"]+)","time":"[^"]+","message":"http listening`)

// TestHTTPBinary runs the real bot with http.listen on and reads /healthz and
// /metrics while it works, while Slack is unreachable, and after it is back.
func TestHTTPBinary(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{http: true})
	p := w.start("")
	var addr string
	// The timeouts below only bound how long a failure takes to show on a
	// loaded machine; every wait is for a condition the bot reports.
	if !waitFor(30*time.Second, func() bool {
		m := listenLine.FindStringSubmatch(p.logs.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}) {
		t.Fatalf("no http listening line in the logs\n%s", p.logs)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("listening on %s, want 127.0.0.1", addr)
	}
	healthz := func() (int, monitor.Health) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h monitor.Health
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, h
	}
	// The hello that start waited for reaches the bot a moment later.
	if !waitFor(30*time.Second, func() bool { code, _ := healthz(); return code == http.StatusOK }) {
		code, h := healthz()
		t.Errorf("/healthz = %d %+v, want 200, all ok", code, h)
	}

	w.send(requester, "dobro PAY-1 no_need_admin")
	w.waitReply(requester, "PAY-1> is in the queue")
	w.send(approver, "accept PAY-1")
	w.send(requester, "frobnicate")
	w.waitReply(approver, "You accepted PAY-1.")
	w.send(requester, "dep start PAY-1")
	w.waitAudit("PAY-1", commands.ActionStarted, 0)
	// Each series is a count of what the bot did, read from the bot itself:
	// wait until every one has its final value (the hook's result and the
	// refusal of "frobnicate" may be counted a moment after the replies
	// this test waited for), then report any that never got there.
	want := map[string]string{
		`dobrobot_hooks_total{phase="start",result="ok"}`:                    "1",
		`dobrobot_commands_total{command="dobro",outcome="ok"}`:              "1",
		`dobrobot_commands_total{command="accept",outcome="ok"}`:             "1",
		`dobrobot_commands_total{command="dep start",outcome="ok"}`:          "1",
		`dobrobot_commands_total{command="unknown",outcome="refused"}`:       "1",
		`dobrobot_slack_acks_total{result="ok"}`:                             "4",
		`dobrobot_tracker_lookups_total{outcome="ok"}`:                       "1",
		`dobrobot_queue_length`:                                              "1",
		`dobrobot_locks_held`:                                                "2", // backend and payments
		`dobrobot_slack_connected`:                                           "1",
		`dobrobot_slack_api_requests_total{method="auth.test",status="200"}`: "1",
	}
	var text string
	matches := func() bool {
		text = scrape(t, "http://"+addr+"/metrics")
		for series, v := range want {
			if metricValue(text, series) != v {
				return false
			}
		}
		return true
	}
	if !waitFor(30*time.Second, matches) {
		for series, v := range want {
			if got := metricValue(text, series); got != v {
				t.Errorf("%s = %q, want %q", series, got, v)
			}
		}
	}

	// Slack unreachable: the socket drops and reconnecting fails.
	w.slack.Fail("apps.connections.open", fakeslack.Failure{Status: http.StatusTooManyRequests, RetryAfter: 1})
	w.slack.CloseConnections()
	if !waitFor(30*time.Second, func() bool { code, _ := healthz(); return code == http.StatusServiceUnavailable }) {
		t.Error("/healthz stayed 200 with Slack unreachable")
	}
	if _, h := healthz(); h.Slack != "disconnected" || h.Database != "ok" {
		t.Errorf("/healthz with Slack unreachable = %+v", h)
	}
	w.slack.ClearFailures()
	if !waitFor(60*time.Second, func() bool { code, _ := healthz(); return code == http.StatusOK }) {
		t.Errorf("/healthz did not recover after Slack came back\n%s", p.logs)
	}
	text = scrape(t, "http://"+addr+"/metrics")
	if v := metricValue(text, `dobrobot_slack_api_requests_total{method="apps.connections.open",status="429"}`); v == "" || v == "0" {
		t.Errorf("the 429s of apps.connections.open were not counted:\n%s", grepLines(text, "slack_api"))
	}
	p.stop()
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("the listener still answers after the bot stopped")
	}
}

// grepLines returns the lines of text containing s.
func grepLines(text, s string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
