//go:build unix

// Package hooks_test runs the example hooks of docs/hooks-cookbook.md as
// real processes, with stubs of helm, kubectl, docker, ssh and curl first on
// PATH that record their command lines, so that the cookbook cannot rot.
//
// The stubs are this test binary itself: TestMain acts as the stub when it is
// started under a tool's name with HOOKSTUB_LOG set.
package hooks_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/hook"
)

// The stub's settings, all environment variables of the script under test.
const (
	// stubLog names the file every stub call appends one JSON line to.
	stubLog = "HOOKSTUB_LOG"
	// stubEnv is a comma-separated list of variables whose values the stub
	// records with each call.
	stubEnv = "HOOKSTUB_ENV"
	// stubOutPrefix + tool is what that tool's stub prints on stdout.
	stubOutPrefix = "HOOKSTUB_OUT_"
	// stubExitPrefix + tool is that tool's stub's exit status (default 0).
	stubExitPrefix = "HOOKSTUB_EXIT_"
)

// tools are the programs the example hooks run; each has a stub.
var tools = []string{"helm", "kubectl", "docker", "ssh", "curl"}

// hookDir is where the cookbook's configuration blocks install the scripts.
const hookDir = "/usr/local/lib/dobrobot/hooks/"

// cookbook is the page whose configuration blocks the tests run.
const cookbook = "../../docs/hooks-cookbook.md"

// unset, as the value of a variable in a test case, removes the variable from
// the hook's environment.
const unset = "\x00unset"

func TestMain(m *testing.M) {
	if log := os.Getenv(stubLog); log != "" && slices.Contains(tools, filepath.Base(os.Args[0])) {
		os.Exit(stub(log))
	}
	os.Exit(m.Run())
}

// call is one run of a stubbed tool.
type call struct {
	Argv  []string `json:"argv"`
	Env   []string `json:"env,omitempty"`
	Stdin string   `json:"stdin,omitempty"`
}

// stub records the call it is (argv, the variables named in HOOKSTUB_ENV, its
// standard input) in the file log, prints HOOKSTUB_OUT_<tool> and exits with
// HOOKSTUB_EXIT_<tool>.
func stub(log string) int {
	tool := filepath.Base(os.Args[0])
	c := call{Argv: append([]string{tool}, os.Args[1:]...)}
	for name := range strings.SplitSeq(os.Getenv(stubEnv), ",") {
		if v, ok := os.LookupEnv(name); ok && name != "" {
			c.Env = append(c.Env, name+"="+v)
		}
	}
	// The runner gives a hook /dev/null, and a script may pipe into a tool.
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stub:", err)
		return 100
	}
	c.Stdin = string(in)
	line, err := json.Marshal(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stub:", err)
		return 100
	}
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stub:", err)
		return 100
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stub:", err)
		return 100
	}
	fmt.Print(os.Getenv(stubOutPrefix + tool))
	code, _ := strconv.Atoi(os.Getenv(stubExitPrefix + tool))
	return code
}

// snippet is one configuration block of the cookbook: the arguments of each
// phase's hook (after the script's path) and hooks.env.
type snippet struct {
	Env    []string
	Phases map[commands.Phase][]string
}

// args returns the arguments the snippet gives the script in phase, or, for
// a phase it configures no hook for, those of its start hook: the script
// must then still behave.
func (s snippet) args(phase commands.Phase) []string {
	if a, ok := s.Phases[phase]; ok {
		return a
	}
	return s.Phases[commands.PhaseStart]
}

// snippets reads the cookbook's YAML blocks with a hooks section and returns
// them by the name of the script they run. Every exec hook of a block must
// run a script of this directory from hookDir, and one block must run only
// one script.
func snippets(t *testing.T) map[string]snippet {
	t.Helper()
	page, err := os.ReadFile(cookbook)
	if err != nil {
		t.Fatal(err)
	}
	type hookConfig struct {
		Exec []string `yaml:"exec"`
	}
	var doc struct {
		Hooks struct {
			Env    []string    `yaml:"env"`
			Start  *hookConfig `yaml:"start"`
			Finish *hookConfig `yaml:"finish"`
			Cancel *hookConfig `yaml:"cancel"`
		} `yaml:"hooks"`
	}
	blocks := regexp.MustCompile("(?ms)^```yaml\n(.*?)^```").FindAllSubmatch(page, -1)
	out := make(map[string]snippet)
	for _, b := range blocks {
		if !bytes.HasPrefix(b[1], []byte("hooks:")) {
			continue
		}
		doc.Hooks.Start, doc.Hooks.Finish, doc.Hooks.Cancel, doc.Hooks.Env = nil, nil, nil, nil
		if err := yaml.Unmarshal(b[1], &doc); err != nil {
			t.Fatalf("%s: a configuration block does not parse: %v\n%s", cookbook, err, b[1])
		}
		s := snippet{Env: doc.Hooks.Env, Phases: make(map[commands.Phase][]string)}
		script := ""
		for phase, h := range map[commands.Phase]*hookConfig{commands.PhaseStart: doc.Hooks.Start, commands.PhaseFinish: doc.Hooks.Finish, commands.PhaseCancel: doc.Hooks.Cancel} {
			if h == nil {
				continue
			}
			if len(h.Exec) == 0 || !strings.HasPrefix(h.Exec[0], hookDir) {
				t.Fatalf("%s: hooks.%s.exec must run a script from %s: %q", cookbook, phase, hookDir, h.Exec)
			}
			name := strings.TrimPrefix(h.Exec[0], hookDir)
			if script != "" && name != script {
				t.Fatalf("%s: one block runs both %s and %s", cookbook, script, name)
			}
			script = name
			s.Phases[phase] = h.Exec[1:]
		}
		if _, ok := s.Phases[commands.PhaseStart]; !ok {
			t.Fatalf("%s: the block of %s has no start hook", cookbook, script)
		}
		if _, dup := out[script]; dup {
			t.Fatalf("%s: two blocks run %s", cookbook, script)
		}
		out[script] = s
	}
	return out
}

// TestEveryScriptHasABlock checks that the cookbook shows a configuration
// for every script of this directory, and that every script it shows exists
// and is executable.
func TestEveryScriptHasABlock(t *testing.T) {
	scripts, err := filepath.Glob("*.sh")
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	for name := range snippets(t) {
		shown = append(shown, name)
	}
	slices.Sort(shown)
	if diff := cmp.Diff(scripts, shown); diff != "" {
		t.Errorf("scripts in examples/hooks (-) and scripts configured in %s (+) differ:\n%s", cookbook, diff)
	}
	for _, name := range scripts {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&0o111 != 0o111 {
			t.Errorf("%s is not executable (mode %v): git update-index --chmod=+x", name, fi.Mode())
		}
	}
}

// release is what a test case changes of the release a hook runs for.
type release struct {
	phase      commands.Phase
	components []string
	// vars sets variables of the hook's environment after dobrobot's own;
	// the value unset removes one.
	vars map[string]string
	// real names tools that are not stubbed: the script runs the one found
	// in the test's PATH.
	real []string
}

// result is what a script did: the stub calls in order, its exit status and
// its combined output.
type result struct {
	calls  []call
	status int
	output string
}

// runScript runs script with args for rel, as dobrobot's exec hook runner
// would: its environment is the one hook.Exec builds for the job (a release
// of PAY-123 to qa at version 2.4.0), then rel.vars: the DOBROBOT_* and
// HOOKSTUB_* ones, and those hookEnv
// (the block's hooks.env) names. PATH is the stubs' directory, the
// directories of rel.real's tools, /usr/bin and /bin; HOME is a temporary
// directory.
func runScript(t *testing.T, script string, args, hookEnv []string, rel release) result {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	path := bin
	for _, tool := range tools {
		if slices.Contains(rel.real, tool) {
			p, err := exec.LookPath(tool)
			if err != nil {
				t.Fatal(err)
			}
			path += ":" + filepath.Dir(p)
			continue
		}
		if err := os.Symlink(self, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(dir, "calls.jsonl")

	job := commands.Job{
		Phase:      rel.phase,
		Attempt:    "9f86d081884c7d65",
		Ticket:     "PAY-123",
		Env:        "qa",
		Build:      "2.4.0",
		Requester:  "U01REQ",
		Admin:      "U02ADMIN",
		Components: rel.components,
	}
	// Environ adds PATH, HOME, LANG and TZ of the test's environment; PATH
	// and HOME are replaced below. It is given no hooks.env, so that a
	// GITHUB_TOKEN or KUBECONFIG of whoever runs the tests stays out: the
	// runner would pass on a variable of the case only when the block's
	// hooks.env (hookEnv) names it, and so does this.
	env := (&hook.Exec{Argv: []string{script}}).Environ(job)
	set := map[string]string{
		"PATH":  path + ":/usr/bin:/bin",
		"HOME":  dir,
		stubLog: log,
		// A stub built with -race would otherwise sleep a second at exit.
		"GORACE": "atexit_sleep_ms=0",
	}
	for k, v := range rel.vars {
		if strings.HasPrefix(k, "DOBROBOT_") || strings.HasPrefix(k, "HOOKSTUB_") || slices.Contains(hookEnv, k) {
			set[k] = v
		}
	}
	env = slices.DeleteFunc(env, func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		_, replaced := set[name]
		return replaced
	})
	for k, v := range set {
		if v != unset {
			env = append(env, k+"="+v)
		}
	}
	slices.Sort(env)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "./"+script, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exitErr *exec.ExitError
	res := result{output: out.String()}
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		res.status = exitErr.ExitCode()
	default:
		t.Fatalf("%s %q: %v\n%s", script, args, err, out.String())
	}
	res.calls = readCalls(t, log)
	return res
}

// readCalls returns the calls recorded in log, none when it does not exist.
func readCalls(t *testing.T, log string) []call {
	t.Helper()
	f, err := os.Open(log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var calls []call
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("stub log line %q: %v", sc.Text(), err)
		}
		calls = append(calls, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return calls
}

// argv is a shorthand for a call that recorded only its command line.
func argv(args ...string) call { return call{Argv: args} }

// TestScripts runs each script with the argv of its cookbook block, per
// phase, and compares the tools it ran, its exit status and a line of its
// output with the expected ones.
func TestScripts(t *testing.T) {
	blocks := snippets(t)
	const chart = "oci://registry.example.com/charts/shop"
	const token = "ghp_0123456789abcdefABCDEF"
	ghBody := func(phase string) string {
		return `{"ref":"main","inputs":{"environment":"qa","version":"2.4.0","ticket":"PAY-123","phase":"` + phase + `","attempt":"9f86d081884c7d65"}}`
	}
	ghCall := func(phase string) call {
		return call{
			Argv: []string{"curl", "--silent", "--show-error", "--fail-with-body", "--max-time", "30", "--request", "POST",
				"--header", "Accept: application/vnd.github+json",
				"--header", "X-GitHub-Api-Version: 2022-11-28",
				"--header", "Content-Type: application/json",
				"--config", "-", "--data", ghBody(phase),
				"--url", "https://api.github.com/repos/example/shop/actions/workflows/deploy.yml/dispatches"},
			Stdin: `header = "Authorization: Bearer ` + token + `"` + "\n",
		}
	}
	composeSSH := func(version, project string) call {
		return argv("ssh", "-o", "BatchMode=yes", "--", "deploy@app1.example.com",
			"IMAGE_TAG='"+version+"' docker compose --file '/srv/shop/compose.yaml' --project-name '"+project+"' pull && "+
				"IMAGE_TAG='"+version+"' docker compose --file '/srv/shop/compose.yaml' --project-name '"+project+"' up --detach --wait")
	}
	const jsonpath = `jsonpath={.spec.template.spec.containers[?(@.name=="%s")].image}`

	tests := []struct {
		name   string
		script string
		rel    release
		extra  []string // arguments after the block's
		want   []call
		status int
		output string // a line the output must contain
	}{
		{
			name: "helm start", script: "helm-upgrade.sh", rel: release{phase: commands.PhaseStart},
			want: []call{argv("helm", "upgrade", "--install", "--namespace", "shop-qa", "--wait", "--timeout", "10m",
				"--set-string", "image.tag=2.4.0", "--description", "dobrobot PAY-123 2.4.0", "--", "shop", chart)},
			output: "helm-upgrade.sh: deploying 2.4.0 of shop to namespace shop-qa for PAY-123",
		},
		{
			name: "helm start in production", script: "helm-upgrade.sh",
			rel: release{phase: commands.PhaseStart, vars: map[string]string{"DOBROBOT_ENV": "production", "DOBROBOT_VERSION": "v2.4.0-rc.1"}},
			want: []call{argv("helm", "upgrade", "--install", "--namespace", "shop-production", "--wait", "--timeout", "10m",
				"--set-string", "image.tag=v2.4.0-rc.1", "--description", "dobrobot PAY-123 v2.4.0-rc.1", "--", "shop", chart)},
		},
		{
			name: "helm start fails", script: "helm-upgrade.sh",
			rel: release{phase: commands.PhaseStart, vars: map[string]string{stubOutPrefix + "helm": "Error: context deadline exceeded\n", stubExitPrefix + "helm": "1"}},
			want: []call{argv("helm", "upgrade", "--install", "--namespace", "shop-qa", "--wait", "--timeout", "10m",
				"--set-string", "image.tag=2.4.0", "--description", "dobrobot PAY-123 2.4.0", "--", "shop", chart)},
			status: 1, output: "Error: context deadline exceeded",
		},
		{
			name: "helm finish does nothing", script: "helm-upgrade.sh", rel: release{phase: commands.PhaseFinish},
			output: "nothing to do at finish",
		},
		{
			name: "helm cancel rolls back this version", script: "helm-upgrade.sh",
			rel: release{phase: commands.PhaseCancel, vars: map[string]string{stubOutPrefix + "helm": `{"image":{"repository":"registry.example.com/shop","tag":"2.4.0"}}`}},
			want: []call{
				argv("helm", "get", "values", "--namespace", "shop-qa", "--output", "json", "--", "shop"),
				argv("helm", "rollback", "--namespace", "shop-qa", "--wait", "--timeout", "10m", "--", "shop"),
			},
			output: "rolling shop in shop-qa back to its previous revision",
		},
		{
			name: "helm cancel leaves another version alone", script: "helm-upgrade.sh",
			rel:    release{phase: commands.PhaseCancel, vars: map[string]string{stubOutPrefix + "helm": `{"image":{"tag":"2.4.01"}}`}},
			want:   []call{argv("helm", "get", "values", "--namespace", "shop-qa", "--output", "json", "--", "shop")},
			output: "shop in shop-qa does not run 2.4.0: nothing to roll back",
		},
		{
			name: "helm cancel cannot read the release", script: "helm-upgrade.sh",
			rel:    release{phase: commands.PhaseCancel, vars: map[string]string{stubExitPrefix + "helm": "1"}},
			want:   []call{argv("helm", "get", "values", "--namespace", "shop-qa", "--output", "json", "--", "shop")},
			status: 2, output: "could not read the values of shop in shop-qa: check by hand whether to roll back",
		},

		{
			name: "branch start", script: "helm-branch-namespace.sh", rel: release{phase: commands.PhaseStart},
			want: []call{argv("helm", "upgrade", "--install", "--namespace", "qa-pay-123", "--create-namespace", "--wait", "--timeout", "10m",
				"--set-string", "image.tag=2.4.0", "--description", "dobrobot PAY-123 2.4.0", "--", "shop", "/srv/charts/shop")},
			output: "to namespace qa-pay-123",
		},
		{
			name: "branch start with a prefix to sanitise", script: "helm-branch-namespace.sh",
			rel: release{phase: commands.PhaseStart, vars: map[string]string{"DOBROBOT_TICKET": "WEB2-7"}}, extra: []string{"--prefix=Review__Apps.-"},
			want: []call{argv("helm", "upgrade", "--install", "--namespace", "review-apps-web2-7", "--create-namespace", "--wait", "--timeout", "10m",
				"--set-string", "image.tag=2.4.0", "--description", "dobrobot WEB2-7 2.4.0", "--", "shop", "/srv/charts/shop")},
		},
		{
			name: "branch start with a prefix that cuts the ticket off", script: "helm-branch-namespace.sh",
			rel: release{phase: commands.PhaseStart}, extra: []string{"--prefix=" + strings.Repeat("a", 60) + "-"},
			status: 2, output: "--prefix is too long",
		},
		{
			name: "branch finish does nothing", script: "helm-branch-namespace.sh", rel: release{phase: commands.PhaseFinish},
			output: "nothing to do at finish: PAY-123 stays up in namespace qa-pay-123",
		},
		{
			name: "branch cancel removes the namespace", script: "helm-branch-namespace.sh", rel: release{phase: commands.PhaseCancel},
			want: []call{
				argv("helm", "uninstall", "--namespace", "qa-pay-123", "--ignore-not-found", "--wait", "--timeout", "10m", "--", "shop"),
				argv("kubectl", "delete", "namespace", "--ignore-not-found", "--wait", "--timeout", "10m", "--", "qa-pay-123"),
			},
		},

		{
			name: "kubectl start", script: "kubectl-set-image.sh", rel: release{phase: commands.PhaseStart, components: []string{"backend", "payments"}},
			want: []call{
				argv("kubectl", "--namespace", "qa", "set", "image", "deployment/backend", "backend=registry.example.com/shop/backend:2.4.0"),
				argv("kubectl", "--namespace", "qa", "set", "image", "deployment/payments", "payments=registry.example.com/shop/payments:2.4.0"),
				argv("kubectl", "--namespace", "qa", "rollout", "status", "deployment/backend", "--timeout", "5m"),
				argv("kubectl", "--namespace", "qa", "rollout", "status", "deployment/payments", "--timeout", "5m"),
			},
			output: "deploying 2.4.0 of backend,payments to namespace qa for PAY-123",
		},
		{
			name: "kubectl start without components", script: "kubectl-set-image.sh", rel: release{phase: commands.PhaseStart},
			status: 2, output: "PAY-123 has no components: name the Deployments with: dobro PAY-123 to qa version 2.4.0 on backend,...",
		},
		{
			name: "kubectl start with a component that is not a DNS label", script: "kubectl-set-image.sh",
			rel:    release{phase: commands.PhaseStart, components: []string{"backend", "Payments_v2"}},
			status: 2, output: "component Payments_v2 must be a DNS label",
		},
		{
			name: "kubectl finish does nothing", script: "kubectl-set-image.sh", rel: release{phase: commands.PhaseFinish, components: []string{"backend"}},
			output: "nothing to do at finish",
		},
		{
			name: "kubectl cancel undoes what runs this version", script: "kubectl-set-image.sh",
			rel: release{phase: commands.PhaseCancel, components: []string{"backend"}, vars: map[string]string{stubOutPrefix + "kubectl": "registry.example.com/shop/backend:2.4.0"}},
			want: []call{
				argv("kubectl", "--namespace", "qa", "get", "deployment/backend", "--output", fmt.Sprintf(jsonpath, "backend")),
				argv("kubectl", "--namespace", "qa", "rollout", "undo", "deployment/backend"),
				argv("kubectl", "--namespace", "qa", "rollout", "status", "deployment/backend", "--timeout", "5m"),
			},
			output: "rolling deployment/backend in qa back",
		},
		{
			name: "kubectl cancel leaves another version alone", script: "kubectl-set-image.sh",
			rel: release{phase: commands.PhaseCancel, components: []string{"backend", "payments"}, vars: map[string]string{stubOutPrefix + "kubectl": "registry.example.com/shop/backend:2.3.9"}},
			want: []call{
				argv("kubectl", "--namespace", "qa", "get", "deployment/backend", "--output", fmt.Sprintf(jsonpath, "backend")),
				argv("kubectl", "--namespace", "qa", "get", "deployment/payments", "--output", fmt.Sprintf(jsonpath, "payments")),
			},
			output: "deployment/payments in qa does not run 2.4.0: nothing to roll back",
		},

		{
			name: "compose start over ssh", script: "docker-compose.sh", rel: release{phase: commands.PhaseStart},
			want:   []call{composeSSH("2.4.0", "shop-qa")},
			output: "deploying 2.4.0 as project shop-qa on deploy@app1.example.com for PAY-123",
		},
		{
			name: "compose start on this host", script: "docker-compose.sh",
			rel:   release{phase: commands.PhaseStart, vars: map[string]string{"DOBROBOT_ENV": "staging", stubEnv: "IMAGE_TAG"}},
			extra: []string{"--ssh="},
			want: []call{
				{Argv: []string{"docker", "compose", "--file", "/srv/shop/compose.yaml", "--project-name", "shop-staging", "pull"}, Env: []string{"IMAGE_TAG=2.4.0"}},
				{Argv: []string{"docker", "compose", "--file", "/srv/shop/compose.yaml", "--project-name", "shop-staging", "up", "--detach", "--wait"}, Env: []string{"IMAGE_TAG=2.4.0"}},
			},
		},
		{
			name: "compose start fails", script: "docker-compose.sh",
			rel:    release{phase: commands.PhaseStart, vars: map[string]string{stubExitPrefix + "ssh": "255"}},
			want:   []call{composeSSH("2.4.0", "shop-qa")},
			status: 255,
		},
		{
			name: "compose finish does nothing", script: "docker-compose.sh", rel: release{phase: commands.PhaseFinish},
			output: "nothing to do at finish",
		},
		{
			name: "compose cancel does nothing and says so", script: "docker-compose.sh", rel: release{phase: commands.PhaseCancel},
			output: "nothing rolled back: Compose keeps no previous version",
		},

		{
			name: "github start", script: "github-dispatch.sh", rel: release{phase: commands.PhaseStart, vars: map[string]string{"GITHUB_TOKEN": token}},
			want:   []call{ghCall("start")},
			output: "dispatching deploy.yml on example/shop@main: start 2.4.0 to qa for PAY-123",
		},
		{
			name: "github cancel", script: "github-dispatch.sh", rel: release{phase: commands.PhaseCancel, vars: map[string]string{"GITHUB_TOKEN": token}},
			want: []call{ghCall("cancel")},
		},
		{
			name: "github finish does nothing", script: "github-dispatch.sh", rel: release{phase: commands.PhaseFinish, vars: map[string]string{"GITHUB_TOKEN": token}},
			output: "nothing to do at finish",
		},
		{
			name: "github without a token", script: "github-dispatch.sh", rel: release{phase: commands.PhaseStart},
			status: 2, output: "GITHUB_TOKEN is not set: pass it to the hook with hooks.env: [GITHUB_TOKEN]",
		},
		{
			name: "github with a token that would break curl's config", script: "github-dispatch.sh",
			rel:    release{phase: commands.PhaseStart, vars: map[string]string{"GITHUB_TOKEN": `ghp_x"` + "\nurl = https://evil.example"}},
			status: 2, output: "GITHUB_TOKEN is empty or not a GitHub token",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			block, ok := blocks[tc.script]
			if !ok {
				t.Fatalf("%s has no configuration block for %s", cookbook, tc.script)
			}
			args := append(slices.Clip(block.args(tc.rel.phase)), tc.extra...)
			got := runScript(t, tc.script, args, block.Env, tc.rel)
			if diff := cmp.Diff(tc.want, got.calls); diff != "" {
				t.Errorf("%s %s: tool calls (-want +got):\n%s\noutput:\n%s", tc.script, tc.rel.phase, diff, got.output)
			}
			if got.status != tc.status {
				t.Errorf("%s %s: exit status %d, want %d; output:\n%s", tc.script, tc.rel.phase, got.status, tc.status, got.output)
			}
			if !strings.Contains(got.output, tc.output) {
				t.Errorf("%s %s: the output does not contain %q:\n%s", tc.script, tc.rel.phase, tc.output, got.output)
			}
			if tok := tc.rel.vars["GITHUB_TOKEN"]; tok != "" && strings.Contains(got.output, tok) {
				t.Errorf("%s %s: the output shows GITHUB_TOKEN:\n%s", tc.script, tc.rel.phase, got.output)
			}
		})
	}
}

// TestRefusals runs every script, in every phase, with a release or an
// argument it must refuse, and checks that it exits with status 2 before
// running any tool, with a message on stderr that names what is wrong.
func TestRefusals(t *testing.T) {
	blocks := snippets(t)
	cases := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"DOBROBOT_VERSION unset", map[string]string{"DOBROBOT_VERSION": unset}, "DOBROBOT_VERSION is not set"},
		{"DOBROBOT_VERSION empty", map[string]string{"DOBROBOT_VERSION": ""}, "DOBROBOT_VERSION is empty: this release has no version"},
		{"DOBROBOT_VERSION with a space", map[string]string{"DOBROBOT_VERSION": "2.4 0"}, "DOBROBOT_VERSION is not a safe version"},
		{"DOBROBOT_VERSION with a semicolon", map[string]string{"DOBROBOT_VERSION": "2.4.0;rm -rf /"}, "DOBROBOT_VERSION is not a safe version"},
		{"DOBROBOT_VERSION with a command substitution", map[string]string{"DOBROBOT_VERSION": "$(id)"}, "DOBROBOT_VERSION is not a safe version"},
		{"DOBROBOT_VERSION with a quote", map[string]string{"DOBROBOT_VERSION": "2.4.0'"}, "DOBROBOT_VERSION is not a safe version"},
		{"DOBROBOT_VERSION with a newline", map[string]string{"DOBROBOT_VERSION": "2.4.0\nx"}, "DOBROBOT_VERSION is not a safe version"},
		{"DOBROBOT_VERSION as an option", map[string]string{"DOBROBOT_VERSION": "--help"}, "DOBROBOT_VERSION is not a safe version"},
		{"DOBROBOT_VERSION too long", map[string]string{"DOBROBOT_VERSION": strings.Repeat("1", 129)}, "DOBROBOT_VERSION is longer than 128 characters"},
		{"DOBROBOT_ENV unset", map[string]string{"DOBROBOT_ENV": unset}, "DOBROBOT_ENV is not set"},
		{"DOBROBOT_ENV empty", map[string]string{"DOBROBOT_ENV": ""}, "DOBROBOT_ENV is not a DNS label"},
		{"DOBROBOT_ENV in capitals", map[string]string{"DOBROBOT_ENV": "QA"}, "DOBROBOT_ENV is not a DNS label"},
		{"DOBROBOT_ENV with an underscore", map[string]string{"DOBROBOT_ENV": "qa_1"}, "DOBROBOT_ENV is not a DNS label"},
		{"DOBROBOT_ENV with a leading dash", map[string]string{"DOBROBOT_ENV": "-qa"}, "DOBROBOT_ENV is not a DNS label"},
		{"DOBROBOT_ENV with a dot", map[string]string{"DOBROBOT_ENV": "qa.eu"}, "DOBROBOT_ENV is not a DNS label"},
		{"DOBROBOT_ENV as a path", map[string]string{"DOBROBOT_ENV": "../prod"}, "DOBROBOT_ENV is not a DNS label"},
		{"DOBROBOT_ENV too long", map[string]string{"DOBROBOT_ENV": strings.Repeat("q", 64)}, "DOBROBOT_ENV is longer than 63 characters"},
		{"DOBROBOT_TICKET unset", map[string]string{"DOBROBOT_TICKET": unset}, "DOBROBOT_TICKET is not set"},
		{"DOBROBOT_TICKET not a key", map[string]string{"DOBROBOT_TICKET": "PAY-1; rm -rf /"}, "DOBROBOT_TICKET is not a ticket key"},
		{"DOBROBOT_PHASE unknown", map[string]string{"DOBROBOT_PHASE": "deploy"}, "DOBROBOT_PHASE is not start, finish or cancel"},
	}
	for script, block := range blocks {
		for _, phase := range []commands.Phase{commands.PhaseStart, commands.PhaseFinish, commands.PhaseCancel} {
			for _, c := range cases {
				t.Run(script+"/"+string(phase)+"/"+c.name, func(t *testing.T) {
					vars := map[string]string{"GITHUB_TOKEN": "ghp_0123456789"}
					for k, v := range c.vars {
						vars[k] = v
					}
					got := runScript(t, script, block.args(phase), block.Env, release{phase: phase, components: []string{"backend"}, vars: vars})
					if diff := cmp.Diff([]call(nil), got.calls); diff != "" {
						t.Errorf("tools were run (-want +got):\n%s", diff)
					}
					if got.status != 2 {
						t.Errorf("exit status %d, want 2", got.status)
					}
					want := script + ": " + c.want
					if !strings.Contains(got.output, want) {
						t.Errorf("the output does not contain %q:\n%s", want, got.output)
					}
					if bad, ok := c.vars["DOBROBOT_VERSION"]; ok && len(bad) > 2 && strings.Contains(got.output, bad) {
						t.Errorf("the output repeats the refused value %q:\n%s", bad, got.output)
					}
				})
			}
		}
	}
}

// TestBadArguments checks that each script refuses a configuration argument
// it does not know, or whose value could be read as an option or by a shell.
func TestBadArguments(t *testing.T) {
	tests := []struct {
		script string
		args   []string
		want   string
	}{
		{"helm-upgrade.sh", []string{"--release=shop", "--chart=./c", "--namespace=qa"}, "unknown argument"},
		{"helm-upgrade.sh", []string{"--chart=./c"}, "--release must be a DNS label"},
		{"helm-upgrade.sh", []string{"--release=shop", "--chart=--post-renderer=x"}, "--chart must name a chart"},
		{"helm-upgrade.sh", []string{"--release=shop", "--chart=./c", "--timeout=10m;id"}, "--timeout must be a duration"},
		{"helm-upgrade.sh", []string{"--release=shop", "--chart=./c", "--namespace-prefix=Shop_"}, "the namespace (--namespace-prefix + DOBROBOT_ENV) must be a DNS label"},
		{"helm-branch-namespace.sh", []string{"--release=Shop", "--chart=./c"}, "--release must be a DNS label"},
		{"kubectl-set-image.sh", []string{"--registry=registry.example.com/shop;id"}, "--registry must be an image repository"},
		{"kubectl-set-image.sh", []string{}, "--registry must be an image repository"},
		{"docker-compose.sh", []string{"--project=shop", "--file=relative/compose.yaml"}, "--file must be an absolute path"},
		{"docker-compose.sh", []string{"--project=shop", "--file=/srv/shop'; id; '/compose.yaml"}, "--file must be an absolute path"},
		{"docker-compose.sh", []string{"--project=shop", "--file=/srv/../etc/compose.yaml"}, "--file must be an absolute path"},
		{"docker-compose.sh", []string{"--project=shop", "--file=/srv/shop/compose.yaml", "--ssh=-oProxyCommand=id"}, "--ssh must be a destination"},
		{"docker-compose.sh", []string{"--project=Shop", "--file=/srv/shop/compose.yaml"}, "--project must be lowercase"},
		{"github-dispatch.sh", []string{"--repo=example", "--workflow=deploy.yml"}, "--repo must be OWNER/REPO"},
		{"github-dispatch.sh", []string{"--repo=example/shop/x", "--workflow=deploy.yml"}, "--repo must be OWNER/REPO"},
		{"github-dispatch.sh", []string{"--repo=example/shop", "--workflow=../x"}, "--workflow must be a workflow file name"},
		{"github-dispatch.sh", []string{"--repo=example/shop", "--workflow=deploy.yml", "--ref=a..b"}, "--ref must be a branch or tag name"},
		{"github-dispatch.sh", []string{"--repo=example/shop", "--workflow=deploy.yml", "--api=http://api.example.com"}, "--api must be an https:// URL"},
	}
	for _, tc := range tests {
		t.Run(tc.script+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			got := runScript(t, tc.script, tc.args, nil, release{phase: commands.PhaseStart, components: []string{"backend"}, vars: map[string]string{"GITHUB_TOKEN": "ghp_0123456789"}})
			if diff := cmp.Diff([]call(nil), got.calls); diff != "" {
				t.Errorf("tools were run (-want +got):\n%s", diff)
			}
			if got.status != 2 {
				t.Errorf("exit status %d, want 2", got.status)
			}
			if want := tc.script + ": " + tc.want; !strings.Contains(got.output, want) {
				t.Errorf("the output does not contain %q:\n%s", want, got.output)
			}
		})
	}
}
