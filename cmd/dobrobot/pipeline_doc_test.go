package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/hook"
	"github.com/google/go-cmp/cmp"
)

// docExample is one worked configuration of docs/pipeline.md: its YAML and
// its conversation.
type docExample struct {
	title, yaml, talk string
}

// pipelineExamples reads the worked configurations of docs/pipeline.md:
// each "### " section under "## Worked configurations" with a ```yaml block
// and a ```text conversation.
func pipelineExamples(t *testing.T) []docExample {
	t.Helper()
	doc, err := os.ReadFile("../../docs/pipeline.md")
	if err != nil {
		t.Fatal(err)
	}
	_, worked, ok := strings.Cut(string(doc), "\n## Worked configurations\n")
	if !ok {
		t.Fatal("docs/pipeline.md has no section \"Worked configurations\"")
	}
	worked, _, _ = strings.Cut(worked, "\n## ")
	var out []docExample
	for _, sec := range strings.Split(worked, "\n### ")[1:] {
		title, body, _ := strings.Cut(sec, "\n")
		_, rest, ok := strings.Cut(body, "```yaml\n")
		yml, rest, ok2 := strings.Cut(rest, "```")
		_, rest, ok3 := strings.Cut(rest, "```text\n")
		talk, _, ok4 := strings.Cut(rest, "```")
		if !ok || !ok2 || !ok3 || !ok4 {
			t.Fatalf("docs/pipeline.md, %q: want a yaml block, then a text block", title)
		}
		out = append(out, docExample{title: title, yaml: yml, talk: talk})
	}
	return out
}

// TestPipelineDocConfigs loads each worked configuration of
// docs/pipeline.md through the real loader (environment variables
// expanded, unknown keys refused, every rule checked, hooks built), checks
// what it resolves to, then replays its conversation through the console
// on a bbolt file: the tickets come from a file tracker instead of Jira,
// hooks are `true`, and a "# …" line moves the clock past the longest
// bake. Every output line the document shows must be printed, in order.
func TestPipelineDocConfigs(t *testing.T) {
	examples := pipelineExamples(t)
	want := map[string]string{
		"QA then production, owners deploy":                     "qa: none, 1 approval, no admin; production: after qa, bake 0s, request auto, 1 approval, no admin, deployers U0OLGA,U0OMAR",
		"Staging with bake, then production with two approvers": "staging: none, 1 approval, no admin; production: after staging, bake 2h0m0s, request manual, 2 approvals, admin",
	}
	var titles []string
	for _, ex := range examples {
		titles = append(titles, ex.title)
	}
	if diff := cmp.Diff([]string{"QA then production, owners deploy", "Staging with bake, then production with two approvers"}, titles); diff != "" {
		t.Fatalf("worked configurations (-want +got):\n%s", diff)
	}
	secrets := map[string]string{"SLACK_APP_TOKEN": "xapp-1-doc", "SLACK_BOT_TOKEN": "xoxb-doc", "JIRA_TOKEN": "doc-token"}
	for _, ex := range examples {
		t.Run(ex.title, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dobrobot.yaml")
			if err := os.WriteFile(path, []byte(ex.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(path, lookupIn(secrets))
			if err != nil {
				t.Fatalf("the documented configuration does not load: %v", err)
			}
			a := &app{cli: &CLI{}, env: env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, lookupEnv: lookupIn(secrets)}}
			if _, _, problems := a.buildHooks(c); len(problems) > 0 {
				t.Errorf("its hooks: %v", problems)
			}
			if diff := cmp.Diff(want[ex.title], describeEnvs(c.Policy())); diff != "" {
				t.Errorf("resolved environments (-want +got):\n%s", diff)
			}
			replayDoc(t, a, c, parseTalk(t, ex.talk, c.Users))
		})
	}
}

// describeEnvs summarises the resolved environments, for comparing with
// what the document says about them.
func describeEnvs(p commands.Policy) string {
	var parts []string
	for _, e := range p.Envs {
		s := e.Name + ": "
		if e.After != "" {
			req := "manual"
			if e.RequestAuto {
				req = "auto"
			}
			s += "after " + e.After + ", bake " + e.Bake.String() + ", request " + req + ", "
		} else if !e.Approval {
			s += "none, "
		}
		if e.Approvals == 1 {
			s += "1 approval, "
		} else {
			s += strconv.Itoa(e.Approvals) + " approvals, "
		}
		if e.NeedsAdmin {
			s += "admin"
		} else {
			s += "no admin"
		}
		if len(e.Deployers) > 0 {
			s += ", deployers " + strings.Join(e.Deployers, ",")
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// replayDoc runs a documented conversation through the console with the
// configuration c, its tracker and hooks replaced by harmless local ones,
// and checks that the output lines shown are printed, in order.
func replayDoc(t *testing.T, a *app, c *Config, w walkthrough) {
	t.Helper()
	c.Slack = SlackConfig{}
	c.Tracker.Kind, c.Tracker.URL, c.Tracker.Token = "file", "https://example.atlassian.net", ""
	c.Tracker.Tickets = []commands.Ticket{
		{Key: "PAY-7", Summary: "Saved cards", Status: "Ready for Release", Assignee: "ann@example.com", FixVersions: []string{"3.1.0"}, Components: []string{"backend", "payments"}},
		{Key: "PAY-9", Summary: "Refund API", Status: "Ready for Release", Assignee: "ann@example.com", FixVersions: []string{"3.2.0"}, Components: []string{"backend"}},
	}
	var bake time.Duration
	for _, e := range c.Policy().Envs {
		bake = max(bake, e.Bake)
	}
	db, err := openDB(filepath.Join(t.TempDir(), "doc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out bytes.Buffer
	for i, lines := range w.sessions {
		offset := time.Duration(i) * (bake + time.Minute)
		cfg, err := a.config(c, db)
		if err != nil {
			t.Fatal(err)
		}
		harmless := commands.Hooks{Start: &hook.Exec{Argv: []string{"true"}}, Finish: &hook.Exec{Argv: []string{"true"}}}
		cfg.Hooks = harmless
		for i := range cfg.Policy.Envs {
			cfg.Policy.Envs[i].Hooks = harmless
		}
		cfg.Clock = shiftedClock(offset)
		con := &bot.Console{Store: db, In: strings.NewReader(strings.Join(lines, "\n") + "\n"), Out: &out, Names: c.Users, Log: a.log, Now: cfg.Clock.Now}
		cfg.Notify = con.Notify
		cfg.Groups = bot.ConsoleGroups{}
		con.Service = commands.NewService(cfg)
		if err := con.Run(context.Background()); err != nil {
			t.Fatalf("session %d: %v\n%s", i+1, err, out.String())
		}
	}
	printed := out.String()
	at := 0
	for _, want := range w.shown {
		i := strings.Index(printed[at:], want)
		if i < 0 {
			t.Errorf("the console did not print %q (in the document's order) after:\n%s\nthen:\n%s", want, printed[:at], printed[at:])
			return
		}
		at += i + len(want)
	}
}
