// Package monitor is the optional HTTP listener of a running bot
// (http.listen): /healthz says whether it can serve, /metrics what it has
// done, for Prometheus. Metrics implements commands.Observer and counts the
// Slack Web API's answers and the tracker's lookups.
package monitor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
)

// CheckListen checks an http.listen value: host:port with an IP address as
// the host, as docs/configuration.md says. A name, localhost included, is
// refused: what it resolves to (127.0.0.1, ::1, or anything /etc/hosts says)
// is not in the file, and the listener must not be reachable by surprise.
func CheckListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (like 127.0.0.1:9090): %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("%q: the host must be an IP address (127.0.0.1 keeps it local), not a name", addr)
	}
	return nil
}

// Metrics are what /metrics serves, in a registry of their own. They
// implement commands.Observer; the bot's acks (Ack), Slack's answers
// (ObserveSlack) and the tracker's (ObserveTracker) reach them through hooks
// the wiring sets up.
type Metrics struct {
	reg *prometheus.Registry

	commands       *prometheus.CounterVec
	commandSeconds *prometheus.HistogramVec
	acks           *prometheus.CounterVec
	ackSeconds     prometheus.Histogram
	hooks          *prometheus.CounterVec
	hookSeconds    *prometheus.HistogramVec
	slackRequests  *prometheus.CounterVec
	trackerLookups *prometheus.CounterVec
	trackerSeconds prometheus.Histogram
	dora           *doraCollector
}

var _ commands.Observer = (*Metrics)(nil)

// NewMetrics registers dobrobot's metrics, the state read from store at each
// scrape, and the Go and process collectors. connected tells whether the
// Slack connection is up.
func NewMetrics(store commands.Store, connected func() bool, log zerolog.Logger) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dobrobot_commands_total",
			Help: "Commands handled, by command and outcome (ok, refused, failed, duplicate).",
		}, []string{"command", "outcome"}),
		commandSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dobrobot_command_duration_seconds",
			Help:    "Time to handle a command, tracker lookup and commit included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"command"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dobrobot_slack_acks_total",
			Help: "Socket Mode envelopes acknowledged (result ok) or whose ack could not be sent (failed).",
		}, []string{"result"}),
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dobrobot_slack_ack_duration_seconds",
			Help:    "Time from reading an envelope to sending its ack (the inbox commit included).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		hooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dobrobot_hooks_total",
			Help: "Hooks that ended, by phase and result (ok, failed).",
		}, []string{"phase", "result"}),
		hookSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dobrobot_hook_duration_seconds",
			Help:    "How long hooks ran, by phase.",
			Buckets: []float64{.1, .5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"phase"}),
		slackRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dobrobot_slack_api_requests_total",
			Help: "Slack Web API requests by method and status (the HTTP status code, or error when none came back); 429 is a rate limit.",
		}, []string{"method", "status"}),
		trackerLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dobrobot_tracker_lookups_total",
			Help: "Ticket lookups by outcome: ok, not_found, forbidden (credentials refused), unavailable (timeouts, 429, 5xx), other.",
		}, []string{"outcome"}),
		trackerSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dobrobot_tracker_lookup_duration_seconds",
			Help:    "Time of a ticket lookup, retries included.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		dora: &doraCollector{now: time.Now},
	}
	m.reg.MustRegister(m.commands, m.commandSeconds, m.acks, m.ackSeconds, m.hooks, m.hookSeconds,
		m.slackRequests, m.trackerLookups, m.trackerSeconds,
		&stateCollector{store: store, connected: connected, log: log}, m.dora,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Gatherer returns the registry /metrics serves, for tests to lint.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Command counts and times a handled command.
func (m *Metrics) Command(verb commands.Verb, outcome commands.Outcome, took time.Duration) {
	m.commands.WithLabelValues(string(verb), string(outcome)).Inc()
	m.commandSeconds.WithLabelValues(string(verb)).Observe(took.Seconds())
}

// Hook counts and times a hook that ended.
func (m *Metrics) Hook(res commands.HookResult) {
	result := "ok"
	if !res.OK {
		result = "failed"
	}
	m.hooks.WithLabelValues(string(res.Phase), result).Inc()
	m.hookSeconds.WithLabelValues(string(res.Phase)).Observe(res.Duration.Seconds())
}

// Ack counts an envelope's ack.
func (m *Metrics) Ack(took time.Duration, ok bool) {
	result := "ok"
	if !ok {
		result = "failed"
	}
	m.acks.WithLabelValues(result).Inc()
	m.ackSeconds.Observe(took.Seconds())
}

// ObserveSlack wraps base, the transport of the Slack Web API client, so
// that its answers are counted by method and status.
func (m *Metrics) ObserveSlack(base http.RoundTripper) http.RoundTripper {
	return slackTransport{base: base, m: m}
}

// slackTransport counts the Slack Web API's answers by method and status.
type slackTransport struct {
	base http.RoundTripper
	m    *Metrics
}

// RoundTrip sends r and counts its answer.
func (t slackTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	method := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	if method == "" || len(method) > 64 {
		method = "other"
	}
	t.m.slackRequests.WithLabelValues(method, status).Inc()
	return resp, err
}

// observedTracker counts and times a Tracker's lookups.
type observedTracker struct {
	commands.Tracker
	m *Metrics
}

// Ticket looks key up and counts the outcome.
func (t observedTracker) Ticket(ctx context.Context, key string) (commands.Ticket, error) {
	start := time.Now()
	tk, err := t.Tracker.Ticket(ctx, key)
	t.m.trackerSeconds.Observe(time.Since(start).Seconds())
	outcome := "ok"
	if err != nil {
		switch commands.ErrorCode(err) {
		case commands.ENOTFOUND:
			outcome = "not_found"
		case commands.EFORBIDDEN:
			outcome = "forbidden"
		case commands.EUNAVAILABLE:
			outcome = "unavailable"
		default:
			outcome = "other"
		}
	}
	t.m.trackerLookups.WithLabelValues(outcome).Inc()
	return tk, err
}

// ObserveTracker wraps tr so that its lookups are counted. Comments are
// not lookups: the Service takes the tracker's Commenter as it is.
func (m *Metrics) ObserveTracker(tr commands.Tracker) commands.Tracker {
	return observedTracker{Tracker: tr, m: m}
}

// stateCollector reads the queue, the locks and the outbox at each scrape.
type stateCollector struct {
	store     commands.Store
	connected func() bool
	log       zerolog.Logger
}

var (
	descQueue   = prometheus.NewDesc("dobrobot_queue_length", "Open releases: requested, accepted, claimed, deploying or failed.", nil, nil)
	descState   = prometheus.NewDesc("dobrobot_releases_open", "Open releases by state.", []string{"state"}, nil)
	descLocks   = prometheus.NewDesc("dobrobot_locks_held", "Component locks held by releases.", nil, nil)
	descFrozen  = prometheus.NewDesc("dobrobot_components_frozen", "Components frozen by an admin (lock COMPONENT).", nil, nil)
	descRunning = prometheus.NewDesc("dobrobot_hooks_running", "Hooks running now.", nil, nil)
	descOutbox  = prometheus.NewDesc("dobrobot_outbox_pending", "Messages waiting in the outbox to be sent to Slack.", nil, nil)
	descSlack   = prometheus.NewDesc("dobrobot_slack_connected", "1 while a Socket Mode connection is up.", nil, nil)
	descDB      = prometheus.NewDesc("dobrobot_database_up", "1 when the database could be read at this scrape.", nil, nil)
)

// Describe sends the descriptions of the state metrics.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueue, descState, descLocks, descFrozen, descRunning, descOutbox, descSlack, descDB} {
		ch <- d
	}
}

// Collect reads the state in one snapshot and sends it.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	connected := 0.0
	if c.connected != nil && c.connected() {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(descSlack, prometheus.GaugeValue, connected)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var open []commands.Release
	var locks []commands.Lock
	err := c.store.View(ctx, func(tx commands.Tx) error {
		var err error
		if open, err = tx.Open(); err != nil {
			return err
		}
		locks, err = tx.Locks()
		return err
	})
	var pending []commands.Effect
	if err == nil {
		pending, err = c.store.Pending(ctx, 0)
	}
	if err != nil {
		c.log.Warn().Err(err).Msg("metrics: could not read the database")
		ch <- prometheus.MustNewConstMetric(descDB, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descDB, prometheus.GaugeValue, 1)
	byState := map[commands.State]int{}
	running := 0
	for _, r := range open {
		byState[r.State]++
		if r.Running != nil {
			running++
		}
	}
	held, frozen := 0, 0
	for _, l := range locks {
		if l.Frozen() {
			frozen++
		} else {
			held++
		}
	}
	ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(len(open)))
	for _, s := range []commands.State{commands.StateRequested, commands.StateAccepted, commands.StateClaimed, commands.StateDeploying, commands.StateFailed} {
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, float64(byState[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(descLocks, prometheus.GaugeValue, float64(held))
	ch <- prometheus.MustNewConstMetric(descFrozen, prometheus.GaugeValue, float64(frozen))
	ch <- prometheus.MustNewConstMetric(descRunning, prometheus.GaugeValue, float64(running))
	ch <- prometheus.MustNewConstMetric(descOutbox, prometheus.GaugeValue, float64(len(pending)))
}
