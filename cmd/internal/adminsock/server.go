// Package adminsock is the admin socket of a running bot on a bbolt file:
// while `dobrobot run` holds the database file (bbolt locks it for one
// process), `audit export`, `audit verify` and `backup` go through the
// running bot instead, over a Unix socket next to the file (storage.path +
// ".sock", mode 0600, served only to the bot's own user or root). Server
// serves it, Client is the maintenance verbs' end. The protocol is HTTP/1.1
// on that socket:
//
//	GET /v1/audit/export?format=jsonl|csv&since=T&until=T&ticket=KEY → the export
//	GET /v1/audit/verify?checkpoint=SEQ:HASH → {"entries": n, "head": "…"}, or 409 {"error": "…"}
//	GET /v1/backup       → a consistent copy of the database (bbolt Tx.WriteTo)
//
// A streamed answer that fails half-way ends with the trailer
// Dobrobot-Error, so the client never takes a cut-short stream for a whole one.
package adminsock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/cmd/internal/audit"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// suffix is appended to the database's path to name its admin socket.
const suffix = ".sock"

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path).
const maxSocketPath = 107

// trailerError carries the error of a stream that failed after it began.
const trailerError = "Dobrobot-Error"

// SocketPath returns the admin socket of the database at dbPath.
func SocketPath(dbPath string) string { return dbPath + suffix }

// Server serves the admin socket of a running bot.
type Server struct {
	path string
	srv  *http.Server
	done chan struct{}
}

// Start listens on db's admin socket. It must be called while db is
// open read-write (the file lock proves no other bot serves the socket), so
// a socket file left by a killed bot is removed first; any other file there
// is left alone and the socket is not served.
func Start(db *storage.DB, log zerolog.Logger) (*Server, error) {
	path := SocketPath(db.Path())
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("admin socket %s: the path is longer than %d bytes: use a shorter storage.path", path, maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("admin socket %s: a file that is not a socket is in the way: move it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("admin socket %s: removing the one a stopped bot left: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	s := &Server{
		path: path,
		srv: &http.Server{
			Handler:           handler(db, log),
			ReadHeaderTimeout: 5 * time.Second,
			MaxHeaderBytes:    16 << 10,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(peerListener{ln.(*net.UnixListener), log}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("the admin socket stopped")
		}
	}()
	log.Info().Str("socket", path).Msg("admin socket listening: audit export, audit verify and backup work while the bot runs")
	return s, nil
}

// Close stops serving, waits a moment for requests in progress (a backup is
// cut short after 10 s), and removes the socket file.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	<-s.done
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// peerListener accepts only connections from the bot's own user or root.
type peerListener struct {
	*net.UnixListener
	log zerolog.Logger
}

// Accept returns the next connection from an allowed peer.
func (l peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.UnixListener.AcceptUnix()
		if err != nil {
			return nil, err
		}
		if uid, ok := peerUID(c); ok && uid != 0 && uid != os.Getuid() {
			l.log.Warn().Int("uid", uid).Msg("admin socket: refused a connection from another user")
			c.Close()
			continue
		}
		return c, nil
	}
}

// handler serves the admin API on db.
func handler(db *storage.DB, log zerolog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/audit/export", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f, format, err := exportQuery(q)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Trailer", trailerError)
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := audit.Export(r.Context(), db, f, format, w); err != nil {
			log.Warn().Err(err).Msg("admin socket: audit export failed")
			w.Header().Set(trailerError, oneLine(err.Error()))
		}
	})
	mux.HandleFunc("GET /v1/audit/verify", func(w http.ResponseWriter, r *http.Request) {
		var against *commands.Checkpoint
		if v := r.URL.Query().Get("checkpoint"); v != "" {
			cp, err := commands.ParseCheckpoint(v)
			if err != nil {
				http.Error(w, commands.ErrorMessage(err), http.StatusBadRequest)
				return
			}
			against = &cp
		}
		head, err := audit.Verify(r.Context(), db, against)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(verifyResult{Entries: head.Seq, Head: head.Hash})
	})
	mux.HandleFunc("GET /v1/backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", trailerError)
		w.Header().Set("Content-Type", "application/octet-stream")
		n, err := db.Backup(r.Context(), w)
		if err != nil {
			log.Warn().Err(err).Msg("admin socket: backup failed")
			w.Header().Set(trailerError, oneLine(err.Error()))
			return
		}
		log.Info().Int64("bytes", n).Msg("admin socket: backup sent")
	})
	return mux
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// verifyResult is the answer of /v1/audit/verify.
type verifyResult struct {
	Entries uint64 `json:"entries"`
	Head    string `json:"head"`
}

// exportQuery reads the export's filter and format from a query string.
func exportQuery(q url.Values) (commands.AuditFilter, string, error) {
	var f commands.AuditFilter
	format := q.Get("format")
	switch format {
	case "":
		format = "jsonl"
	case "jsonl", "csv":
	default:
		return f, "", fmt.Errorf("format %q: use jsonl or csv", format)
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, "", fmt.Errorf("%s %q is not an RFC 3339 time", p.name, v)
			}
			*p.dst = t
		}
	}
	if v := q.Get("ticket"); v != "" {
		key, ok := commands.TicketKey(v)
		if !ok {
			return f, "", fmt.Errorf("ticket %q is not a ticket key (like PAY-123)", v)
		}
		f.Ticket = key
	}
	return f, format, nil
}

// exportQueryOf is the query string of an export.
func exportQueryOf(f commands.AuditFilter, format string) url.Values {
	q := url.Values{"format": {format}}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.Format(time.RFC3339Nano))
	}
	if f.Ticket != "" {
		q.Set("ticket", f.Ticket)
	}
	return q
}
