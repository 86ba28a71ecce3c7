package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
)

// Health is the body of /healthz.
type Health struct {
	Status   string `json:"status"`   // ok or unhealthy
	Database string `json:"database"` // ok, or what went wrong
	Slack    string `json:"slack"`    // connected, disconnected, or standby
	// With PostgreSQL (leadership): this instance's role (leader or
	// standby), the instance that leads (empty while none does), and the
	// term (epoch) it leads.
	Role   string `json:"role,omitempty"`
	Leader string `json:"leader,omitempty"`
	Term   int64  `json:"term,omitempty"`
}

// Options are what the listener serves.
type Options struct {
	// Store is read by /healthz (and by Metrics' own collector).
	Store commands.Store
	// Connected reports whether the Slack connection is up.
	Connected func() bool
	// Metrics, if set, are served on /metrics.
	Metrics *Metrics
	// Leadership, set for an instance that may stand by (storage.kind
	// postgres), reports whether it leads, and which instance holds the
	// leader lock (none while a takeover is under way) in which term.
	Leadership func(ctx context.Context) (leading bool, leader string, term int64, err error)
}

// healthHandler answers /healthz: 200 when the database can be read and
// Slack is connected (a standby needs no Slack connection), else 503, with a
// JSON body saying which, and who leads.
func healthHandler(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		h := Health{Status: "ok", Database: "ok", Slack: "connected"}
		if err := o.Store.View(ctx, func(tx commands.Tx) error {
			_, _, err := tx.AuditHead()
			return err
		}); err != nil {
			h.Status, h.Database = "unhealthy", err.Error()
		}
		if o.Leadership != nil {
			leading, leader, term, err := o.Leadership(ctx)
			switch {
			case err != nil:
				h.Status, h.Database = "unhealthy", err.Error()
			case leading:
				h.Role = "leader"
			default:
				h.Role, h.Slack = "standby", "standby"
			}
			h.Leader, h.Term = leader, term
		}
		if h.Role != "standby" && (o.Connected == nil || !o.Connected()) {
			h.Status, h.Slack = "unhealthy", "disconnected"
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if h.Status != "ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(h)
	})
}

// Server is the listener of /healthz and /metrics.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start listens on addr and serves /healthz and /metrics (when o.Metrics is
// set) until Close.
func Start(addr string, o Options, log zerolog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", healthHandler(o))
	if o.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Metrics.reg, promhttp.HandlerOpts{ErrorLog: promLog{log}, Timeout: 10 * time.Second}))
	}
	s := &Server{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       time.Minute,
			MaxHeaderBytes:    16 << 10,
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("the http listener stopped")
		}
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("http listening: /healthz, /metrics")
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, letting requests in progress finish for a moment.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// promLog passes promhttp's errors to the log.
type promLog struct{ log zerolog.Logger }

// Println logs a promhttp error.
func (p promLog) Println(v ...any) { p.log.Error().Msg("metrics: " + fmt.Sprint(v...)) }
