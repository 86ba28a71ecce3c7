package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/failpoint"
	"github.com/dobrobot/dobrobot/storage"
)

// The admin socket: while `dobrobot run` holds the database file (bbolt locks
// it for one process), `audit export`, `audit verify` and `backup` go through
// the running bot instead, over a Unix socket next to the file
// (storage.path + ".sock", mode 0600, served only to the bot's own user or
// root). The protocol is HTTP/1.1 on that socket:
//
//	GET /v1/audit/export?format=jsonl|csv&since=T&until=T&ticket=KEY → the export
//	GET /v1/audit/verify?checkpoint=SEQ:HASH → {"entries": n, "head": "…"}, or 409 {"error": "…"}
//	GET /v1/backup       → a consistent copy of the database (bbolt Tx.WriteTo)
//
// A streamed answer that fails half-way ends with the trailer
// Dobrobot-Error, so the CLI never takes a cut-short stream for a whole one.

// adminSuffix is appended to the database's path to name its admin socket.
const adminSuffix = ".sock"

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path).
const maxSocketPath = 107

// trailerError carries the error of a stream that failed after it began.
const trailerError = "Dobrobot-Error"

// adminSocketPath returns the admin socket of the database at dbPath.
func adminSocketPath(dbPath string) string { return dbPath + adminSuffix }

// adminServer serves the admin socket of a running bot.
type adminServer struct {
	path string
	srv  *http.Server
	done chan struct{}
}

// startAdmin listens on db's admin socket. It must be called while db is
// open read-write (the file lock proves no other bot serves the socket), so
// a socket file left by a killed bot is removed first; any other file there
// is left alone and the socket is not served.
func startAdmin(db *storage.DB, log zerolog.Logger) (*adminServer, error) {
	path := adminSocketPath(db.Path())
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
	s := &adminServer{
		path: path,
		srv: &http.Server{
			Handler:           adminHandler(db, log),
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
func (s *adminServer) Close() error {
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

// adminHandler serves the admin API on db.
func adminHandler(db *storage.DB, log zerolog.Logger) http.Handler {
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
		if err := exportAudit(r.Context(), db, f, format, w); err != nil {
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
		head, err := verifyChain(r.Context(), db, against)
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

// exportAudit writes the entries of s matching f to out as JSON lines or CSV.
func exportAudit(ctx context.Context, s commands.Store, f commands.AuditFilter, format string, out io.Writer) error {
	w := bufio.NewWriterSize(out, 64*1024)
	var write func(commands.AuditEntry) error
	flush := func() error { return nil }
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(commands.AuditColumns); err != nil {
			return err
		}
		write = func(e commands.AuditEntry) error {
			rec := e.Record()
			for i := range rec {
				rec[i] = neutraliseCell(rec[i])
			}
			return cw.Write(rec)
		}
		flush = func() error { cw.Flush(); return cw.Error() }
	default:
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		var line []byte
		write = func(e commands.AuditEntry) error {
			var ok bool
			if line, ok = appendAuditLine(line[:0], e); !ok {
				return enc.Encode(e) // encoding/json says what is wrong with it
			}
			_, err := w.Write(line)
			return err
		}
	}
	if err := s.Audit(ctx, f, write); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	return w.Flush()
}

// neutraliseCell keeps a spreadsheet from reading a CSV cell as a formula:
// a cell starting with =, +, -, @, a tab or a carriage return gets a
// leading single quote (OWASP's advice on CSV injection), which
// spreadsheets show as text. JSON lines are never changed; docs/audit.md
// says how to re-verify a CSV export (strip the quote) or to use JSON lines.
func neutraliseCell(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// adminClient talks to a running bot over its admin socket.
type adminClient struct {
	socket string
	hc     *http.Client
}

// dialAdmin connects to the admin socket of the database at dbPath. It
// returns nil when no bot answers there (no socket, or one a killed bot
// left behind).
func dialAdmin(dbPath string) *adminClient {
	path := adminSocketPath(dbPath)
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil
	}
	c.Close()
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
	return &adminClient{socket: path, hc: &http.Client{Transport: &http.Transport{DialContext: dial, DisableCompression: true}}}
}

// get runs a GET of path and returns the answer, which must be 200.
func (c *adminClient) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := "http://dobrobot" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the running dobrobot's admin socket %s: %w", c.socket, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusConflict {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("the running dobrobot's admin socket %s answered %s: %s", c.socket, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp, nil
}

// stream copies a streamed answer of path to w and reports the error the
// server put in its trailer, if any.
func (c *adminClient) stream(ctx context.Context, path string, q url.Values, w io.Writer) (int64, error) {
	resp, err := c.get(ctx, path, q)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("reading from the running dobrobot: %w", err)
	}
	if msg := resp.Trailer.Get(trailerError); msg != "" {
		return n, fmt.Errorf("the running dobrobot: %s", msg)
	}
	return n, nil
}

// export streams the running bot's audit export to w.
func (c *adminClient) export(ctx context.Context, f commands.AuditFilter, format string, w io.Writer) error {
	_, err := c.stream(ctx, "/v1/audit/export", exportQueryOf(f, format), w)
	return err
}

// verify asks the running bot to verify the whole chain and the state,
// and to look for the checkpoint against if set.
func (c *adminClient) verify(ctx context.Context, against *commands.Checkpoint) (commands.Checkpoint, error) {
	var q url.Values
	if against != nil {
		q = url.Values{"checkpoint": {against.String()}}
	}
	resp, err := c.get(ctx, "/v1/audit/verify", q)
	if err != nil {
		return commands.Checkpoint{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict {
		var e struct {
			Error string `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			return commands.Checkpoint{}, fmt.Errorf("the running dobrobot's answer: %w", err)
		}
		return commands.Checkpoint{}, errors.New(e.Error)
	}
	var v verifyResult
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return commands.Checkpoint{}, fmt.Errorf("the running dobrobot's answer: %w", err)
	}
	return commands.Checkpoint{Seq: v.Entries, Hash: v.Head}, nil
}

// backup streams a copy of the running bot's database to w.
func (c *adminClient) backup(ctx context.Context, w io.Writer) (int64, error) {
	return c.stream(ctx, "/v1/backup", nil, w)
}

// source is where a maintenance verb reads the database: the file itself
// when no bot holds it, else the running bot's admin socket.
type source struct {
	path  string
	db    *storage.DB
	admin *adminClient
}

// Close closes the database if it was opened.
func (s *source) Close() error {
	if s.db != nil {
		return s.db.Close()
	}
	return nil
}

// openSource finds the database named by --db, the config or the demo, and
// reaches it through a running bot's admin socket if one answers, else by
// opening the file.
func (a *app) openSource(flag string) (*source, error) {
	path := flag
	if path == "" {
		c, err := a.loadConfig()
		if err != nil {
			return nil, err
		}
		path = dbPath(c)
	}
	if !fileExists(path) {
		return nil, usagef("no database at %s (set storage.path, --config or --db)", path)
	}
	if c := dialAdmin(path); c != nil {
		a.log.Debug().Str("socket", c.socket).Msg("the database is in use: going through the running dobrobot")
		return &source{path: path, admin: c}, nil
	}
	db, err := openDB(path)
	if errors.Is(err, storage.ErrLocked) {
		return nil, fmt.Errorf("%w; no running dobrobot answers on %s (is it an older version, or another program holding the file?)", err, adminSocketPath(path))
	}
	if err != nil {
		return nil, err
	}
	return &source{path: path, db: db}, nil
}

// verifyAtOpen verifies the whole audit chain of store and replays it
// against the stored releases, locks and freezes, refusing a database that
// disagrees with its own log: run does it at start-up, and the console when
// it opens a database.
func (a *app) verifyAtOpen(ctx context.Context, store commands.Store) error {
	start := time.Now()
	head, err := commands.VerifyStore(ctx, store, nil)
	switch {
	case err != nil && tampered(err):
		return fmt.Errorf("the audit log does not verify (%w): the database was changed outside dobrobot or is damaged. "+
			"It was left as it is; run dobrobot audit verify on it, and restore the last good backup (docs/operations.md)", err)
	case err != nil:
		return fmt.Errorf("verifying the audit log: %w", err)
	}
	a.log.Info().Uint64("entries", head.Seq).Str("head", head.String()).Dur("took", time.Since(start)).
		Msg("the audit chain verifies and the stored releases, locks and freezes are what it replays to")
	return nil
}

// startup runs the checks and starts the services of `dobrobot run` that
// come with its database: it warns of armed failpoints, verifies the whole
// audit chain and replays it against the stored releases, locks and
// freezes (refusing a database that disagrees with its own log), and serves
// the admin socket of a bbolt database. The returned function stops what
// was started.
func (a *app) startup(ctx context.Context, store commands.Store) (func(), error) {
	if fps := failpoint.Armed(); len(fps) > 0 {
		a.log.Warn().Strs("failpoints", fps).Msg("failpoints armed: this test build kills itself when it reaches them")
	}
	if err := a.verifyAtOpen(ctx, store); err != nil {
		return nil, err
	}
	db, ok := store.(*storage.DB)
	if !ok {
		return func() {}, nil
	}
	admin, err := startAdmin(db, a.log)
	if err != nil {
		a.log.Warn().Err(err).Msg("no admin socket: audit export, audit verify and backup will not work while the bot runs")
		return func() {}, nil
	}
	return func() {
		if err := admin.Close(); err != nil {
			a.log.Warn().Err(err).Msg("closing the admin socket")
		}
	}, nil
}
