package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/cmd/internal/adminsock"
	"github.com/dobrobot/dobrobot/commands"
)

// TestMaintenanceWhileRunning runs the real bot and, while it works,
// exports and verifies the audit log and takes a backup with the CLI (which
// goes through the admin socket); then starts a bot from the backup, and
// after the first bot is stopped, works on the file directly.
func TestMaintenanceWhileRunning(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{})
	p := w.start("")
	for i := 1; i <= 4; i++ {
		w.send(requester, fmt.Sprintf("dobro PAY-%d", i))
	}
	w.waitReply(requester, "PAY-4> is in the queue")

	cli := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		cmd := exec.Command(w.bin, append([]string{"--log-level", "error"}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		start := time.Now()
		err := cmd.Run()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("dobrobot %s took %v", strings.Join(args, " "), d)
		}
		if err != nil {
			return out.String(), fmt.Errorf("%v: %s", err, errb.String())
		}
		return out.String(), nil
	}
	// Commands keep coming while the CLI works.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			_, _ = w.slack.Deliver(mention(approver, fmt.Sprintf("accept PAY-%d", i%4+1)))
		}
	}()
	export, err := cli("audit", "export", "--db", w.db)
	if err != nil {
		t.Fatalf("audit export while running: %v", err)
	}
	v := commands.NewVerifier()
	sc := bufio.NewScanner(strings.NewReader(export))
	for sc.Scan() {
		var e commands.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		if err := v.Add(e); err != nil {
			t.Errorf("the export does not verify: %v", err)
		}
	}
	if n, _ := v.Head(); n < 4 {
		t.Errorf("the export has %d entries, want at least 4", n)
	}
	csvOut, err := cli("audit", "export", "--db", w.db, "--format", "csv", "--ticket", "PAY-2")
	if err != nil || !strings.HasPrefix(csvOut, "seq,time,actor,action") || !strings.Contains(csvOut, ",request,PAY-2,") || strings.Contains(csvOut, "PAY-3") {
		t.Errorf("csv export of PAY-2 while running: %v\n%s", err, csvOut)
	}
	verify, err := cli("audit", "verify", "--db", w.db)
	if err != nil || !strings.HasPrefix(verify, "audit chain ok: ") {
		t.Errorf("audit verify while running: %v %q", err, verify)
	}
	backup := filepath.Join(w.dir, "backup.db")
	out, err := cli("backup", "--db", w.db, "--out", backup)
	if err != nil || !strings.Contains(out, "integrity checked") {
		t.Fatalf("backup while running: %v %q", err, out)
	}
	close(done)
	wg.Wait()
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if !strings.Contains(p.logs.String(), "admin socket: backup sent") {
		t.Errorf("the backup did not go through the running bot\n%s", p.logs)
	}
	// Killed: its socket stays behind, answers nobody, and the same verbs
	// work on the file itself.
	p.kill()
	if fi, err := os.Stat(adminsock.SocketPath(w.db)); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("the killed bot's socket: %v", err)
	}
	if out, err := cli("audit", "verify", "--db", w.db); err != nil || !strings.HasPrefix(out, "audit chain ok: ") {
		t.Errorf("audit verify on the killed bot's file: %v %q", err, out)
	}
	w.inspect("PAY-1", "PAY-2", "PAY-3", "PAY-4")

	// A bot starts from the copy and knows the releases.
	w2 := newWorld(t, worldOptions{seed: backup})
	p2 := w2.start("")
	w2.send(requester, "status PAY-3")
	w2.waitReply(requester, "PAY-3")
	for _, m := range w2.slack.Ephemerals(requester) {
		if strings.Contains(m.Text, "never been requested") {
			t.Errorf("the bot started from the backup does not know PAY-3: %q", m.Text)
		}
	}
	p2.kill()
	w2.inspect("PAY-1", "PAY-2", "PAY-3", "PAY-4")
}

// TestRunRefusesDamagedDatabase: the bot refuses to start, within a few
// seconds and before it calls Slack, on a database that is damaged, foreign
// or whose audit log was edited, says why, and leaves the file as it was
// (docs/reliability.md, T20).
func TestRunRefusesDamagedDatabase(t *testing.T) {
	t.Parallel()
	seed := seedCrash(t, false)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"truncated", func(t *testing.T, path string) {
			// Below the end the header records: pages the data needs are gone.
			if err := os.Truncate(path, 3*4096); err != nil {
				t.Fatal(err)
			}
		}, "is truncated"},
		{"zeroed meta pages", func(t *testing.T, path string) {
			zero(t, path, 0, 8192)
		}, "not a bbolt database or its header is damaged"},
		{"not a database", func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.Repeat([]byte("dobrobot\n"), 2000), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a bbolt database"},
		{"another program's bbolt file", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			b, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err }); err != nil {
				t.Fatal(err)
			}
			b.Close()
		}, "not dobrobot's"},
		{"an edited audit entry", func(t *testing.T, path string) {
			b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.Update(func(tx *bolt.Tx) error {
				bk := tx.Bucket([]byte("audit"))
				k, v := bk.Cursor().Last()
				return bk.Put(k, bytes.Replace(v, []byte(admin), []byte("U0MALLORY"), 1))
			}); err != nil {
				t.Fatal(err)
			}
		}, "the audit log does not verify (audit chain broken at seq 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{seed: seed})
			tc.damage(t, w.db)
			before, err := os.ReadFile(w.db)
			if err != nil {
				t.Fatal(err)
			}
			p := w.spawn("")
			start := time.Now()
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				p.kill()
				t.Fatalf("the bot still runs 5 s after starting on a damaged database\n%s", p.logs)
			}
			var ee *exec.ExitError
			if !errors.As(p.err, &ee) || ee.ExitCode() != 1 {
				t.Errorf("exit: %v, want status 1", p.err)
			}
			if !strings.Contains(p.logs.String(), tc.want) {
				t.Errorf("the bot said\n%s\nwant it to say %q", p.logs, tc.want)
			}
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				t.Errorf("the bot died of %v", ws.Signal())
			}
			if n := len(w.slack.Calls("")); n != 0 {
				t.Errorf("the bot made %d Slack calls before refusing", n)
			}
			after, err := os.ReadFile(w.db)
			if err != nil || !bytes.Equal(before, after) {
				t.Errorf("the database file was changed (%v)", err)
			}
			t.Logf("refused in %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// zero overwrites n bytes of path at off with zeros.
func zero(t *testing.T, path string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		t.Fatal(err)
	}
}
