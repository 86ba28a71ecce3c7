package hook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
)

// The defaults of Webhook.
const (
	DefaultWebhookTimeout = 30 * time.Second
	DefaultMaxAttempts    = 3
)

const (
	// SignatureHeader carries "sha256=" and the lowercase hex HMAC-SHA256 of
	// the request body, keyed with the webhook's secret.
	SignatureHeader = "X-Dobrobot-Signature"
	// IdempotencyHeader carries the job's attempt ID, the same on every retry
	// of one hook run: a receiver that has seen it must not deploy again.
	IdempotencyHeader = "Idempotency-Key"

	// maxBody is how much of a failed response's body is kept as output.
	maxBody = 64 << 10
	// firstBackoff is the pause before the first retry; it doubles after.
	firstBackoff = 100 * time.Millisecond
)

var _ commands.Executor = (*Webhook)(nil)

// Webhook runs a hook by POSTing the job as JSON to a web service. The zero
// values of Timeout and MaxAttempts mean their defaults. Network errors and
// 5xx answers are retried with a short backoff, all within Timeout; 2xx is
// success; any other answer (4xx, and redirects, which are never followed)
// fails at once.
type Webhook struct {
	// URL is where to POST: https, or http to 127.0.0.1 or localhost.
	URL string
	// Secret keys the HMAC-SHA256 signature of each request body. It never
	// appears in results or logs.
	Secret string
	// Timeout bounds the whole run, retries included (default 30s).
	Timeout time.Duration
	// MaxAttempts bounds the number of requests (default 3).
	MaxAttempts int
	// Client sends the requests; nil means a client with the default
	// transport. Its CheckRedirect is replaced: redirects are never followed.
	Client *http.Client
	// Log receives each attempt's outcome; the zero Logger discards it.
	Log zerolog.Logger
}

// NewWebhook returns a Webhook for rawURL signed with secret, with the default
// timeout and attempts. It refuses a URL that is not https (http only to
// 127.0.0.1 or localhost), a URL with credentials in it, and an empty secret.
func NewWebhook(rawURL, secret string) (*Webhook, error) {
	if err := checkURL(rawURL); err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, commands.Errorf(commands.EINVALID, "hook webhook: the secret is empty: set it, e.g. secret: ${DOBROBOT_WEBHOOK_SECRET}, so that the receiver can check the signature")
	}
	return &Webhook{URL: rawURL, Secret: secret, Timeout: DefaultWebhookTimeout, MaxAttempts: DefaultMaxAttempts}, nil
}

// checkURL accepts https URLs with a host, and http URLs to the loopback host
// for tests and local receivers.
func checkURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return commands.Errorf(commands.EINVALID, "hook webhook: the URL does not parse: write it like https://deploy.example.com/hook")
	}
	if u.User != nil {
		return commands.Errorf(commands.EINVALID, "hook webhook: the URL %s has credentials in it: remove them, requests are authenticated by their signature", redactURL(u))
	}
	switch {
	case u.Scheme == "https" && u.Hostname() != "":
	case u.Scheme == "http" && (u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost" || u.Hostname() == "::1"):
	default:
		return commands.Errorf(commands.EINVALID, "hook webhook: the URL %s must be https:// with a host (http:// is allowed only to 127.0.0.1 and localhost)", redactURL(u))
	}
	return nil
}

// redactURL returns u without credentials, query or fragment, which may hold
// secrets, for messages and logs.
func redactURL(u *url.URL) string {
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return v.String()
}

// payload is the JSON body of a webhook request.
type payload struct {
	Ticket     string         `json:"ticket"`
	Phase      commands.Phase `json:"phase"`
	Requester  string         `json:"requester"`
	Admin      string         `json:"admin"`
	Components []string       `json:"components"`
	Attempt    string         `json:"attempt"`
	Env        string         `json:"env"`
	Version    string         `json:"version"` // the release's build; "" when none
}

// Sign returns the value of the X-Dobrobot-Signature header for body:
// "sha256=" and the lowercase hex HMAC-SHA256 of body keyed with secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Run POSTs job and returns when the receiver has answered 2xx, when it has
// failed for good, or when Timeout or ctx ends it. It refuses, without
// sending anything, a job with an invalid ticket, component or user, or
// without an attempt ID. ExitCode is 0 on success, the HTTP status of a
// failing answer, or -1 when there was none.
func (w *Webhook) Run(ctx context.Context, job commands.Job) commands.HookResult {
	start := time.Now()
	res := commands.HookResult{Phase: job.Phase, Attempt: job.Attempt, ExitCode: -1}
	end := func() commands.HookResult {
		if w.Secret != "" {
			res.Error = strings.ReplaceAll(res.Error, w.Secret, "[secret]")
			res.Output = strings.ReplaceAll(res.Output, w.Secret, "[secret]")
		}
		res.Duration = time.Since(start)
		res.Ended = time.Now()
		return res
	}
	log := w.Log.With().Str("ticket", job.Ticket).Str("phase", string(job.Phase)).Str("attempt", job.Attempt).Logger()

	if err := checkJob(job); err != nil {
		res.Error = err.Error()
		log.Warn().Err(err).Msg("webhook refused")
		return end()
	}
	if job.Attempt == "" {
		res.Error = fmt.Sprintf("refused to call the %s webhook for %s: the job has no attempt ID for the idempotency key", job.Phase, job.Ticket)
		return end()
	}
	if err := checkURL(w.URL); err != nil {
		res.Error = "could not start: " + err.Error()
		return end()
	}
	if w.Secret == "" {
		res.Error = "could not start: the webhook's secret is empty"
		return end()
	}
	if err := ctx.Err(); err != nil {
		res.Error = "cancelled before it started"
		return end()
	}
	components := job.Components
	if components == nil {
		components = []string{}
	}
	body, err := json.Marshal(payload{job.Ticket, job.Phase, job.Requester, job.Admin, components, job.Attempt, envOf(job), job.Build})
	if err != nil {
		res.Error = fmt.Sprintf("could not start: encode the request: %v", err)
		return end()
	}
	sig := Sign(w.Secret, body)
	timeout := positiveOr(w.Timeout, DefaultWebhookTimeout)
	attempts := positiveOr(w.MaxAttempts, DefaultMaxAttempts)
	client := w.client()
	u, _ := url.Parse(w.URL)
	where := redactURL(u)

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	// Pauses of 100ms, 200ms, 400ms…, at most a tenth of the timeout, and
	// none once ctx is done.
	pause := min(firstBackoff, timeout/10)
	policy := &backoff.ExponentialBackOff{InitialInterval: pause, Multiplier: 2, MaxInterval: max(pause, timeout/10)}
	n := 0
	last, _ := backoff.Retry(ctx, func() (answer, error) {
		n++
		// Each attempt gets an equal share of the time left, so that a
		// receiver that hangs once still leaves room for a retry.
		actx, acancel := context.WithTimeout(ctx, time.Until(deadline)/time.Duration(attempts-n+1))
		a := w.post(actx, client, body, sig, job.Attempt)
		acancel()
		log.Debug().Int("n", n).Int("status", a.status).Bool("retry", a.retry).Str("error", a.err).Msg("webhook attempt")
		if a.ok || !a.retry || ctx.Err() != nil {
			return a, nil
		}
		return a, errors.New(a.err)
	}, backoff.WithBackOff(policy), backoff.WithMaxTries(uint(attempts)), backoff.WithMaxElapsedTime(0))

	tries := ""
	if n > 1 {
		tries = " (" + strconv.Itoa(n) + " attempts)"
	}
	switch {
	case last.ok:
		res.OK, res.ExitCode = true, 0
		return end()
	case last.status != 0:
		res.ExitCode = last.status
		res.Output = last.body
	}
	switch {
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded) && !last.answered():
		res.Error = "timed out after " + duration(timeout) + tries
	case ctx.Err() != nil && !last.answered():
		res.Error = "cancelled after " + duration(time.Since(start)) + tries
	default:
		res.Error = last.err + tries
	}
	log.Warn().Str("url", where).Str("error", res.Error).Msg("webhook failed")
	return end()
}

// answer is the outcome of one POST.
type answer struct {
	ok     bool
	retry  bool   // worth another attempt
	status int    // HTTP status, 0 when there was no answer
	err    string // what went wrong, for people
	body   string // the start of a failed answer's body
}

func (a answer) answered() bool { return a.status != 0 }

func (w *Webhook) post(ctx context.Context, client *http.Client, body []byte, sig, key string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return answer{err: "could not build the request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dobrobot-hook")
	req.Header.Set(SignatureHeader, sig)
	req.Header.Set(IdempotencyHeader, key)
	resp, err := client.Do(req)
	if err != nil {
		// url.Error repeats the URL, whose query may hold a token.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return answer{retry: true, err: "no answer in time"}
		}
		var (
			verr *tls.CertificateVerificationError
			uae  x509.UnknownAuthorityError
			he   x509.HostnameError
			cie  x509.CertificateInvalidError
		)
		if errors.As(err, &verr) || errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &cie) {
			return answer{err: "the receiver's TLS certificate is not trusted: " + err.Error()}
		}
		return answer{retry: true, err: "could not reach the receiver: " + err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return answer{ok: true, status: resp.StatusCode}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	text := strings.ToValidUTF8(string(b), "\uFFFD")
	if len(b) > maxBody {
		text = strings.ToValidUTF8(string(b[:maxBody]), "\uFFFD") + "…[truncated]"
	}
	a := answer{status: resp.StatusCode, body: text, err: "answered " + resp.Status}
	switch {
	case resp.StatusCode >= 500:
		a.retry = true
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		a.err += ": redirects are not followed, configure the final URL"
	}
	return a
}

// client returns w's client, or a default one, never following redirects:
// a redirect could send the signed release to another host.
func (w *Webhook) client() *http.Client {
	c := &http.Client{}
	if w.Client != nil {
		*c = *w.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}
