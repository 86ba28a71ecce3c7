// Package intake is dobrobot's CI intake: an HTTP listener of its own that
// takes signed build reports (POST /builds) and GitHub's webhooks
// (POST /github), verifies each before it reads a field of it, turns it into
// a commands.Build and answers what the core decides (docs/ci.md).
//
// The package decides nothing about releases: it checks signatures,
// timestamps, sizes and shapes, and maps the core's BuildAnswer to HTTP.
// Nothing that fails those checks reaches the core, so nothing of it is
// stored.
package intake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
)

// MaxBody is the largest body the intake reads; a larger one is answered 413.
const MaxBody = 1 << 20

// Window is how far a /builds timestamp may be from the intake's clock, in
// either direction, before the delivery is refused as a replay (or a clock
// far off).
const Window = 5 * time.Minute

// DefaultTicketPattern finds a ticket key (like REL-42) in a branch name or
// a commit message when intake.ticket_pattern is not set.
const DefaultTicketPattern = `[A-Z][A-Z0-9]+-[0-9]+`

// RetryAfter is what the intake tells CI to wait, in seconds, when the core
// cannot take a delivery now (a standby, the tracker or store unreachable).
const RetryAfter = 5

// BuildService is the core as the intake sees it: *commands.Service, or a
// stand-in that answers EUNAVAILABLE while this instance does not lead.
type BuildService interface {
	Build(ctx context.Context, b commands.Build) (commands.BuildAnswer, error)
}

// Options configure the intake.
type Options struct {
	// Secret signs POST /builds; empty turns that endpoint off (404).
	Secret string
	// GitHubSecret is the GitHub webhook's secret; empty turns POST
	// /github off (404).
	GitHubSecret string
	// TicketPattern finds a ticket in a branch name or commit message; nil:
	// DefaultTicketPattern.
	TicketPattern *regexp.Regexp
	// Repos maps a GitHub repository ("owner/name", compared without case)
	// to the components built from it.
	Repos map[string][]string
	// Service is the core.
	Service BuildService
	// Now is the intake's clock; nil: time.Now.
	Now func() time.Time
	// Log receives refusals (never a secret, a signature or a body) and
	// failures.
	Log zerolog.Logger
	// The server's timeouts; zero: 5 s for the headers, 10 s for the whole
	// request, 30 s for the answer. A slow client is cut off by them.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout time.Duration
	// BuildTimeout bounds the core's handling of one delivery; zero: 25 s.
	BuildTimeout time.Duration
}

// Server is a running intake listener.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start listens on addr (already checked like http.listen: an IP address
// and a port) and serves the intake until Close.
func Start(addr string, o Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("intake.listen %s: %w", addr, err)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           Handler(o),
			ReadHeaderTimeout: positiveOr(o.ReadHeaderTimeout, 5*time.Second),
			ReadTimeout:       positiveOr(o.ReadTimeout, 10*time.Second),
			WriteTimeout:      positiveOr(o.WriteTimeout, 30*time.Second),
			IdleTimeout:       time.Minute,
			MaxHeaderBytes:    16 << 10,
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Log.Error().Err(err).Msg("the intake listener stopped")
		}
	}()
	o.Log.Info().Str("addr", ln.Addr().String()).Bool("builds", o.Secret != "").Bool("github", o.GitHubSecret != "").
		Msg("intake listening: POST /builds, POST /github")
	return s, nil
}

// Addr returns the address the intake listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the intake, letting deliveries in progress finish for a
// moment: a delivery the core is handling is committed or not, never half.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// positiveOr is d, or def when d is not positive (an option left unset).
func positiveOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// handler holds the resolved options.
type handler struct {
	o       Options
	ticket  *regexp.Regexp
	now     func() time.Time
	timeout time.Duration
}

// Handler returns the intake's routes: POST /builds and POST /github.
func Handler(o Options) http.Handler {
	h := &handler{o: o, ticket: o.TicketPattern, now: o.Now, timeout: positiveOr(o.BuildTimeout, 25*time.Second)}
	if h.ticket == nil {
		h.ticket = regexp.MustCompile(DefaultTicketPattern)
	}
	if h.now == nil {
		h.now = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /builds", h.builds)
	mux.HandleFunc("POST /github", h.github)
	return mux
}
