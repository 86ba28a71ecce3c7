package commands_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/hook"
)

// The injection corpus (RELIABILITY.md T38, T40) through every free-text
// field of every command, with the real exec hook: a hook never starts for
// a ticket that is not a key, what it gets is byte for byte what was
// validated, nothing in the corpus is ever run, and the hook's environment
// holds none of the bot's secrets.

// recordEnv names the file the recording hook appends to; it is passed to
// the hook through hooks.env, like KUBECONFIG would be.
const recordEnv = "RELIABILITY_HOOK_RECORD"

// TestInjectionHookHelper is not a test: it is the hook program of
// TestInjectionCorpus (this test binary run again), which records its argv
// and environment and exits.
func TestInjectionHookHelper(t *testing.T) {
	file := os.Getenv(recordEnv)
	if file == "" {
		t.Skip("the recording hook of TestInjectionCorpus")
	}
	line, err := json.Marshal(map[string]any{"argv": os.Args, "env": os.Environ()})
	if err == nil {
		var f *os.File
		if f, err = os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			_, err = f.Write(append(line, '\n'))
			err = errors.Join(err, f.Close())
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "recording hook:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

type hookRecord struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
}

func readHookRecords(t *testing.T, file string) []hookRecord {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []hookRecord
	for line := range bytes.Lines(b) {
		var r hookRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("hook record %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// injectionCorpus returns the hostile strings of T38, each as it would stand
// alone and appended to a valid ticket key; marker is a file that must never
// be created.
func injectionCorpus(marker string) []string {
	return []string{
		"; touch " + marker,
		"PAY-1; touch " + marker,
		"$(touch " + marker + ")",
		"`touch " + marker + "`",
		"PAY-1`touch " + marker + "`",
		"a|touch " + marker,
		"a && touch " + marker,
		"PAY-1&&touch " + marker,
		"\ntouch " + marker,
		"PAY-1\ntouch " + marker,
		"PAY-1\x00touch " + marker,
		"\x00",
		"--help",
		"-o" + marker,
		"--output=" + marker,
		"../../etc/passwd",
		"PAY-1/../../x",
		strings.Repeat("A", 10<<10),
		"PAY-" + strings.Repeat("1", 10<<10),
		"\u202ePAY-1",
		"PAY-1\u202e;touch " + marker,
		"<!channel> <@U0ADMIN> &amp; <https://evil.example|PAY-1>",
		"'quoted' \"double\" \\back $HOME ${PATH} *",
	}
}

func TestInjectionCorpus(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	record := filepath.Join(dir, "hook.jsonl")
	t.Setenv(recordEnv, record)
	// Secrets in the bot's environment that a hook must never see.
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-0000-secret")
	t.Setenv("SLACK_APP_TOKEN", "xapp-0-secret")
	t.Setenv("JIRA_TOKEN", "jira-secret-token")

	argv := []string{os.Args[0], "-test.run=^TestInjectionHookHelper$", "--", "deploy", "$(touch " + marker + ")", "--help"}
	// The race detector makes a program wait a second at exit; the hook
	// (this test binary) need not.
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	exe := &hook.Exec{Argv: argv, Env: []string{recordEnv, "GORACE"}, Timeout: time.Minute}
	if err := exe.Validate(); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.rebuild(func(c *commands.Config) { c.Hooks = commands.Hooks{Start: exe, Finish: exe, Cancel: exe} })
	corpus := injectionCorpus(marker)

	type spawn struct{ phase, ticket, requester, admin, components string }
	var want []spawn
	commandsSent := 0
	say := func(user, text string) string {
		commandsSent++
		return reply(h.say(user, text))
	}

	// 1. Where a ticket belongs: every command refuses what is not a key
	// (a key followed by a space and more is a key and a note), nothing
	// runs, and only keys are ever stored.
	for _, x := range corpus {
		for _, verb := range []string{"dobro", "accept", "reject", "here", "dep start", "dep finish", "cancel", "status", "history", "log"} {
			say(admin, verb+" "+x)
		}
	}
	if recs := readHookRecords(t, record); len(recs) != 0 {
		t.Fatalf("%d hooks ran for commands whose ticket is not a key", len(recs))
	}
	for _, r := range checkInvariants(t, h.db).releases {
		if !commands.ValidTicket(r.Ticket) {
			t.Errorf("a release of %q was stored", r.Ticket)
		}
	}

	// 2. Every free-text field of a valid release, and the tracker's
	// fields, carry the corpus; the release goes through start, finish
	// and cancel with the real hook.
	// Parse refuses messages over commands.MaxText bytes: the 10 KB
	// strings go whole into the tracker's fields, cut into the messages.
	// A command holding a control character (a line break or tab aside)
	// or a bidirectional override is refused, naming it (issue 12, item
	// 11): such a string is checked refused in a note, then typed without
	// those characters; the tracker's fields keep them.
	fit := func(s string) string {
		return strings.Map(func(r rune) rune {
			if _, bad := hasUnsafe(string(r)); bad {
				return -1
			}
			return r
		}, s[:min(len(s), commands.MaxText/2-40)])
	}
	for i, x := range corpus {
		if _, bad := hasUnsafe(x); bad {
			if got := say(ann, "dobro PAY-1 "+x[:min(len(x), commands.MaxText/2)]); !strings.Contains(got, "U+") {
				t.Errorf("dobro with a note holding %q: %q; want it refused, naming the character", x, got)
			}
		}
		fin := fmt.Sprintf("PAY-%d", 1000+3*i)
		can := fmt.Sprintf("PAY-%d", 1001+3*i)
		rej := fmt.Sprintf("PAY-%d", 1002+3*i)
		for key, lockable := range map[string]string{fin: "Backend", can: "Payments", rej: "iOS"} {
			tk := readyTicket(key, x, lockable, x+"/"+x)
			tk.Summary, tk.Assignee, tk.Fields["customfield_1"] = x, x, x
			h.tracker.tickets[key] = tk
		}
		note := fit(x) + " " + strings.ToUpper(fit(x))
		for _, key := range []string{fin, can} {
			if got := say(ann, "dobro "+key+" "+note+" no_need_admin"); !strings.Contains(got, "in the queue (#") {
				t.Fatalf("dobro %s with note %q: %q", key, note, got)
			}
			say(approver, "accept "+key)
			if got := say(ann, "dep start "+key); !strings.Contains(got, "started") {
				t.Fatalf("dep start %s: %q", key, got)
			}
			rel := h.release(key)
			want = append(want, spawn{"start", key, ann, "", strings.Join(rel.Components, ",")})
		}
		say(bob, "dobro "+rej+" "+note)
		if got := say(approver, "reject "+rej+" "+fit(x)); !strings.Contains(got, "You rejected") {
			t.Fatalf("reject %s: %q", rej, got)
		}
		say(admin, "lock ios "+fit(x))
		say(admin, "lock "+fit(x))
		say(admin, "unlock ios")
		if got := say(ann, "dep finish "+fin); !strings.Contains(got, "Finishing") {
			t.Fatalf("dep finish %s: %q", fin, got)
		}
		rel := h.release(fin)
		want = append(want, spawn{"finish", fin, ann, "", strings.Join(rel.Components, ",")})
		if got := say(admin, "cancel "+can+" "+fit(x)); !strings.Contains(got, "cancelled") {
			t.Fatalf("cancel %s: %q", can, got)
		}
		rel = h.release(can)
		want = append(want, spawn{"cancel", can, ann, "", strings.Join(rel.Components, ",")})
		if rel.State != commands.StateCancelled || h.release(fin).State != commands.StateDone || h.release(rej).State != commands.StateRejected {
			t.Fatalf("%s is %s, %s is %s (last hook %+v), %s is %s", can, rel.State, fin, h.release(fin).State, h.release(fin).LastHook, rej, h.release(rej).State)
		}
		for _, c := range rel.Components {
			if c != commands.ComponentName(c) || c == "" {
				t.Errorf("component %q of %s is not a normalised name", c, can)
			}
		}
	}

	// 3. A user ID that is not a plain name (the console's /as can type
	// anything): its release may be queued, but no hook runs for it.
	evil := "U0$(touch " + marker + ")"
	h.tracker.tickets["PAY-999"] = readyTicket("PAY-999", "ios")
	say(evil, "dobro PAY-999 no_need_admin")
	say(approver, "accept PAY-999")
	say(evil, "dep start PAY-999")
	if rel := h.release("PAY-999"); rel.State != commands.StateFailed || rel.LastHook == nil || !strings.HasPrefix(rel.LastHook.Error, "refused") {
		t.Errorf("a start for requester %q: %s, last hook %+v; want failed, refused", evil, rel.State, rel.LastHook)
	}

	recs := readHookRecords(t, record)
	var got []spawn
	allowed := []string{"DOBROBOT_TICKET", "DOBROBOT_PHASE", "DOBROBOT_REQUESTER", "DOBROBOT_ADMIN", "DOBROBOT_COMPONENTS", "DOBROBOT_ENV", "DOBROBOT_VERSION",
		"DOBROBOT_ATTEMPT", "PATH", "HOME", "LANG", "TZ", recordEnv, "GORACE"}
	for i, r := range recs {
		if diff := cmp.Diff(argv, r.Argv); diff != "" {
			t.Errorf("hook %d argv (-configured +got):\n%s", i, diff)
		}
		env := map[string]string{}
		for _, kv := range r.Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
			if !slices.Contains(allowed, k) {
				t.Errorf("hook %d got %s from the bot's environment", i, k)
			}
			for _, secret := range []string{"xoxb-", "xapp-", "jira-secret"} {
				if strings.Contains(v, secret) {
					t.Errorf("hook %d: %s holds a secret", i, k)
				}
			}
		}
		got = append(got, spawn{env["DOBROBOT_PHASE"], env["DOBROBOT_TICKET"], env["DOBROBOT_REQUESTER"], env["DOBROBOT_ADMIN"], env["DOBROBOT_COMPONENTS"]})
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(spawn{})); diff != "" {
		t.Errorf("hooks run (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists: something in the corpus was run", marker)
	}
	snap := checkInvariants(t, h.db)
	t.Logf("FIGURE injection: %d corpus strings × every free-text field, %d commands, %d hooks run (each byte-identical to the validated release), 0 for invalid tickets or users, marker absent, %d audit entries verified",
		len(corpus), commandsSent, len(recs), len(snap.audit))
}
