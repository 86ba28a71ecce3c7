package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
)

// slowTracker is how long the Jira of figure 7 takes to answer anything.
const slowTracker = 2 * time.Second

// modalResult is figure 7.
type modalResult struct {
	sent, opened int
	open         latency // slash command sent → views.open received
	suggested    int     // block_suggestion envelopes sent meanwhile
	inTime       int     // of them, acked within Slack's 3 s
	suggest      latency // their envelope → ack
}

// slowJira serves the Jira REST calls the bot makes, each after
// slowTracker: a search that finds nothing, a lookup that finds nothing,
// and who the bot is. A request that is given up on ends its wait.
func slowJira() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	answer := func(w http.ResponseWriter, r *http.Request, status int, body any) {
		select {
		case <-time.After(slowTracker):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rest/api/2/search", func(w http.ResponseWriter, r *http.Request) {
		answer(w, r, http.StatusOK, map[string]any{"startAt": 0, "maxResults": 20, "total": 0, "issues": []any{}})
	})
	mux.HandleFunc("GET /rest/api/2/issue/{key}", func(w http.ResponseWriter, r *http.Request) {
		answer(w, r, http.StatusNotFound, map[string]any{"errorMessages": []string{"Issue does not exist or you do not have permission to see it."}, "errors": map[string]any{}})
	})
	mux.HandleFunc("GET /rest/api/2/myself", func(w http.ResponseWriter, r *http.Request) {
		answer(w, r, http.StatusOK, map[string]any{"name": "dobrobot", "emailAddress": "bot@example.com", "displayName": "Dobrobot"})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}

// runModal drives the real binary, its tracker a Jira that answers in 2 s,
// with n slash commands /dobro at rate per second, each from its own user.
// After each form opens, its user types into the ticket select: the
// searches pile up on the slow Jira while the next commands come, so the
// forms must open without waiting for it.
func runModal(bin, dir string, slack *fakeslack.Server, n, rate int) (modalResult, error) {
	var res modalResult
	jira, stop, err := slowJira()
	if err != nil {
		return res, err
	}
	defer stop()
	cfg := filepath.Join(dir, "dobrobot.yaml")
	body := fmt.Sprintf(`slack: {app_token: "${SLACK_APP_TOKEN}", bot_token: "${SLACK_BOT_TOKEN}", api_url: %q, channel: %s}
storage: {path: %q}
tracker: {kind: jira, url: %q, user: bot@example.com, token: "${JIRA_TOKEN}", projects: [LOAD], ready_statuses: [Ready for Release]}
roles: {approvers: [%s], admins: [%s]}
components: [%s, payments]
`, slack.URL, channel, filepath.Join(dir, "modal.db"), jira, approver, admin, component)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return res, err
	}
	os.Setenv("JIRA_TOKEN", "not-a-real-token")
	b, _, err := startBot(bin, cfg, slack)
	if err != nil {
		return res, err
	}
	defer b.kill()
	time.Sleep(time.Second) // start-up's recovery done

	var opens, suggests []time.Duration
	var suggestIDs []string
	every := time.Second / time.Duration(max(rate, 1))
	for i := range n {
		user := fmt.Sprintf("U0MODAL%05d", i)
		env := slack.SlashEnvelope(fakeslack.Slash{User: user, Channel: channel})
		var p struct {
			TriggerID string `json:"trigger_id"`
		}
		if err := json.Unmarshal(env.Payload, &p); err != nil {
			return res, err
		}
		next := time.Now().Add(every)
		t0 := time.Now()
		if _, err := slack.Send(env); err != nil {
			return res, fmt.Errorf("slash command %d: %w", i, err)
		}
		res.sent++
		var at time.Time
		slack.WaitFor(5*time.Second, func(st fakeslack.State) bool {
			for _, c := range st.Calls {
				if c.Method == "views.open" && c.Args.Get("trigger_id") == p.TriggerID {
					at = c.Time
					return true
				}
			}
			return false
		})
		if at.IsZero() {
			continue
		}
		res.opened++
		opens = append(opens, at.Sub(t0))
		views := slack.Views()
		if v := views[len(views)-1]; v.User == user {
			sent, err := slack.Send(slack.BlockSuggestionEnvelope(fakeslack.Suggestion{User: user, ViewID: v.ID, BlockID: "ticket", ActionID: "ticket", Value: "load"}))
			if err != nil {
				return res, fmt.Errorf("suggestion %d: %w", i, err)
			}
			suggestIDs = append(suggestIDs, sent.EnvelopeID)
		}
		time.Sleep(time.Until(next))
	}
	res.suggested = len(suggestIDs)
	for _, id := range suggestIDs {
		a, err := slack.WaitAck(id, 5*time.Second)
		if err != nil {
			continue
		}
		if d, ok := slack.AckLatency(id); ok {
			suggests = append(suggests, d)
		}
		if !a.Late {
			res.inTime++
		}
	}
	res.open, res.suggest = summarize(opens), summarize(suggests)
	if errs := slack.Errors(); len(errs) > 0 {
		return res, fmt.Errorf("fakeslack noticed: %s", strings.Join(errs, "; "))
	}
	if res.opened == 0 {
		return res, errors.New("no form opened:\n" + tail(b.logs.String()))
	}
	return res, nil
}

func (t *table) modal(m modalResult) {
	t.row("7", fmt.Sprintf("/dobro→views.open, %d commands, the tracker answering in %s", m.sent, slowTracker),
		latText(m.open), fmt.Sprintf("%d/%d forms opened; their searches pile up on the slow tracker meanwhile", m.opened, m.sent),
		"p99 ≤ 50ms, all opened", m.open.p99 <= 50*time.Millisecond && m.opened == m.sent)
	t.row("7", "  typing into the ticket select meanwhile: envelope→options", latText(m.suggest),
		fmt.Sprintf("%d/%d answered within Slack's 3 s (the fallback, after the 2 s bound)", m.inTime, m.suggested),
		"all within 3 s", m.inTime == m.suggested)
}
