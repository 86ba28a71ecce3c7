package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// seedTampered builds a database in which PAY-1 is deploying (it locks
// backend and payments), PAY-2 is requested and ios is frozen, every change
// made through the bot, and returns a copy of it.
func seedTampered(t *testing.T) string {
	t.Helper()
	w := newWorld(t, worldOptions{})
	p := w.start("")
	w.claimFirstOfTwo()
	w.send(requester, "dep start PAY-1")
	w.waitAudit("PAY-1", commands.ActionStarted, 0)
	w.send(admin, "lock ios release freeze")
	w.waitReply(admin, "Froze ios")
	p.kill()
	return w.copyDB()
}

// editDB changes the database at path directly, as someone with the file
// (and dobrobot's own storage code) could: no audit entry is written.
func editDB(t *testing.T, path string, fn func(tx commands.Tx) error) {
	t.Helper()
	db, err := storage.Open(path, storage.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// TestStateEditsAreDetected: an edit of the stored state that frees a lock,
// moves a release or removes a freeze, without touching the audit log,
// makes `audit verify` fail naming the difference and `dobrobot run`
// refuse to start, before any Slack call (issue 12, item 6). Before the
// replay, the chain verified and the bot started: two releases could
// deploy on one component.
func TestStateEditsAreDetected(t *testing.T) {
	t.Parallel()
	seed := seedTampered(t)
	for _, tc := range []struct {
		name string
		edit func(tx commands.Tx) error
		want string
	}{
		{"a lock deleted", func(tx commands.Tx) error {
			rel, err := onlyOpen(tx, "PAY-1")
			if err != nil {
				return err
			}
			return tx.DeleteLock("backend", rel.ID, "")
		}, "backend: the audit log says PAY-1 holds it, the store has no lock"},
		{"a release moved to done, its locks freed", func(tx commands.Tx) error {
			rel, err := onlyOpen(tx, "PAY-1")
			if err != nil {
				return err
			}
			for _, c := range rel.Locks {
				if err := tx.DeleteLock(c, rel.ID, ""); err != nil {
					return err
				}
			}
			rel.State = commands.StateDone
			_, err = tx.PutRelease(rel)
			return err
		}, "PAY-1: the audit log says it is deploying, the store has no open release of it"},
		{"a requested release moved to deploying", func(tx commands.Tx) error {
			rel, err := onlyOpen(tx, "PAY-2")
			if err != nil {
				return err
			}
			rel.State = commands.StateDeploying
			_, err = tx.PutRelease(rel)
			return err
		}, "PAY-2: the audit log says it is requested, the store has it deploying"},
		{"a freeze deleted", func(tx commands.Tx) error {
			return tx.DeleteLock("ios", 0, "")
		}, "ios: the audit log says it is frozen, the store has no freeze"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{seed: seed})
			verify := func() (string, error) {
				var out, errb bytes.Buffer
				cmd := exec.Command(w.bin, "--log-level", "error", "audit", "verify", "--db", w.db)
				cmd.Env, cmd.Stdout, cmd.Stderr = w.env, &out, &errb
				err := cmd.Run()
				return out.String() + errb.String(), err
			}
			if out, err := verify(); err != nil || !strings.HasPrefix(out, "audit chain ok: ") {
				t.Fatalf("audit verify before the edit: %v %q", err, out)
			}
			editDB(t, w.db, tc.edit)

			out, err := verify()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(out, tc.want) {
				t.Errorf("audit verify after the edit: %v\n%s\nwant exit status 1 and %q", err, out, tc.want)
			}

			before, err := os.ReadFile(w.db)
			if err != nil {
				t.Fatal(err)
			}
			p := w.spawn("")
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				p.kill()
				t.Fatalf("the bot still runs 10 s after starting on an edited database\n%s", p.logs)
			}
			if !errors.As(p.err, &ee) || ee.ExitCode() != 1 {
				t.Errorf("run's exit: %v, want status 1", p.err)
			}
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				t.Errorf("the bot died of %v", ws.Signal())
			}
			if !strings.Contains(p.logs.String(), tc.want) {
				t.Errorf("the bot said\n%s\nwant it to say %q", p.logs, tc.want)
			}
			if n := len(w.slack.Calls("")); n != 0 {
				t.Errorf("the bot made %d Slack calls before refusing", n)
			}
			after, err := os.ReadFile(w.db)
			if err != nil || !bytes.Equal(before, after) {
				t.Errorf("the database file was changed (%v)", err)
			}
		})
	}
}

// TestCheckpoints: the running bot posts the chain's head to the release
// channel at its start; audit checkpoint prints it; audit verify
// --checkpoint accepts it and refuses another hash, a seq past the head and
// a malformed one. A rewrite of the whole chain (every entry re-sealed, so
// that the chain itself verifies) passes audit verify and is caught by the
// checkpoint (issue 12, item 6).
func TestCheckpoints(t *testing.T) {
	t.Parallel()
	w := newWorld(t, worldOptions{seed: seedCrash(t, false)})
	cli := func(args ...string) (string, int) {
		var out bytes.Buffer
		cmd := exec.Command(w.bin, append([]string{"--log-level", "error"}, args...)...)
		cmd.Env, cmd.Stdout, cmd.Stderr = w.env, &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return out.String(), cmd.ProcessState.ExitCode()
	}
	p := w.start("")
	w.waitMessage(func() []fakeslack.Message { return w.slack.Messages(channel) }, "Audit checkpoint: seq ", "a checkpoint in the release channel")
	var posted string
	for _, m := range w.slack.Messages(channel) {
		if _, rest, ok := strings.Cut(m.Text, "audit verify --checkpoint "); ok && m.ThreadTS == "" {
			posted = strings.TrimSuffix(rest, ")")
		}
	}
	cp, err := commands.ParseCheckpoint(posted)
	if err != nil {
		t.Fatalf("the posted checkpoint %q: %v", posted, err)
	}
	if out, code := cli("audit", "checkpoint", "--db", w.db); code != 0 || strings.TrimSpace(out) != cp.String() {
		t.Errorf("audit checkpoint while running: %d %q, want %s", code, out, cp)
	}
	other := commands.Checkpoint{Seq: cp.Seq, Hash: strings.Repeat("0", 64)}
	for _, tc := range []struct {
		arg  string
		code int
		want string
	}{
		{cp.String(), 0, fmt.Sprintf("checkpoint ok: the entry at seq %d has hash %s", cp.Seq, cp.Hash)},
		{other.String(), 1, "does not match checkpoint " + other.String() + ": the entry at seq"},
		{fmt.Sprintf("%d:%s", cp.Seq+100, cp.Hash), 1, fmt.Sprintf("the chain has only %d entries", cp.Seq)},
		{"yesterday", 2, "want SEQ:HASH"},
	} {
		out, code := cli("audit", "verify", "--db", w.db, "--checkpoint", tc.arg)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("audit verify --checkpoint %s (through the running bot): %d %q, want %d and %q", tc.arg, code, out, tc.code, tc.want)
		}
	}
	p.stop()

	// Rewrite history: the first request was someone else's. Every entry
	// is sealed again, so the chain verifies on its own.
	b, err := bolt.Open(w.db, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte("audit"))
		prevSeq, prevHash := uint64(0), commands.GenesisHash
		c := bk.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var e commands.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if e.Seq == 1 {
				e.Actor = "U0MALLORY"
			}
			e = commands.Seal(e, prevSeq, prevHash)
			prevSeq, prevHash = e.Seq, e.Hash
			data, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := bk.Put(k, data); err != nil {
				return err
			}
		}
		return nil
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out, code := cli("audit", "verify", "--db", w.db); code != 0 {
		t.Fatalf("audit verify of the rewritten chain: %d %q; the rewrite was meant to verify", code, out)
	}
	if out, code := cli("audit", "verify", "--db", w.db, "--checkpoint", cp.String()); code != 1 || !strings.Contains(out, "does not match checkpoint") {
		t.Errorf("audit verify --checkpoint of the rewritten chain: %d %q, want 1 and a mismatch", code, out)
	}
}

// onlyOpen returns ticket's one open release, or an error when it has none or
// several.
func onlyOpen(tx commands.Tx, ticket string) (commands.Release, error) {
	open, err := tx.OpenReleases(ticket)
	if err != nil {
		return commands.Release{}, err
	}
	if len(open) != 1 {
		return commands.Release{}, fmt.Errorf("%s has %d open releases, want 1", ticket, len(open))
	}
	return open[0], nil
}
