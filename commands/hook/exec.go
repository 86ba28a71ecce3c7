//go:build unix

package hook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
)

// The defaults of Exec.
const (
	DefaultTimeout   = 30 * time.Minute
	DefaultGrace     = 10 * time.Second
	DefaultMaxOutput = 64 << 10
)

// passThrough are the variables of the bot's environment every hook gets, each
// only when it is set.
var passThrough = []string{"PATH", "HOME", "LANG", "TZ"}

const (
	// pollInterval is how often a stopping process group is checked for
	// members still running.
	pollInterval = 10 * time.Millisecond
	// reapWait bounds the wait, after SIGKILL, for the kernel to finish
	// tearing down the group's processes.
	reapWait = 2 * time.Second
	// pipeWait bounds the wait for the output pipe to close once the hook's
	// process group has ended: a process that left the group (setsid) may
	// still hold it.
	pipeWait = time.Second
)

var _ commands.Executor = (*Exec)(nil)

// Exec runs a hook as a local program. The zero values of Timeout, Grace and
// MaxOutput mean their defaults. An Exec may run several jobs at once.
type Exec struct {
	// Argv is the program and its arguments, run as is: no shell, no
	// expansion. A program name without a slash is looked up in PATH.
	Argv []string
	// Env names extra variables of the bot's environment to pass through
	// (hooks.env), such as KUBECONFIG. Unset ones are left out.
	Env []string
	// Timeout is how long the hook may run (default 30m).
	Timeout time.Duration
	// Grace is how long the hook's process group has to exit after SIGTERM
	// before it gets SIGKILL (default 10s).
	Grace time.Duration
	// MaxOutput is how many bytes of the end of the hook's combined stdout
	// and stderr are kept (default 64 KiB).
	MaxOutput int
	// Log receives the hook's lifecycle; the zero Logger discards it.
	Log zerolog.Logger

	// started, if set, is called with the hook's pid once it is started,
	// before Run waits for it: tests end the context there.
	started func(pid int)
}

// Validate reports a configuration that cannot run: an empty argv or a
// malformed variable name in Env.
func (e *Exec) Validate() error {
	if len(e.Argv) == 0 || e.Argv[0] == "" {
		return commands.Errorf(commands.EINVALID, `hook exec: the program is missing: give an argv list like ["/usr/local/bin/deploy", "start"]`)
	}
	for _, a := range e.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return commands.Errorf(commands.EINVALID, "hook exec: argument %s contains a NUL byte", quote(a))
		}
	}
	for _, name := range e.Env {
		if !envName(name) {
			return commands.Errorf(commands.EINVALID, "hook exec: %s is not a variable name (letters, digits and '_', not starting with a digit)", quote(name))
		}
		if strings.HasPrefix(name, "DOBROBOT_") {
			return commands.Errorf(commands.EINVALID, "hook exec: %s cannot be passed through: DOBROBOT_* variables are set by dobrobot for each release", name)
		}
	}
	if e.Timeout < 0 || e.Grace < 0 || e.MaxOutput < 0 {
		return commands.Errorf(commands.EINVALID, "hook exec: timeout, grace and output cap cannot be negative")
	}
	return nil
}

// Environ returns the complete environment a hook for job gets: the DOBROBOT_*
// variables, then PATH, HOME, LANG, TZ and the variables named in Env that are
// set in the bot's environment. Nothing else of the bot's environment is
// passed on.
func (e *Exec) Environ(job commands.Job) []string {
	env := []string{
		"DOBROBOT_TICKET=" + job.Ticket,
		"DOBROBOT_PHASE=" + string(job.Phase),
		"DOBROBOT_ENV=" + envOf(job),
		"DOBROBOT_VERSION=" + job.Build,
		"DOBROBOT_REQUESTER=" + job.Requester,
		"DOBROBOT_ADMIN=" + job.Admin,
		"DOBROBOT_COMPONENTS=" + strings.Join(job.Components, ","),
		"DOBROBOT_ATTEMPT=" + job.Attempt,
	}
	seen := make(map[string]bool)
	for _, names := range [][]string{passThrough, e.Env} {
		for _, name := range names {
			if seen[name] || !envName(name) || strings.HasPrefix(name, "DOBROBOT_") {
				continue
			}
			seen[name] = true
			if v, ok := os.LookupEnv(name); ok {
				env = append(env, name+"="+v)
			}
		}
	}
	return env
}

// Run runs the hook for job and returns when it and every process of its
// process group have ended. It refuses, without running anything, a job with
// an invalid ticket, component or user. At the timeout, or when ctx is done,
// the process group gets SIGTERM and, Grace later, SIGKILL. Processes the hook
// leaves running in its group after it exits are stopped the same way.
func (e *Exec) Run(ctx context.Context, job commands.Job) commands.HookResult {
	start := time.Now()
	res := commands.HookResult{Phase: job.Phase, Attempt: job.Attempt, ExitCode: -1}
	end := func() commands.HookResult {
		res.Duration = time.Since(start)
		res.Ended = time.Now()
		return res
	}
	log := e.Log.With().Str("ticket", job.Ticket).Str("phase", string(job.Phase)).Str("attempt", job.Attempt).Logger()

	if err := checkJob(job); err != nil {
		res.Error = err.Error()
		log.Warn().Err(err).Msg("hook refused")
		return end()
	}
	if err := e.Validate(); err != nil {
		res.Error = "could not start: " + err.Error()
		log.Error().Err(err).Msg("hook not started")
		return end()
	}
	if err := ctx.Err(); err != nil {
		res.Error = "cancelled before it started"
		return end()
	}
	timeout := positiveOr(e.Timeout, DefaultTimeout)
	grace := positiveOr(e.Grace, DefaultGrace)
	out := newTail(positiveOr(e.MaxOutput, DefaultMaxOutput))

	// One pipe for stdout and stderr keeps their relative order; it is ours
	// (not exec's) so that Wait returns when the hook exits even if a child
	// still holds the pipe, and we decide how long to wait for it.
	r, w, err := os.Pipe()
	if err != nil {
		res.Error = fmt.Sprintf("could not start: output pipe: %v", err)
		return end()
	}
	defer r.Close()
	cmd := exec.Command(e.Argv[0], e.Argv[1:]...)
	cmd.Env = e.Environ(job) // never nil: nil would inherit the bot's secrets
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		res.Error = "could not start: " + err.Error()
		log.Error().Err(err).Msg("hook not started")
		return end()
	}
	p := &group{pgid: cmd.Process.Pid, waited: make(chan error, 1)}
	log.Debug().Int("pid", p.pgid).Msg("hook running")

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, r)
	}()
	go func() { p.waited <- cmd.Wait() }()
	if e.started != nil {
		e.started(p.pgid)
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var why string
	select {
	case err := <-p.waited:
		p.reaped, p.err = true, err
	case <-timer.C:
		why = "timed out after " + duration(timeout)
	case <-ctx.Done():
		why = "cancelled after " + duration(time.Since(start))
	}
	if why != "" && p.exited() {
		// The hook ended before the timeout or the cancel could act on it:
		// its exit is its result. A PostgreSQL leader frozen while its hook
		// ran wakes to both at once, and hands in what the hook did.
		why = ""
	}
	killed := false
	switch {
	case why != "":
		log.Warn().Str("why", why).Msg("stopping the hook's process group")
		killed = p.stop(grace)
	case groupAlive(p.pgid):
		log.Warn().Int("pgid", p.pgid).Msg("the hook exited but left processes running in its group: stopping them")
		p.stop(grace)
	}

	select {
	case <-copied:
	case <-time.After(min(grace, pipeWait)):
		log.Warn().Msg("a process outside the hook's group still holds its output: no longer reading it")
		r.Close()
		<-copied
	}
	res.Output = out.String()

	state := cmd.ProcessState
	if state == nil {
		res.Error = fmt.Sprintf("could not wait for the hook: %v", p.err)
		return end()
	}
	status, _ := state.Sys().(syscall.WaitStatus)
	res.ExitCode = state.ExitCode()
	var exitErr *exec.ExitError
	switch {
	case why != "" && killed:
		res.Error = why + " (killed)"
	case why != "":
		res.Error = why + " (terminated)"
	case status.Signaled():
		res.Error = "killed by " + signalName(status.Signal())
	case res.ExitCode != 0:
		res.Error = fmt.Sprintf("exited with status %d", res.ExitCode)
	case p.err != nil && !errors.As(p.err, &exitErr):
		res.Error = fmt.Sprintf("could not wait for the hook: %v", p.err)
	default:
		res.OK = true
	}
	return end()
}

// signalNames are the usual names of the signals that end a hook. Go's own
// String gives a description ("killed"), which made "killed by signal killed".
var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGILL: "SIGILL",
	syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE",
	syscall.SIGKILL: "SIGKILL", syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
	syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM", syscall.SIGXCPU: "SIGXCPU",
	syscall.SIGXFSZ: "SIGXFSZ", syscall.SIGSYS: "SIGSYS",
}

// signalName returns "signal 9 (SIGKILL)", or "signal N" for a signal
// without a usual name.
func signalName(sig syscall.Signal) string {
	if name, ok := signalNames[sig]; ok {
		return fmt.Sprintf("signal %d (%s)", int(sig), name)
	}
	return fmt.Sprintf("signal %d", int(sig))
}

// group is a hook's process group, led by the hook's process.
type group struct {
	pgid   int
	waited chan error // the leader's cmd.Wait result
	reaped bool
	err    error
}

// exited reports whether the group's leader has exited, and then takes
// its Wait result: it is there already, or the leader is a zombie or gone
// and Wait is about to return.
func (g *group) exited() bool {
	select {
	case err := <-g.waited:
		g.reaped, g.err = true, err
		return true
	default:
	}
	if !ended(g.pgid) {
		return false
	}
	g.reaped, g.err = true, <-g.waited
	return true
}

// stop sends SIGTERM to the group, then SIGKILL once grace has passed while
// the leader is not reaped or a member still runs. It returns when the leader
// is reaped and the group is gone, and reports whether SIGKILL was sent.
func (g *group) stop(grace time.Duration) (killed bool) {
	g.signal(syscall.SIGTERM)
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !g.reaped || groupAlive(g.pgid) {
		select {
		case err := <-g.waited:
			g.reaped, g.err = true, err
		case <-tick.C:
		case <-deadline.C:
			g.signal(syscall.SIGKILL)
			if !g.reaped {
				g.err, g.reaped = <-g.waited, true
			}
			for end := time.Now().Add(reapWait); groupAlive(g.pgid) && time.Now().Before(end); {
				time.Sleep(pollInterval)
			}
			return true
		}
	}
	return false
}

// signal sends sig to the group, and to the leader itself while it is not
// reaped (its pid cannot be reused until then), in case it left the group.
func (g *group) signal(sig syscall.Signal) {
	_ = syscall.Kill(-g.pgid, sig)
	if !g.reaped {
		_ = syscall.Kill(g.pgid, sig)
	}
}
