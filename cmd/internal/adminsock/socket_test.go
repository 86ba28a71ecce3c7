package adminsock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/cmd/internal/audit"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// requester is the actor of the seeded audit entries.
const requester = "U0ANN"

// checkCopy opens a backup read-only and checks every page of it.
func checkCopy(path string) error {
	db, err := storage.Open(path, storage.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Check()
}

// shortDir returns a temporary directory with a short path, so that a
// socket in it fits in sun_path.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dba")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// seedAudit appends n audit entries in one transaction: refusals, which
// change no state, so that the log replays to the (empty) stored state.
func seedAudit(t *testing.T, db commands.Store, from, n int) {
	t.Helper()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	err := db.Update(context.Background(), func(tx commands.Tx) error {
		for i := from; i < from+n; i++ {
			ticket := fmt.Sprintf("PAY-%d", i%7+1)
			if _, err := tx.AppendAudit(commands.AuditEntry{Time: at.Add(time.Duration(i) * time.Minute), Actor: requester,
				Action: commands.ActionRefused, Ticket: ticket, Detail: fmt.Sprintf("entry %d", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAdminSocket serves the admin socket of a database in this process and
// checks that export, verify and backup through it give what they give on
// the file, that only the owner can reach it, and that it goes away with
// the bot.
func TestAdminSocket(t *testing.T) {
	ctx := context.Background()
	dir := shortDir(t)
	path := filepath.Join(dir, "bot.db")
	db, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seedAudit(t, db, 0, 50)

	if c := Dial(path); c != nil {
		t.Fatal("dialAdmin found a bot before one served the socket")
	}
	srv, err := Start(db, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(SocketPath(path))
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket: %v, mode %v; want a socket with mode 0600", err, fi.Mode())
	}
	c := Dial(path)
	if c == nil {
		t.Fatal("dialAdmin found no bot")
	}

	since := time.Date(2026, 3, 1, 9, 10, 0, 0, time.UTC)
	for _, f := range []struct {
		filter commands.AuditFilter
		format string
	}{
		{commands.AuditFilter{}, "jsonl"},
		{commands.AuditFilter{}, "csv"},
		{commands.AuditFilter{Since: since, Until: since.Add(20 * time.Minute), Ticket: "PAY-3"}, "jsonl"},
	} {
		var local, remote bytes.Buffer
		if err := audit.Export(ctx, db, f.filter, f.format, &local); err != nil {
			t.Fatal(err)
		}
		if err := c.Export(ctx, f.filter, f.format, &remote); err != nil {
			t.Fatalf("export through the socket: %v", err)
		}
		if diff := cmp.Diff(local.String(), remote.String()); diff != "" || local.Len() == 0 {
			t.Errorf("export %+v %s through the socket differs from the file's (-file +socket):\n%s", f.filter, f.format, diff)
		}
	}

	got, err := c.Verify(ctx, nil)
	want, werr := audit.Verify(ctx, db, nil)
	wantHead := want.Hash
	if err != nil || werr != nil || got != want || got.Seq != 50 {
		t.Errorf("verify through the socket = %v %v; on the file %v %v", got, err, want, werr)
	}
	for _, tc := range []struct {
		cp   commands.Checkpoint
		want string // "" for none
	}{
		{want, ""},
		{commands.Checkpoint{Seq: 7, Hash: strings.Repeat("ab", 32)}, "checkpoint 7:abab"},
		{commands.Checkpoint{Seq: 51, Hash: want.Hash}, "the chain has only 50 entries"},
	} {
		_, err := c.Verify(ctx, &tc.cp)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("verify --checkpoint %s through the socket: %v, want %q", tc.cp, err, tc.want)
		}
	}

	out := filepath.Join(dir, "copy.db")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	size, err := c.Backup(ctx, f)
	f.Close()
	if err != nil || size == 0 {
		t.Fatalf("backup through the socket: %d bytes, %v", size, err)
	}
	if err := checkCopy(out); err != nil {
		t.Errorf("the copy: %v", err)
	}
	cp, err := storage.Open(out, storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := audit.Verify(ctx, cp, nil); err != nil || h.Seq != 50 || h.Hash != wantHead {
		t.Errorf("the copy's chain: %v %v, want 50 %s", h, err, wantHead)
	}
	cp.Close()

	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Stat(SocketPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is still there after Close: %v", err)
	}
	if c := Dial(path); c != nil {
		t.Error("dialAdmin found a bot after it stopped")
	}
}

// TestAdminSocketLeftovers: a socket a killed bot left behind is not taken
// for a running bot, and the next bot replaces it; a file that is not a
// socket is never removed; a path too long for a socket is refused.
func TestAdminSocketLeftovers(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "bot.db")
	db, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// A stale socket: bound, then its listener gone without unlinking.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: SocketPath(path), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if c := Dial(path); c != nil {
		t.Error("dialAdmin took a stale socket for a running bot")
	}
	srv, err := Start(db, zerolog.Nop())
	if err != nil {
		t.Fatalf("startAdmin over a stale socket: %v", err)
	}
	if Dial(path) == nil {
		t.Error("the new socket does not answer")
	}
	srv.Close()

	// A regular file in the way stays.
	if err := os.WriteFile(SocketPath(path), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(db, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("startAdmin over a regular file: %v", err)
	}
	if b, err := os.ReadFile(SocketPath(path)); err != nil || string(b) != "mine" {
		t.Errorf("the file in the way was changed: %q %v", b, err)
	}

	// A path too long for sun_path.
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	if err := os.MkdirAll(long, 0o700); err != nil {
		t.Fatal(err)
	}
	ldb, err := storage.Open(filepath.Join(long, "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ldb.Close()
	if _, err := Start(ldb, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "shorter storage.path") {
		t.Errorf("startAdmin with a long path: %v", err)
	}
}

// TestAdminClientErrors: a stream the bot cuts short with an error trailer,
// a refused request and a broken chain are errors, never output taken as
// whole.
func TestAdminClientErrors(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "x.db") + suffix
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", trailerError)
		io.WriteString(w, "half a database")
		w.Header().Set(trailerError, "back up database: disk I/O error")
	})
	mux.HandleFunc("GET /v1/audit/export", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "format \"xml\": use jsonl or csv", http.StatusBadRequest)
	})
	mux.HandleFunc("GET /v1/audit/verify", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":"audit verify: audit chain broken at seq 7: hash does not match"}`)
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	defer hs.Close()

	c := Dial(filepath.Join(dir, "x.db"))
	if c == nil {
		t.Fatal("no client")
	}
	ctx := context.Background()
	var buf bytes.Buffer
	if _, err := c.Backup(ctx, &buf); err == nil || !strings.Contains(err.Error(), "disk I/O error") {
		t.Errorf("backup cut short: %v", err)
	}
	if err := c.Export(ctx, commands.AuditFilter{}, "xml", &buf); err == nil || !strings.Contains(err.Error(), "400 Bad Request") {
		t.Errorf("export refused: %v", err)
	}
	if _, err := c.Verify(ctx, nil); err == nil || !strings.Contains(err.Error(), "broken at seq 7") {
		t.Errorf("verify of a broken chain: %v", err)
	}
}

// TestAdminExportQuery: the query string carries every filter both ways and
// bad values are refused.
func TestAdminExportQuery(t *testing.T) {
	f := commands.AuditFilter{Since: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Until: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Ticket: "PAY-12"}
	got, format, err := exportQuery(exportQueryOf(f, "csv"))
	if err != nil || format != "csv" {
		t.Fatalf("exportQuery = %v, %q", err, format)
	}
	if diff := cmp.Diff(f, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for _, q := range []string{"format=xml", "since=yesterday", "until=2026-13-01T00:00:00Z", "ticket=pay%3Brm"} {
		v, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := exportQuery(v); err == nil {
			t.Errorf("exportQuery(%q) accepted it", q)
		}
	}
}

// slowWriter writes to w with a pause after each write, so a backup takes
// long enough to see writers go on beside it.
type slowWriter struct {
	w     io.Writer
	pause time.Duration
}

func (s slowWriter) Write(p []byte) (int, error) {
	time.Sleep(s.pause)
	return s.w.Write(p)
}

// heldWriter calls hold before its first write, then writes to w.
type heldWriter struct {
	w    io.Writer
	hold func() error
	done bool
}

func (h *heldWriter) Write(p []byte) (int, error) {
	if !h.done {
		h.done = true
		if err := h.hold(); err != nil {
			return 0, err
		}
	}
	return h.w.Write(p)
}

// TestBackupUnderWrites takes slow backups through the admin socket while a
// writer commits 50 transactions a second, and checks that the writes go on
// during each backup (a backup is a read transaction: it never holds a
// writer up), that each copy passes bbolt's check and verifies, and that a
// copy holds every entry committed before the backup began (docs/reliability.md, T22).
func TestBackupUnderWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := shortDir(t)
	path := filepath.Join(dir, "bot.db")
	db, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seedAudit(t, db, 0, 8000) // a few MB
	srv, err := Start(db, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := Dial(path)

	type write struct {
		end  time.Time
		took time.Duration
	}
	stop := make(chan struct{})
	var (
		mu       sync.Mutex
		writes   []write
		written  = 8000
		writeErr error
	)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 8000; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			start := time.Now()
			if err := db.Update(ctx, func(tx commands.Tx) error {
				_, err := tx.AppendAudit(commands.AuditEntry{Time: time.Now(), Actor: requester, Action: commands.ActionRefused, Ticket: "PAY-1", Detail: fmt.Sprintf("entry %d", i)})
				return err
			}); err != nil {
				mu.Lock()
				writeErr = err
				mu.Unlock()
				return
			}
			mu.Lock()
			writes = append(writes, write{end: time.Now(), took: time.Since(start)})
			written = i + 1
			mu.Unlock()
		}
	}()

	// Conditions, not a clock: the writer is going before the first backup,
	// and each backup holds its first write to the copy (its read
	// transaction open) until the writer has committed three more entries
	// since the backup began. A backup that held writers up would never see
	// them and the wait fails; one that does not sees them whatever the
	// machine's load.
	committed := func() int {
		mu.Lock()
		defer mu.Unlock()
		return written
	}
	waitCommitted := func(n int) error {
		for deadline := time.Now().Add(30 * time.Second); committed() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				return fmt.Errorf("the writer stalled at %d entries during a backup, want %d", committed(), n)
			}
		}
		return nil
	}
	if err := waitCommitted(8001); err != nil {
		t.Fatal(err)
	}
	const meanwhile = 3
	var (
		sizes   []int64
		during  []time.Duration
		windows [][2]time.Time
	)
	for i := range 3 {
		mu.Lock()
		before := written
		mu.Unlock()
		out := filepath.Join(dir, fmt.Sprintf("copy%d.db", i))
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		n, err := c.Backup(ctx, &heldWriter{w: slowWriter{f, 2 * time.Millisecond}, hold: func() error { return waitCommitted(before + meanwhile) }})
		windows = append(windows, [2]time.Time{began, time.Now()})
		f.Close()
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		sizes = append(sizes, n)
		if err := checkCopy(out); err != nil {
			t.Errorf("copy %d: %v", i, err)
		}
		cp, err := storage.Open(out, storage.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		head, err := audit.Verify(ctx, cp, nil)
		cp.Close()
		if err != nil || head.Seq < uint64(before) {
			t.Errorf("copy %d: chain of %d entries (%v), want at least the %d written before it began", i, head.Seq, err, before)
		}
	}
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("a write failed during the backups: %v", writeErr)
	}
	for i, win := range windows {
		n := 0
		for _, w := range writes {
			if w.end.After(win[0]) && w.end.Before(win[1]) {
				n++
				during = append(during, w.took)
			}
		}
		// A writer held up by the backup would commit nothing until it
		// ends; the backup waited for meanwhile commits before writing.
		if n < meanwhile {
			t.Errorf("backup %d took %v and %d writes committed meanwhile; want at least %d", i, win[1].Sub(win[0]).Round(time.Millisecond), n, meanwhile)
		}
	}
	if len(during) == 0 {
		t.Fatal("no write during the backups")
	}
	slices.Sort(during)
	t.Logf("3 backups of %d KB, %v each; %d writes during them: p50 %v, p99 %v, max %v", sizes[0]>>10,
		windows[0][1].Sub(windows[0][0]).Round(time.Millisecond), len(during), during[len(during)/2], during[len(during)*99/100], during[len(during)-1])
}
