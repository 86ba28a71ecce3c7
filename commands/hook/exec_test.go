package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// slack is how much later than planned a hook may end on a loaded machine.
const slack = 1500 * time.Millisecond

func testJob() commands.Job {
	return commands.Job{
		Phase:      commands.PhaseStart,
		Attempt:    "0123456789abcdef",
		Ticket:     "PAY-123",
		Env:        "qa",
		Build:      "v2.4.0+build.7",
		Requester:  "U01REQ",
		Admin:      "U02ADMIN",
		Components: []string{"backend", "payments"},
	}
}

// record is one line written by fakehook -record.
type record struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
}

func readRecords(t *testing.T, name string) []record {
	t.Helper()
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func envMap(env []string) map[string]string {
	m := make(map[string]string)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// running reports whether pid is a live process; a zombie waiting for its
// reaper is not.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	f := bytes.Fields(b[i+1:])
	return len(f) > 0 && string(f[0]) != "Z" && string(f[0]) != "X"
}

func readPid(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("the hook's child did not start: %v", err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// noChildren fails t if the test process has a child, running or zombie:
// Run must reap what it starts. Only for tests that do not run in parallel.
func noChildren(t *testing.T) {
	t.Helper()
	var ws syscall.WaitStatus
	pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
	if !errors.Is(err, syscall.ECHILD) {
		t.Errorf("Wait4 = %d, %v; want no child left (ECHILD)", pid, err)
	}
}

func TestExecEnvironment(t *testing.T) {
	tests := []struct {
		name  string
		set   map[string]string
		unset []string
		extra []string
		job   func(*commands.Job)
		want  map[string]string
	}{
		{
			name:  "allowlist, extras and the release",
			set:   map[string]string{"PATH": "/usr/bin:/bin", "HOME": "/home/bot", "LANG": "C.UTF-8", "TZ": "Europe/Berlin", "KUBECONFIG": "/etc/kube/config", "AWS_PROFILE": "deploy"},
			extra: []string{"KUBECONFIG", "AWS_PROFILE", "NOT_SET_ANYWHERE", "KUBECONFIG"},
			want: map[string]string{
				"PATH": "/usr/bin:/bin", "HOME": "/home/bot", "LANG": "C.UTF-8", "TZ": "Europe/Berlin",
				"KUBECONFIG": "/etc/kube/config", "AWS_PROFILE": "deploy",
				"DOBROBOT_TICKET": "PAY-123", "DOBROBOT_PHASE": "start", "DOBROBOT_REQUESTER": "U01REQ",
				"DOBROBOT_ENV": "qa", "DOBROBOT_VERSION": "v2.4.0+build.7",
				"DOBROBOT_ADMIN": "U02ADMIN", "DOBROBOT_COMPONENTS": "backend,payments", "DOBROBOT_ATTEMPT": "0123456789abcdef",
			},
		},
		{
			name:  "unset allowlisted variables are left out; no admin, no components, no environment or version",
			set:   map[string]string{"PATH": "/bin", "HOME": "/root"},
			unset: []string{"LANG", "TZ"},
			job: func(j *commands.Job) {
				j.Phase, j.Admin, j.Components, j.Env, j.Build = commands.PhaseCancel, "", nil, "", ""
			},
			want: map[string]string{
				"PATH": "/bin", "HOME": "/root",
				"DOBROBOT_TICKET": "PAY-123", "DOBROBOT_PHASE": "cancel", "DOBROBOT_REQUESTER": "U01REQ",
				"DOBROBOT_ENV": "production", "DOBROBOT_VERSION": "",
				"DOBROBOT_ADMIN": "", "DOBROBOT_COMPONENTS": "", "DOBROBOT_ATTEMPT": "0123456789abcdef",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The bot's secrets, and an attempt to override the contract.
			t.Setenv("SLACK_BOT_TOKEN", "xoxb-test")
			t.Setenv("SLACK_APP_TOKEN", "xapp-test")
			t.Setenv("JIRA_TOKEN", "secret")
			t.Setenv("DOBROBOT_TICKET", "EVIL-1")
			for k, v := range tt.set {
				t.Setenv(k, v)
			}
			for _, k := range tt.unset {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			rec := filepath.Join(t.TempDir(), "rec.jsonl")
			job := testJob()
			if tt.job != nil {
				tt.job(&job)
			}
			e := &Exec{Argv: []string{fakehook, "-record", rec}, Env: tt.extra, Timeout: 10 * time.Second}
			res := e.Run(context.Background(), job)
			if !res.OK {
				t.Fatalf("Run: %+v", res)
			}
			recs := readRecords(t, rec)
			if len(recs) != 1 {
				t.Fatalf("hook ran %d times, want 1", len(recs))
			}
			got := envMap(recs[0].Env)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("hook environment (-want +got):\n%s", diff)
			}
			if len(recs[0].Env) != len(got) {
				t.Errorf("hook environment has duplicate names: %q", recs[0].Env)
			}
			for _, kv := range recs[0].Env {
				if strings.Contains(kv, "xoxb-") || strings.Contains(kv, "xapp-") || strings.Contains(kv, "secret") {
					t.Errorf("hook environment leaks %q", kv)
				}
			}
		})
	}
}

func TestExecArgvVerbatim(t *testing.T) {
	t.Parallel()
	rec := filepath.Join(t.TempDir(), "rec.jsonl")
	marker := filepath.Join(t.TempDir(), "pwned")
	argv := []string{
		fakehook, "-record", rec, "--",
		"", " spaced  out ", "$HOME", "$(touch " + marker + ")", "`touch " + marker + "`",
		"a;b", "a|b", "a&&b", "--help", "-o" + marker, "*", "'single'", `"double"`, "new\nline", "ü‮x", `back\slash`,
	}
	e := &Exec{Argv: argv, Timeout: 10 * time.Second}
	res := e.Run(context.Background(), testJob())
	if !res.OK {
		t.Fatalf("Run: %+v", res)
	}
	recs := readRecords(t, rec)
	if len(recs) != 1 {
		t.Fatalf("hook ran %d times, want 1", len(recs))
	}
	if diff := cmp.Diff(argv, recs[0].Argv); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists: an argument was interpreted by a shell", marker)
	}
}

func TestExecRefusesInjection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	corpus := []string{
		"PROJ-1; touch " + marker,
		"$(touch " + marker + ")",
		"`touch " + marker + "`",
		"PROJ-1`id`",
		"a|b",
		"a&&b",
		"PROJ-1\n",
		"PROJ-1\ntouch " + marker,
		"PROJ-1\x00",
		"--help",
		"-o" + marker,
		"../../etc/passwd",
		"PROJ-1\u202e",
		"\u202ePROJ-1",
		"PROJ-" + strings.Repeat("1", 10<<10),
		"proj-1",
		"",
	}
	type field struct {
		name string
		set  func(*commands.Job, string)
	}
	fields := []field{
		{"ticket", func(j *commands.Job, s string) { j.Ticket = s }},
		{"component", func(j *commands.Job, s string) { j.Components = []string{"backend", s} }},
		{"requester", func(j *commands.Job, s string) { j.Requester = s }},
		{"admin", func(j *commands.Job, s string) { j.Admin = s }},
		{"attempt", func(j *commands.Job, s string) { j.Attempt = s }},
		{"env", func(j *commands.Job, s string) { j.Env = s }},
		{"version", func(j *commands.Job, s string) { j.Build = s }},
	}
	rec := filepath.Join(dir, "rec.jsonl")
	e := &Exec{Argv: []string{fakehook, "-record", rec}, Timeout: 10 * time.Second}
	for _, f := range fields {
		for _, s := range corpus {
			if s == "" && (f.name == "admin" || f.name == "attempt" || f.name == "env" || f.name == "version") {
				continue // empty means none, which is allowed
			}
			if s == "proj-1" && f.name != "ticket" {
				continue // a fine name for anything but a ticket
			}
			job := testJob()
			f.set(&job, s)
			res := e.Run(context.Background(), job)
			if res.OK || !strings.HasPrefix(res.Error, "refused") {
				t.Errorf("%s %q: got OK=%v Error=%q, want a refusal", f.name, quote(s), res.OK, res.Error)
			}
			if len(res.Error) > 300 {
				t.Errorf("%s %q: error is %d bytes long", f.name, quote(s), len(res.Error))
			}
			if strings.ContainsAny(res.Error, "\n\x00\u202e") {
				t.Errorf("%s %q: error shows raw control characters: %q", f.name, quote(s), res.Error)
			}
		}
	}
	if recs := readRecords(t, rec); len(recs) != 0 {
		t.Errorf("hook spawned %d times, want 0", len(recs))
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists", marker)
	}

	// The same Exec does run a valid job: the zero count above is meaningful.
	if res := e.Run(context.Background(), testJob()); !res.OK {
		t.Fatalf("valid job: %+v", res)
	}
	if recs := readRecords(t, rec); len(recs) != 1 {
		t.Errorf("valid job: hook spawned %d times, want 1", len(recs))
	}
}

func TestExecResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		argv []string
		want commands.HookResult
	}{
		{
			name: "success",
			argv: []string{fakehook, "-stdout", "deployed\n"},
			want: commands.HookResult{OK: true, ExitCode: 0, Output: "deployed\n"},
		},
		{
			name: "non-zero exit keeps the output",
			argv: []string{fakehook, "-stdout", "step 1 ok\n", "-stderr", "step 2: boom\n", "-exit", "3"},
			want: commands.HookResult{ExitCode: 3, Error: "exited with status 3", Output: "step 1 ok\nstep 2: boom\n"},
		},
		{
			name: "invalid UTF-8 output is made valid",
			argv: []string{fakehook, "-stdout", "bad \xff\xfe byte\n", "-exit", "1"},
			want: commands.HookResult{ExitCode: 1, Error: "exited with status 1", Output: "bad \uFFFD byte\n"},
		},
		{
			// It read "killed by signal killed": Go's name of SIGKILL.
			name: "killed by a signal",
			argv: []string{fakehook, "-stdout", "half done\n", "-signal", "9"},
			want: commands.HookResult{ExitCode: -1, Error: "killed by signal 9 (SIGKILL)", Output: "half done\n"},
		},
		{
			name: "terminated by a signal",
			argv: []string{fakehook, "-signal", "15"},
			want: commands.HookResult{ExitCode: -1, Error: "killed by signal 15 (SIGTERM)"},
		},
		{
			name: "missing program",
			argv: []string{filepath.Join(t.TempDir(), "no-such-hook")},
			want: commands.HookResult{ExitCode: -1, Error: "could not start: fork/exec " + filepath.Join(t.TempDir(), "no-such-hook") + ": no such file or directory"},
		},
		{
			name: "empty argv",
			argv: nil,
			want: commands.HookResult{ExitCode: -1, Error: `could not start: hook exec: the program is missing: give an argv list like ["/usr/local/bin/deploy", "start"]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job := testJob()
			job.Phase = commands.PhaseFinish
			e := &Exec{Argv: tt.argv, Timeout: 10 * time.Second}
			before := time.Now()
			got := e.Run(context.Background(), job)
			if got.Duration <= 0 || got.Ended.Before(before) {
				t.Errorf("Duration %v, Ended %v: want set", got.Duration, got.Ended)
			}
			got.Duration, got.Ended = 0, time.Time{}
			want := tt.want
			want.Phase, want.Attempt = commands.PhaseFinish, job.Attempt
			if tt.name == "missing program" {
				// t.TempDir differs per call: compare the shape only.
				if !strings.HasPrefix(got.Error, "could not start: ") || !strings.HasSuffix(got.Error, "no such file or directory") {
					t.Errorf("Error = %q", got.Error)
				}
				want.Error = got.Error
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Run (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExecTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	e := &Exec{
		Argv:    []string{fakehook, "-ignore-term", "-child", pidFile, "-stdout", "started\n", "-sleep", "1h"},
		Timeout: 300 * time.Millisecond,
		Grace:   200 * time.Millisecond,
	}
	start := time.Now()
	res := e.Run(context.Background(), testJob())
	took := time.Since(start)

	if want := "timed out after 300ms (killed)"; res.Error != want || res.OK {
		t.Errorf("Error = %q, OK = %v; want %q, false", res.Error, res.OK, want)
	}
	if res.ExitCode != -1 {
		t.Errorf("ExitCode = %d, want -1", res.ExitCode)
	}
	if res.Output != "started\n" {
		t.Errorf("Output = %q", res.Output)
	}
	if min, max := e.Timeout+e.Grace, e.Timeout+e.Grace+slack; took < min || took > max {
		t.Errorf("Run took %v, want between %v and %v", took, min, max)
	}
	if pid := readPid(t, pidFile); running(pid) {
		t.Errorf("the hook's child %d still runs", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	noChildren(t)
}

func TestExecTimeoutTerminates(t *testing.T) {
	e := &Exec{Argv: []string{fakehook, "-sleep", "1h"}, Timeout: 100 * time.Millisecond, Grace: 10 * time.Second}
	start := time.Now()
	res := e.Run(context.Background(), testJob())
	if want := "timed out after 100ms (terminated)"; res.Error != want {
		t.Errorf("Error = %q, want %q", res.Error, want)
	}
	// SIGTERM was enough: the grace period is not waited out.
	if took := time.Since(start); took > e.Timeout+slack {
		t.Errorf("Run took %v", took)
	}
	noChildren(t)
}

func TestExecCancel(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	e := &Exec{Argv: []string{fakehook, "-ignore-term", "-child", pidFile, "-sleep", "1h"}, Timeout: time.Hour, Grace: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	res := e.Run(ctx, testJob())
	took := time.Since(start)
	if res.OK || !strings.HasPrefix(res.Error, "cancelled after ") || !strings.HasSuffix(res.Error, "(killed)") {
		t.Errorf("Error = %q, OK = %v; want cancelled … (killed)", res.Error, res.OK)
	}
	if took > 200*time.Millisecond+e.Grace+slack {
		t.Errorf("Run took %v", took)
	}
	if pid := readPid(t, pidFile); running(pid) {
		t.Errorf("the hook's child %d still runs", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	noChildren(t)

	// Already cancelled: nothing is started.
	rec := filepath.Join(t.TempDir(), "rec.jsonl")
	e = &Exec{Argv: []string{fakehook, "-record", rec}}
	res = e.Run(ctx, testJob())
	if res.OK || res.Error != "cancelled before it started" {
		t.Errorf("Error = %q", res.Error)
	}
	if recs := readRecords(t, rec); len(recs) != 0 {
		t.Errorf("hook spawned %d times", len(recs))
	}
}

// A hook that exits but leaves a child holding its output pipe must not make
// Run hang, and the child must not outlive Run.
func TestExecLeftoverChild(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	e := &Exec{Argv: []string{fakehook, "-child", pidFile, "-stdout", "done\n"}, Timeout: time.Hour, Grace: 200 * time.Millisecond}
	start := time.Now()
	res := e.Run(context.Background(), testJob())
	took := time.Since(start)
	if !res.OK || res.Output != "done\n" {
		t.Errorf("Run = %+v, want OK with output", res)
	}
	if took > e.Grace+slack {
		t.Errorf("Run took %v", took)
	}
	if pid := readPid(t, pidFile); running(pid) {
		t.Errorf("the hook's child %d still runs", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	noChildren(t)
}

func TestExecOutputBounded(t *testing.T) {
	const size = 100 << 20
	e := &Exec{Argv: []string{fakehook, "-print", strconv.Itoa(size), "-exit", "1"}, Timeout: time.Minute}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res := e.Run(context.Background(), testJob())
	runtime.ReadMemStats(&after)

	if res.OK || res.Error != "exited with status 1" {
		t.Fatalf("Run = %+v", res)
	}
	// All of the output is ASCII: the count of dropped bytes is exact.
	total := size + len("END\n")
	marker := "…[truncated " + strconv.Itoa(total-DefaultMaxOutput) + " bytes]\n"
	if !strings.HasPrefix(res.Output, marker) {
		t.Errorf("Output starts %q, want %q", res.Output[:min(len(res.Output), 60)], marker)
	}
	if got, max := len(res.Output), DefaultMaxOutput+len(marker); got != max {
		t.Errorf("len(Output) = %d, want %d", got, max)
	}
	if !strings.HasSuffix(res.Output, "x\nEND\n") || !utf8.ValidString(res.Output) {
		t.Errorf("Output ends %q", res.Output[max(0, len(res.Output)-20):])
	}
	t.Logf("Run allocated %d bytes", after.TotalAlloc-before.TotalAlloc)
	// Everything the test process allocated while the hook wrote 100 MB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("Run allocated %d bytes for %d bytes of output, want < 8 MiB", alloc, size)
	}
	noChildren(t)
}

func TestExecValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e    Exec
		want string // "" for valid
	}{
		{Exec{Argv: []string{"/bin/deploy"}, Env: []string{"KUBECONFIG", "_X1"}}, ""},
		{Exec{}, "the program is missing"},
		{Exec{Argv: []string{""}}, "the program is missing"},
		{Exec{Argv: []string{"/bin/deploy", "a\x00b"}}, "NUL"},
		{Exec{Argv: []string{"/bin/deploy"}, Env: []string{"1X"}}, "is not a variable name"},
		{Exec{Argv: []string{"/bin/deploy"}, Env: []string{"A=B"}}, "is not a variable name"},
		{Exec{Argv: []string{"/bin/deploy"}, Env: []string{"DOBROBOT_TICKET"}}, "set by dobrobot"},
		{Exec{Argv: []string{"/bin/deploy"}, Timeout: -1}, "negative"},
	}
	for _, tt := range tests {
		err := tt.e.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.e, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want one containing %q", tt.e, err, tt.want)
		case err != nil && commands.ErrorCode(err) != commands.EINVALID:
			t.Errorf("%+v: code %q", tt.e, commands.ErrorCode(err))
		}
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{30 * time.Minute, "30m"},
		{90 * time.Minute, "1h30m"},
		{2 * time.Hour, "2h"},
		{10 * time.Second, "10s"},
		{90 * time.Second, "1m30s"},
		{300 * time.Millisecond, "300ms"},
		{1234567 * time.Microsecond, "1.2s"},
		{125*time.Second + 400*time.Millisecond, "2m5s"},
		{1500 * time.Microsecond, "2ms"},
	}
	for _, tt := range tests {
		if got := duration(tt.d); got != tt.want {
			t.Errorf("duration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestExecEndedBeforeCancel (issue 19, item 4): a hook that has exited by
// the time its context ends reports how it exited, not "cancelled". A
// leader frozen while its hook ran wakes with both at once — the hook's
// exit, and the end of its lost term's context — and must hand in the
// hook's real result. Each run ends the context only once the hook has
// exited (a zombie, or reaped already), so both are ready when Run looks.
func TestExecEndedBeforeCancel(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("tells an exited hook by /proc")
	}
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		e := &Exec{Argv: []string{fakehook}, Timeout: time.Hour, Grace: 200 * time.Millisecond}
		e.started = func(pid int) {
			for deadline := time.Now().Add(10 * time.Second); running(pid) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}
		res := e.Run(ctx, testJob())
		cancel()
		if !res.OK || res.Error != "" || res.ExitCode != 0 {
			t.Fatalf("run %d: OK %v, exit %d, error %q; want the hook's own exit: OK, 0", i, res.OK, res.ExitCode, res.Error)
		}
	}
	noChildren(t)
}
