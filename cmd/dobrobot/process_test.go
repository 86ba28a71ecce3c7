package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The process harness of the tests that run the real binary: the crash
// tests (crash_test.go, randomkill_test.go) kill it with SIGKILL at a
// failpoint or at a random time and start it again; the failover test
// kills, freezes, thaws and stops PostgreSQL leaders, on the deployment
// pgcluster_test.go starts. docs/reliability.md says what each proves.

// binaries are built once for the whole test run.
var binaries struct {
	once      sync.Once
	dir       string
	bot, hook string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// testBinaries returns dobrobot built with the failpoints tag and the fake
// hook program, building them on first use.
func testBinaries(t *testing.T) (bot, hook string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "dobrobot-test-bin")
		if err != nil {
			binaries.err = err
			return
		}
		binaries.dir = dir
		binaries.bot, binaries.hook = filepath.Join(dir, "dobrobot"), filepath.Join(dir, "fakehook")
		for _, b := range [][]string{
			{"build", "-tags", "failpoints", "-o", binaries.bot, "."},
			{"build", "-o", binaries.hook, "../../commands/hook/internal/fakehook"},
		} {
			if out, err := exec.Command("go", b...).CombinedOutput(); err != nil {
				binaries.err = fmt.Errorf("go %s: %v\n%s", strings.Join(b, " "), err, out)
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.bot, binaries.hook
}

// buildBinary builds dobrobot, without failpoints, for one test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dobrobot")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is one process of the binary under test, named name in failures.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error
}

// startProc starts bin with args and env. When t ends the process is
// thawed and killed, and its logs are shown if t failed.
func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		p.kill()
		if t.Failed() {
			t.Logf("logs of %s (pid %d):\n%s", p.name, p.cmd.Process.Pid, p.logs.String())
		}
	})
	return p
}

// holder is the name p leads under: host:pid.
func (p *proc) holder() string {
	host, _ := os.Hostname()
	return host + ":" + strconv.Itoa(p.cmd.Process.Pid)
}

// signal sends sig to p.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s to %s: %v", sig, p.name, err)
	}
}

// exited reports whether p has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// syncBuffer is a bytes.Buffer safe for a process to write while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("exit after SIGTERM: %v\n%s", p.err, p.logs)
		}
	case <-time.After(45 * time.Second):
		p.kill()
		p.t.Fatalf("no exit within 45 s of SIGTERM\n%s", p.logs)
	}
}

// waitCrash waits for the process to kill itself at failpoint name.
func (p *proc) waitCrash(name string) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
		p.t.Fatalf("the bot did not reach failpoint %s\n%s", name, p.logs)
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) {
		p.t.Fatalf("the bot exited with %v, want SIGKILL at %s\n%s", p.err, name, p.logs)
	}
	if ws, _ := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		p.t.Fatalf("the bot exited with %v, want SIGKILL at %s\n%s", p.err, name, p.logs)
	}
	if !strings.Contains(p.logs.String(), "failpoint "+name+":") {
		p.t.Fatalf("the bot was killed, but not at failpoint %s\n%s", name, p.logs)
	}
}

// waitFor polls cond until it holds or timeout passes, and reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
