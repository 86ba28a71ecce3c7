package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// walkthrough is the README's console walkthrough, read back: the lines a
// person types, split where a "# …" comment says time passes, and the
// output lines shown after each.
type walkthrough struct {
	sessions [][]string // typed lines; a new session starts after a comment
	shown    []string   // the output lines the README shows, in order
}

// readmeWalkthrough reads the first ```text block of README.md's section
// "A release in the console".
func readmeWalkthrough(t *testing.T) (walkthrough, string) {
	t.Helper()
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## A release in the console\n")
	if !ok {
		t.Fatal("README.md has no section \"A release in the console\"")
	}
	_, rest, ok := strings.Cut(section, "```text\n")
	block, after, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("the README's console section has no text block")
	}
	return parseTalk(t, block, DemoConfig().Users), after
}

// parseTalk reads a conversation as the docs write it: "NAME: command"
// typed by the user called NAME in users, "/as NAME", "# …" where time
// passes, and indented output lines (a trailing "…" cuts one short).
func parseTalk(t *testing.T, block string, users map[string]string) walkthrough {
	t.Helper()
	w := walkthrough{sessions: [][]string{nil}}
	as := ""
	for _, line := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "  "):
			w.shown = append(w.shown, strings.TrimSuffix(strings.TrimSpace(line), "…"))
		case strings.HasPrefix(line, "# "):
			// A new session starts as users.me: go on as the last /as said.
			w.sessions = append(w.sessions, nil)
			if as != "" {
				w.sessions[len(w.sessions)-1] = append(w.sessions[len(w.sessions)-1], as)
			}
		case strings.HasPrefix(line, "/as "):
			as = line
			w.sessions[len(w.sessions)-1] = append(w.sessions[len(w.sessions)-1], line)
		default:
			name, cmd, ok := strings.Cut(line, ": ")
			if _, known := users[name]; !ok || !known {
				t.Fatalf("conversation line %q is neither NAME: command, /as NAME, # comment nor indented output", line)
			}
			w.sessions[len(w.sessions)-1] = append(w.sessions[len(w.sessions)-1], cmd)
			w.shown = append(w.shown, line) // the console echoes it so
		}
	}
	return w
}

// shiftedClock is the real clock, d ahead: hooks and timers run in real
// time, and the Service sees a later now.
type shiftedClock time.Duration

func (d shiftedClock) Now() time.Time { return time.Now().Add(time.Duration(d)) }

func (d shiftedClock) Timer(t time.Duration) (<-chan time.Time, func() bool) {
	return commands.RealClock().Timer(t)
}

// TestReadmeWalkthrough types the README's console walkthrough into the
// demo console, with its real hooks, and checks that every output line the
// README shows is printed, in that order. A comment line in the walkthrough
// says time passes: the commands after it run in a second console session
// on the same database whose clock is the demo's production bake later, so
// the refused early start and the start after the bake are both real. The
// audit log then verifies, and the README's scripted example runs too.
func TestReadmeWalkthrough(t *testing.T) {
	w, rest := readmeWalkthrough(t)
	if len(w.sessions) != 2 {
		t.Fatalf("the walkthrough has %d parts, want 2 (before and after the bake)", len(w.sessions))
	}
	var bake time.Duration
	for _, e := range DemoConfig().Policy().Envs {
		if e.Name == "production" {
			bake = e.Bake
		}
	}
	if bake <= 0 {
		t.Fatal("the demo's production has no bake, and the README shows one")
	}
	db := filepath.Join(t.TempDir(), "demo.db")
	var out strings.Builder
	for i, lines := range w.sessions {
		ctx := context.Background()
		if i > 0 {
			ctx = context.WithValue(ctx, clockKey{}, commands.Clock(shiftedClock(bake)))
		}
		var stdout, stderr bytes.Buffer
		code := Main(ctx, []string{"--log-level", "warn", "console", "--db", db}, strings.NewReader(strings.Join(lines, "\n")+"\n"), &stdout, &stderr, lookupIn(nil))
		if code != 0 {
			t.Fatalf("console session %d exited %d\n%s%s", i+1, code, stdout.String(), stderr.String())
		}
		out.WriteString(stdout.String())
	}
	printed := out.String()
	at := 0
	for _, want := range w.shown {
		i := strings.Index(printed[at:], want)
		if i < 0 {
			t.Errorf("the console did not print %q (in the README's order) after:\n%s", want, printed[:at])
			break
		}
		at += i + len(want)
	}
	if code, out, errs := run(t, "", nil, "audit", "verify", "--db", db); code != 0 || !strings.HasPrefix(out, "audit chain ok: 13 entries") {
		t.Errorf("audit verify: exit %d\n%s%s", code, out, errs)
	}

	// The scripted example: printf '…' | bin/dobrobot console.
	_, script, ok := strings.Cut(rest, "printf '")
	script, _, ok2 := strings.Cut(script, "'")
	if !ok || !ok2 {
		t.Fatal("the README has no scripted console example (printf '…' | bin/dobrobot console)")
	}
	db2 := filepath.Join(t.TempDir(), "script.db")
	code, scripted, errs := run(t, strings.ReplaceAll(script, `\n`, "\n"), nil, "--log-level", "warn", "console", "--db", db2)
	if code != 0 {
		t.Fatalf("the README's script: exit %d\n%s%s", code, scripted, errs)
	}
	for _, want := range []string{"DEMO-2 is done.", "• backend: v2.4.1 (DEMO-2), done by @me just now", "in production, version 2.4.1 — REQUESTED"} {
		if !strings.Contains(scripted, want) {
			t.Errorf("the README's script did not print %q:\n%s", want, scripted)
		}
	}
}
