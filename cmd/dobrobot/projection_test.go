package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
	w.send(requester, "dobro PAY-1")
	w.waitReply(requester, "PAY-1> is in the queue")
	w.send(requester, "dobro PAY-2")
	w.waitReply(requester, "PAY-2> is in the queue")
	w.send(approver, "accept PAY-1")
	w.waitReply(approver, "You accepted PAY-1.")
	w.send(admin, "here PAY-1")
	w.waitReply(admin, "You claimed PAY-1.")
	w.send(requester, "dep start PAY-1")
	w.waitAudit("PAY-1", commands.ActionStarted, 0)
	w.send(admin, "lock ios release freeze")
	w.waitReply(admin, "Froze ios")
	p.kill()
	seed := filepath.Join(t.TempDir(), "seed.db")
	data, err := os.ReadFile(w.db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seed, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return seed
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
			rel, err := tx.OpenRelease("PAY-1")
			if err != nil {
				return err
			}
			return tx.DeleteLock("backend", rel.ID)
		}, "backend: the audit log says PAY-1 holds it, the store has no lock"},
		{"a release moved to done, its locks freed", func(tx commands.Tx) error {
			rel, err := tx.OpenRelease("PAY-1")
			if err != nil {
				return err
			}
			for _, c := range rel.Locks {
				if err := tx.DeleteLock(c, rel.ID); err != nil {
					return err
				}
			}
			rel.State = commands.StateDone
			_, err = tx.PutRelease(rel)
			return err
		}, "PAY-1: the audit log says it is deploying, the store has no open release of it"},
		{"a requested release moved to deploying", func(tx commands.Tx) error {
			rel, err := tx.OpenRelease("PAY-2")
			if err != nil {
				return err
			}
			rel.State = commands.StateDeploying
			_, err = tx.PutRelease(rel)
			return err
		}, "PAY-2: the audit log says it is requested, the store has it deploying"},
		{"a freeze deleted", func(tx commands.Tx) error {
			return tx.DeleteLock("ios", 0)
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
