package intake

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestCIDocScripts runs the scripts of docs/ci.md — the shell recipe, the
// GitHub Actions step and the GitLab CI job — with bash, openssl, jq and
// curl against the real listener: each must be signed right and give the
// build the doc says.
func TestCIDocScripts(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "jq", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the doc's scripts need it", tool)
		}
	}
	raw, err := os.ReadFile("../../../docs/ci.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	recipe := block(t, doc, "```sh\n", "```")
	gha := dedent(block(t, doc, "        run: |\n", "```"))
	gitlab := dedent(block(t, doc, "  after_script:\n    - |\n", "```"))
	// GitHub's expressions, as the runner would fill them in.
	for expr, v := range map[string]string{
		"${{ github.repository }}": "acme/backend", "${{ github.run_id }}": "90210001", "${{ github.run_attempt }}": "2",
	} {
		gha = strings.ReplaceAll(gha, expr, v)
	}
	if strings.Contains(gha, "${{") {
		t.Fatalf("the GitHub Actions step has an expression this test does not fill in:\n%s", gha)
	}
	tests := []struct {
		name   string
		script string
		env    []string
		want   commands.Build
	}{
		{"the shell recipe", recipe, []string{`body={"id":"sh-1","ticket":"PAY-7","status":"success","version":"3.1.0"}`},
			commands.Build{Delivery: "builds:sh-1", Source: "builds", ID: "sh-1", Ticket: "PAY-7", Version: "3.1.0", Status: commands.BuildSuccess}},
		{"the GitHub Actions step", gha, []string{
			"STATUS=success", "GITHUB_REF_NAME=feature/PAY-7-saved-cards", "GITHUB_SHA=4f2a9c1e7b3d5a6f8091c2d3e4f5a6b7c8d9e0f1",
			"GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=acme/backend", "GITHUB_RUN_ID=90210001"},
			commands.Build{Delivery: "builds:gha-acme/backend-90210001-2", Source: "builds", ID: "gha-acme/backend-90210001-2",
				Ticket: "PAY-7", Env: "qa", Components: []string{"backend"}, Version: "4f2a9c1e7b3d",
				Commit: "4f2a9c1e7b3d5a6f8091c2d3e4f5a6b7c8d9e0f1", Branch: "feature/PAY-7-saved-cards",
				URL: "https://github.com/acme/backend/actions/runs/90210001", Status: commands.BuildSuccess}},
		{"the GitLab CI job, after a failed script", gitlab, []string{
			"CI_JOB_STATUS=failed", "CI_PIPELINE_ID=4711", "CI_JOB_ID=99", "CI_COMMIT_REF_NAME=PAY-8-refunds",
			"CI_COMMIT_SHA=b7e1d2c3a4f5061728394a5b6c7d8e9f00112233", "CI_COMMIT_SHORT_SHA=b7e1d2c3",
			"CI_JOB_URL=https://gitlab.example.com/acme/backend/-/jobs/99"},
			commands.Build{Delivery: "builds:gitlab-4711-99", Source: "builds", ID: "gitlab-4711-99", Ticket: "PAY-8", Env: "qa",
				Version: "b7e1d2c3", Commit: "b7e1d2c3a4f5061728394a5b6c7d8e9f00112233", Branch: "PAY-8-refunds",
				URL: "https://gitlab.example.com/acme/backend/-/jobs/99", Status: commands.BuildFailure}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := &fakeCore{answer: commands.BuildAnswer{Outcome: commands.BuildChanged, Release: 12, State: "deploying"}}
			// The scripts sign with the real clock.
			base := start(t, core, func(o *Options) { o.Now = time.Now })
			cmd := exec.Command("bash", "-euo", "pipefail", "-c", tt.script)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "DOBROBOT_URL=" + base, "DOBROBOT_INTAKE_SECRET=" + testSecret}, tt.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the script failed: %v\n%s", err, out)
			}
			if want := `{"release":12,"state":"deploying"}`; strings.TrimSpace(string(out)) != want {
				t.Errorf("the script printed %q, want the answer %s", out, want)
			}
			got := core.got()
			if len(got) != 1 {
				t.Fatalf("the core got %d builds, want 1", len(got))
			}
			got[0].BodyHash, got[0].Received = "", time.Time{}
			if diff := cmp.Diff(tt.want, got[0]); diff != "" {
				t.Errorf("build (-want +got):\n%s", diff)
			}
		})
	}
}

// block returns the text of doc after the first start up to end.
func block(t *testing.T, doc, start, end string) string {
	t.Helper()
	_, after, ok := strings.Cut(doc, start)
	if !ok {
		t.Fatalf("docs/ci.md has no %q", start)
	}
	text, _, ok := strings.Cut(after, end)
	if !ok {
		t.Fatalf("docs/ci.md: %q is not closed", start)
	}
	return text
}

// dedent removes the indentation of the block's first line from every line.
func dedent(s string) string {
	indent := regexp.MustCompile(`^ *`).FindString(s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, indent)
	}
	return strings.Join(lines, "\n")
}
