package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	jira "github.com/andygrunwald/go-jira"
	"github.com/cenkalti/backoff/v5"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/rs/zerolog"
)

// Defaults of JiraConfig.
const (
	DefaultJiraTimeout     = 5 * time.Second
	DefaultJiraMaxAttempts = 3
)

// JiraConfig configures a Jira tracker.
type JiraConfig struct {
	// URL is Jira's base URL, such as https://example.atlassian.net or
	// https://jira.example.com/jira. It must not contain credentials.
	URL string
	// User is the bot account's e-mail address for Jira Cloud, which
	// authenticates with e-mail and API token (HTTP basic). Empty means Jira
	// Data Center: Token is a personal access token sent as a bearer token.
	User string
	// Token is the API token (Cloud) or personal access token (Data Center).
	// It is never logged nor put in an error.
	Token string `json:"-"`
	// Timeout bounds a whole lookup, retries included; default 5s.
	Timeout time.Duration
	// MaxAttempts bounds the requests of one lookup; default 3.
	MaxAttempts int
	// RequiredFields lists the IDs of fields to fetch besides the standard
	// ones, such as customfield_10010; each appears in Ticket.Fields.
	RequiredFields []string
	// ComponentMap maps Jira component names to dobrobot components;
	// unmapped names pass through unchanged.
	ComponentMap map[string]string
	// Log receives the adapter's logs; the zero Logger discards them.
	Log zerolog.Logger
}

// String describes c without its token, so that printing a configuration
// never leaks it.
func (c JiraConfig) String() string {
	auth := "bearer token"
	if c.User != "" {
		auth = "basic " + c.User
	}
	return fmt.Sprintf("jira %s (%s, timeout %s)", c.URL, auth, c.Timeout)
}

// Jira is a Tracker that looks tickets up in Jira with one GET of the REST
// API v2 per lookup, retrying bounded times on 429, 5xx and network errors
// within the configured timeout, and failing closed. It is safe for
// concurrent use; Close releases its idle connections.
type Jira struct {
	client    *jira.Client
	transport *http.Transport
	base      string // URL without a trailing slash
	auth      string // "basic <user>" or "bearer", for logs
	timeout   time.Duration
	attempts  int
	fields    string // the fields= query value
	required  []string
	compMap   map[string]string
	log       zerolog.Logger
}

var fieldID = regexp.MustCompile(`^[A-Za-z0-9_.\-]+$`)

// standardFields are the fields every lookup fetches.
var standardFields = []string{"summary", "status", "assignee", "fixVersions", "components", "project", "issuetype"}

// NewJira returns a Jira tracker for cfg. It checks the configuration but
// does not contact Jira; see Check for that.
func NewJira(cfg JiraConfig) (*Jira, error) {
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		return nil, errors.New("tracker: jira: tracker.url is empty")
	case err != nil:
		return nil, fmt.Errorf("tracker: jira: tracker.url is not a URL: %w", err)
	case u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
		return nil, fmt.Errorf("tracker: jira: tracker.url %q must be an http or https URL with a host", cfg.URL)
	case u.User != nil:
		// url.Error messages carry the request URL: credentials must not be in it.
		return nil, errors.New("tracker: jira: tracker.url must not contain credentials: put the token in tracker.token")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("tracker: jira: tracker.url %q must not have a query or fragment", cfg.URL)
	case cfg.Token == "":
		return nil, errors.New("tracker: jira: tracker.token is empty")
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("tracker: jira: tracker.timeout %s is negative", cfg.Timeout)
	case cfg.MaxAttempts < 0:
		return nil, fmt.Errorf("tracker: jira: max attempts %d is negative", cfg.MaxAttempts)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultJiraTimeout
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultJiraMaxAttempts
	}
	fields := slices.Clone(standardFields)
	var required []string
	for _, id := range cfg.RequiredFields {
		if !fieldID.MatchString(id) {
			return nil, fmt.Errorf("tracker: jira: required field %q is not a Jira field ID (like customfield_10010)", id)
		}
		if !slices.Contains(required, id) {
			required = append(required, id)
		}
		if !slices.Contains(fields, id) {
			fields = append(fields, id)
		}
	}

	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	var rt http.RoundTripper
	auth := "bearer"
	if cfg.User != "" {
		rt = &jira.BasicAuthTransport{Username: cfg.User, Password: cfg.Token, Transport: transport}
		auth = "basic " + cfg.User
	} else {
		rt = &jira.PATAuthTransport{Token: cfg.Token, Transport: transport}
	}
	// The lookup's context bounds each call; Timeout here is a second fence.
	hc := &http.Client{Transport: rt, Timeout: cfg.Timeout}
	client, err := jira.NewClient(hc, u.String())
	if err != nil {
		return nil, fmt.Errorf("tracker: jira: %w", err)
	}
	log := cfg.Log.With().Str("component", "jira").Logger()
	if u.Scheme == "http" && cfg.User != "" && !loopback(u.Hostname()) {
		log.Warn().Str("url", u.String()).Msg("tracker.url is plain http: the bot's credentials cross the network unencrypted")
	}
	return &Jira{
		client:    client,
		transport: transport,
		base:      strings.TrimRight(u.String(), "/"),
		auth:      auth,
		timeout:   cfg.Timeout,
		attempts:  cfg.MaxAttempts,
		fields:    strings.Join(fields, ","),
		required:  required,
		compMap:   cfg.ComponentMap,
		log:       log,
	}, nil
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// Close closes the tracker's idle connections. In-flight lookups are not
// affected; a lookup after Close opens a new connection.
func (j *Jira) Close() {
	j.transport.CloseIdleConnections()
}

// Ticket fetches the issue key and maps it to a commands.Ticket. The key
// must be a ticket key (EINVALID otherwise, without any request). Errors:
// ENOTFOUND when Jira answers 404 (missing or not visible: Jira does not
// tell them apart), EFORBIDDEN on 401 and 403, EUNAVAILABLE when Jira
// cannot be reached or does not answer in time. Ticket.Key is key as asked
// (Jira also answers for the old key of a moved issue); Project is the
// project the issue is in now.
func (j *Jira) Ticket(ctx context.Context, key string) (commands.Ticket, error) {
	if !commands.ValidTicket(key) {
		return commands.Ticket{}, invalidKey(key)
	}
	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	var issue struct {
		Key    string          `json:"key"`
		Fields json.RawMessage `json:"fields"`
	}
	path := "rest/api/2/issue/" + url.PathEscape(key) + "?" + url.Values{"fields": {j.fields}}.Encode()
	res := j.call(ctx, http.MethodGet, path, nil, &issue, true)
	log := j.log.With().Str("ticket", key).Logger()
	unreadable := commands.Errorf(commands.EUNAVAILABLE,
		"could not read Jira's answer for %s: not queued, try again (if it persists, ask an admin to check tracker.url)", key)
	switch {
	case res.ok():
		t, err := j.ticket(key, issue.Fields)
		if err != nil {
			log.Error().Err(err).Msg("Jira's answer could not be read")
			return commands.Ticket{}, unreadable
		}
		log.Debug().Int("attempts", res.attempts).Msg("looked the ticket up in Jira")
		return t, nil
	case res.status >= 200 && res.status < 300 && !res.timedOut:
		log.Error().Err(res.err).Msg("Jira's answer could not be read")
		return commands.Ticket{}, unreadable
	case res.status == http.StatusNotFound:
		// Jira says 404 for a missing issue and for one the bot may not see;
		// its body is not echoed.
		return commands.Ticket{}, commands.Errorf(commands.ENOTFOUND,
			"%s was not found or is not visible to the bot's Jira account", key)
	case res.status == http.StatusUnauthorized:
		j.alert(log, res)
		return commands.Ticket{}, commands.Errorf(commands.EFORBIDDEN,
			"Jira rejected the bot's credentials (401): ask an admin to check the token")
	case res.status == http.StatusForbidden:
		j.alert(log, res)
		return commands.Ticket{}, commands.Errorf(commands.EFORBIDDEN,
			"Jira refused the bot access to %s (403): ask an admin to check the bot account's permissions", key)
	default:
		return commands.Ticket{}, j.unavailable(log, res, "could not reach Jira: not queued, try again")
	}
}

// Comment adds a comment with the given text to issue key. It is tried once,
// and again only when Jira answers 429 (the comment was then not added), so
// a comment is never posted twice. Errors are those of Ticket; EFORBIDDEN on
// 403 means the bot's account lacks the Add comments permission.
func (j *Jira) Comment(ctx context.Context, key, text string) error {
	if !commands.ValidTicket(key) {
		return invalidKey(key)
	}
	if strings.TrimSpace(text) == "" {
		return commands.Errorf(commands.EINVALID, "a comment on %s needs some text", key)
	}
	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	path := "rest/api/2/issue/" + url.PathEscape(key) + "/comment"
	var out jira.Comment
	res := j.call(ctx, http.MethodPost, path, &jira.Comment{Body: text}, &out, false)
	log := j.log.With().Str("ticket", key).Logger()
	switch {
	case res.ok():
		log.Debug().Str("comment", out.ID).Msg("commented in Jira")
		return nil
	case res.status == http.StatusNotFound:
		return commands.Errorf(commands.ENOTFOUND, "%s was not found or is not visible to the bot's Jira account", key)
	case res.status == http.StatusUnauthorized:
		j.alert(log, res)
		return commands.Errorf(commands.EFORBIDDEN,
			"Jira rejected the bot's credentials (401): ask an admin to check the token")
	case res.status == http.StatusForbidden:
		j.alert(log, res)
		return commands.Errorf(commands.EFORBIDDEN,
			"Jira refused the bot's comment on %s (403): ask an admin to give the bot account the Add comments permission", key)
	case res.status >= 200 && res.status < 300:
		// Posted, but the answer was unreadable: do not retry, or it posts twice.
		log.Warn().Err(res.err).Msg("Jira added the comment but its answer could not be read")
		return nil
	default:
		return j.unavailable(log, res, fmt.Sprintf("could not comment on %s in Jira: try again later", key))
	}
}

// Check asks Jira who the bot is (GET /rest/api/2/myself) and describes the
// answer, such as "Jira: ok as bot@example.com", for dobrobot config check.
// Its error says what is wrong, such as "Jira: 401 — token rejected …".
func (j *Jira) Check(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	var me jira.User
	res := j.call(ctx, http.MethodGet, "rest/api/2/myself", nil, &me, true)
	switch {
	case res.ok():
		who := firstNonBlank(me.EmailAddress, me.Name, me.DisplayName, me.AccountID)
		return "Jira: ok as " + who, nil
	case res.status == http.StatusUnauthorized:
		return "", commands.Errorf(commands.EFORBIDDEN,
			"Jira: 401 — token rejected: it may be expired or revoked, or tracker.user may not be its owner (leave tracker.user empty for a Data Center PAT)")
	case res.status == http.StatusForbidden:
		return "", commands.Errorf(commands.EFORBIDDEN,
			"Jira: 403 — the bot's account may not use the REST API (a CAPTCHA after failed logins, or a missing product access)")
	case res.status == http.StatusNotFound:
		return "", commands.Errorf(commands.EUNAVAILABLE,
			"Jira: 404 at %s/rest/api/2/myself — tracker.url does not look like Jira's base URL", j.base)
	case res.status >= 200 && res.status < 300:
		return "", commands.Errorf(commands.EUNAVAILABLE,
			"Jira: %s answered something that is not Jira's JSON — check tracker.url", j.base)
	case res.status != 0:
		return "", commands.Errorf(commands.EUNAVAILABLE, "Jira: %d from %s — try again later", res.status, j.base)
	case res.timedOut:
		return "", commands.Errorf(commands.EUNAVAILABLE, "Jira: no answer from %s within %s", j.base, j.timeout)
	default:
		return "", commands.Errorf(commands.EUNAVAILABLE, "Jira: could not connect to %s: %v", j.base, res.err)
	}
}

// result is the outcome of a call, after any retries.
type result struct {
	status     int           // the last HTTP status; 0 when no answer came
	err        error         // a transport or decoding error; it carries no credentials
	attempts   int           // requests sent
	retryAfter time.Duration // the wait Jira last asked for (Retry-After)
	timedOut   bool          // the lookup's time ran out
}

func (r result) ok() bool { return r.err == nil && r.status >= 200 && r.status < 300 }

// call sends a request, decoding a 2xx answer into out, and retries while
// that is worth it: on 429 and 503 after Retry-After, on other 5xx and
// network errors (when idempotent) after a short backoff. It stops after
// j.attempts requests, and at once when the next wait would outlast ctx.
func (j *Jira) call(ctx context.Context, method, path string, body, out any, idempotent bool) result {
	opts := []backoff.RetryOption{backoff.WithBackOff(retryPolicy()), backoff.WithMaxTries(uint(j.attempts)),
		backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, wait time.Duration) {
			j.log.Warn().Err(err).Str("method", method).Str("path", pathOnly(path)).Dur("wait", wait).Msg("Jira call failed; retrying")
		})}
	if deadline, ok := ctx.Deadline(); ok {
		// A wait that would outlast the caller's time is not worth starting.
		opts = append(opts, backoff.WithMaxElapsedTime(time.Until(deadline)))
	}
	attempts := 0
	res, err := backoff.Retry(ctx, func() (result, error) {
		attempts++
		res := j.once(ctx, method, path, body, out)
		res.attempts = attempts
		return res, j.retry(res, idempotent)
	}, opts...)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		res.timedOut = true
	case res.attempts >= j.attempts:
		j.log.Warn().Err(err).Str("method", method).Str("path", pathOnly(path)).Int("attempt", res.attempts).Msg("Jira call failed; no attempts left")
	default:
		j.log.Warn().Err(err).Str("method", method).Str("path", pathOnly(path)).Int("attempt", res.attempts).Msg("Jira call failed; the wait it needs exceeds the time left")
	}
	return res
}

// once sends one request. It always closes the answer's body.
func (j *Jira) once(ctx context.Context, method, path string, body, out any) result {
	req, err := j.client.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return result{err: fmt.Errorf("jira: build %s %s: %w", method, pathOnly(path), err)}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req, out)
	if resp == nil {
		return result{err: fmt.Errorf("jira: %s %s: %w", method, pathOnly(path), err), timedOut: timedOut(ctx, err)}
	}
	defer drain(resp.Body)
	res := result{status: resp.StatusCode}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 && err != nil {
		res.err = fmt.Errorf("jira: %s %s: decode the answer: %w", method, pathOnly(path), err)
		res.timedOut = timedOut(ctx, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			res.retryAfter = d
		}
	}
	return res
}

// timedOut reports whether a call failed with err because its time ran
// out: the lookup's context, or one of the HTTP client's own timeouts,
// which are set to the same budget and may fire an instant earlier.
func timedOut(ctx context.Context, err error) bool {
	var ne net.Error
	return ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// retry says whether a call that ended in res is worth another attempt, and
// after how long: nil when it is not (res then says how it failed, if it
// did), a *backoff.RetryAfterError when Jira said how long to wait, another
// error for the policy's backoff.
func (j *Jira) retry(res result, idempotent bool) error {
	failed := res.err
	if failed == nil {
		failed = fmt.Errorf("jira: status %d", res.status)
	}
	switch {
	case res.timedOut:
		return nil
	case res.status == http.StatusTooManyRequests || idempotent && res.status == http.StatusServiceUnavailable:
		if res.retryAfter > 0 {
			return errors.Join(failed, &backoff.RetryAfterError{Duration: res.retryAfter})
		}
		return failed
	case !idempotent:
		return nil
	case res.status == 0 && res.err != nil, res.status >= 500:
		return failed
	}
	return nil
}

// retryPolicy is the wait after each failed attempt: about 100ms, 200ms,
// 400ms…, at most about a second, with jitter so callers do not retry in
// step.
func retryPolicy() backoff.BackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 125 * time.Millisecond, RandomizationFactor: 0.2,
		Multiplier: 2, MaxInterval: 1250 * time.Millisecond}
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// alert logs a refusal of the bot's credentials at error level: every
// lookup fails until an admin acts, so operators must hear of it.
func (j *Jira) alert(log zerolog.Logger, res result) {
	ev := log.Error().Int("status", res.status).Str("auth", j.auth).Str("url", j.base)
	if res.status == http.StatusUnauthorized {
		ev.Msg("Jira rejected the bot's credentials (401): the token is probably expired or revoked, " +
			"or tracker.user is not its owner (leave it empty for a Data Center PAT); every lookup fails until it is fixed")
		return
	}
	ev.Msg("Jira refused the bot access (403): the bot account probably lacks a permission " +
		"(Browse projects, or Add comments for write-back), or Jira asks it to solve a CAPTCHA after failed logins")
}

// unavailable logs why a call failed and returns the EUNAVAILABLE error
// whose message starts with msg.
func (j *Jira) unavailable(log zerolog.Logger, res result, msg string) error {
	ev := log.Warn().Int("status", res.status).Int("attempts", res.attempts)
	if res.err != nil {
		ev = ev.Err(res.err)
	}
	switch {
	case res.timedOut:
		ev.Dur("timeout", j.timeout).Msg("Jira did not answer in time")
	case res.status == 0:
		ev.Msg("could not reach Jira")
	case res.status < 300:
		ev.Msg("Jira's answer could not be read")
	default:
		ev.Msg("Jira answered with an error")
	}
	if res.retryAfter > 0 {
		return commands.Errorf(commands.EUNAVAILABLE, "%s in %s (Jira asked the bot to wait)", msg, res.retryAfter.Round(time.Second))
	}
	return commands.Errorf(commands.EUNAVAILABLE, "%s", msg)
}

// drain reads a little of what is left of a body, so the connection can be
// reused, and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

func pathOnly(p string) string {
	p, _, _ = strings.Cut(p, "?")
	return p
}

// firstNonBlank returns the first of vs that is not empty after trimming
// spaces, trimmed (unlike cmp.Or, which keeps blanks and does not trim).
func firstNonBlank(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
