package failpoint

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// EnvVar is the environment variable that arms failpoints in a binary built
// with the failpoints tag.
const EnvVar = "DOBROBOT_FAILPOINTS"

// The failpoints placed in dobrobot, in the order a command meets them.
const (
	// AfterInboxCommitBeforeAck: a Slack event is recorded in the inbox
	// but not acknowledged (Slack redelivers it).
	AfterInboxCommitBeforeAck = "after_inbox_commit_before_ack"
	// BeforeTransitionCommit: a command's transaction has written
	// everything and is about to commit (nothing of it stays).
	BeforeTransitionCommit = "before_transition_commit"
	// AfterTransitionCommitBeforeOutboxSend: a command is committed, its
	// messages are in the outbox and the sender has not been woken.
	AfterTransitionCommitBeforeOutboxSend = "after_transition_commit_before_outbox_send"
	// AfterDeployIntentCommitBeforeSpawn: dep start is committed (the
	// release is deploying, its hook attempt recorded) and the start hook
	// is not spawned yet.
	AfterDeployIntentCommitBeforeSpawn = "after_deploy_intent_commit_before_spawn"
	// AfterFinishIntentCommitBeforeSpawn: dep finish is committed (its
	// finish hook attempt recorded) and the finish hook is not spawned yet.
	AfterFinishIntentCommitBeforeSpawn = "after_finish_intent_commit_before_spawn"
	// HookRunning: a hook is about to be spawned; arm it with a delay
	// (hook_running=300ms) to kill the bot while the hook runs.
	HookRunning = "hook_running"
	// AfterHookExitBeforeResultCommit: a hook has ended and its result is
	// not recorded yet.
	AfterHookExitBeforeResultCommit = "after_hook_exit_before_result_commit"

	// BeforeDueCommit: the scheduler's firing transaction has written its
	// reminders and the next due times and is about to commit (nothing of
	// it stays: the restart fires them again).
	BeforeDueCommit = "before_due_commit"
	// AfterDueCommitBeforeOutboxSend: a firing is committed, its reminders
	// are in the outbox and the sender has not been woken.
	AfterDueCommitBeforeOutboxSend = "after_due_commit_before_outbox_send"

	// BeforeBuildCommit: a CI delivery's transaction has written its
	// effects and its inbox record and is about to commit (nothing of it
	// stays: CI's retry is judged afresh).
	BeforeBuildCommit = "before_build_commit"
	// AfterBuildCommitBeforeAnswer: a CI delivery is committed with its
	// answer and the intake has not answered yet (CI's retry gets that
	// answer as "seen").
	AfterBuildCommitBeforeAnswer = "after_build_commit_before_answer"
)

// Names lists every failpoint above.
var Names = []string{
	AfterInboxCommitBeforeAck, BeforeTransitionCommit, AfterTransitionCommitBeforeOutboxSend,
	AfterDeployIntentCommitBeforeSpawn, AfterFinishIntentCommitBeforeSpawn, HookRunning,
	AfterHookExitBeforeResultCommit, BeforeDueCommit, AfterDueCommitBeforeOutboxSend,
	BeforeBuildCommit, AfterBuildCommitBeforeAnswer,
}

// Enabled reports whether this binary was built with the failpoints tag.
const Enabled = enabled

// Hit kills the process if the failpoint name is armed (see the package
// documentation); otherwise it returns at once. Without the failpoints build
// tag it does nothing.
func Hit(name string) {
	if !enabled {
		return
	}
	hit(name)
}

// Armed returns the failpoints armed in this process, as given in
// DOBROBOT_FAILPOINTS; none without the build tag.
func Armed() []string {
	if !enabled {
		return nil
	}
	load()
	out := make([]string, 0, len(armed))
	for _, name := range Names {
		if d, ok := armed[name]; ok {
			out = append(out, spec(name, d))
		}
	}
	for name, d := range armed {
		if !contains(Names, name) {
			out = append(out, spec(name, d))
		}
	}
	return out
}

func spec(name string, d time.Duration) string {
	if d > 0 {
		return name + "=" + d.String()
	}
	return name
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var (
	loadOnce sync.Once
	armed    map[string]time.Duration // nil when nothing is armed
	loadErr  error
)

func load() {
	loadOnce.Do(func() {
		armed, loadErr = Parse(os.Getenv(EnvVar))
		if loadErr != nil {
			fmt.Fprintf(os.Stderr, "failpoint: %s: %v (no failpoint armed)\n", EnvVar, loadErr)
		}
	})
}

// Parse reads a DOBROBOT_FAILPOINTS value: failpoint names separated by
// commas, each optionally followed by =DELAY. It returns nil for "".
func Parse(v string) (map[string]time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	out := map[string]time.Duration{}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, delay, hasDelay := strings.Cut(item, "=")
		if name == "" {
			return nil, fmt.Errorf("%q has no failpoint name", item)
		}
		var d time.Duration
		if hasDelay {
			var err error
			if d, err = time.ParseDuration(delay); err != nil || d < 0 {
				return nil, fmt.Errorf("%q: the delay is not a duration like 300ms", item)
			}
		}
		out[name] = d
	}
	return out, nil
}

// hit kills the process now, or after the armed delay, if name is armed.
func hit(name string) {
	load()
	d, ok := armed[name]
	if !ok {
		return
	}
	if d > 0 {
		time.AfterFunc(d, func() { crash(name) })
		return
	}
	crash(name)
}

// crash tells which failpoint fired and sends SIGKILL to its own process.
func crash(name string) {
	fmt.Fprintf(os.Stderr, "failpoint %s: killing the process (SIGKILL)\n", name)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
	}
	// SIGKILL is delivered before Kill returns on Linux; elsewhere, wait.
	time.Sleep(time.Minute)
	os.Exit(137)
}
