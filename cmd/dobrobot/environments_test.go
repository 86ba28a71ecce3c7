package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/hook"
)

func noEnv(string) (string, bool) { return "", false }

// TestConfigEnvironmentsInvalid: every wrong key of environments and
// default_environment is a load error that names the environment and says
// what to write instead.
func TestConfigEnvironmentsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // each must be in the error
	}{
		{"unknown after", "environments:\n  - {name: qa}\n  - {name: production, after: staging}\n",
			[]string{`environments.production: after is "staging", which is not an environment (known: qa, production)`}},
		{"after later in the order", "environments:\n  - {name: production, after: qa}\n  - {name: qa}\n",
			[]string{`environments.production: after is "qa", which comes later`, "list qa first"}},
		{"after itself", "environments:\n  - {name: qa, after: qa}\n",
			[]string{"environments.qa: after names the environment itself"}},
		{"approvals zero", "environments:\n  - {name: production, approvals: 0}\n",
			[]string{"environments.production: approvals is 0: at least 1"}},
		{"approvals negative", "environments:\n  - {name: production, approvals: -2}\n",
			[]string{"approvals is -2: at least 1"}},
		{"auto_deploy with approvers", "environments:\n  - {name: qa, auto_deploy: true}\n",
			[]string{"environments.qa: auto_deploy needs approval: none"}},
		{"auto_deploy with approval approvers", "environments:\n  - {name: qa, auto_deploy: true, approval: approvers}\n",
			[]string{"environments.qa: auto_deploy needs approval: none"}},
		{"duplicate names", "environments:\n  - {name: qa}\n  - {name: qa}\n",
			[]string{"environments.qa: the name is used twice"}},
		{"upper-case name", "environments:\n  - {name: QA}\n",
			[]string{`environments.QA: "QA" is not a valid environment name`}},
		{"name with a slash", "environments:\n  - {name: ../prod}\n",
			[]string{`"../prod" is not a valid environment name`}},
		{"empty name", "environments:\n  - {approval: none}\n",
			[]string{"environments[0]: name is empty"}},
		{"unknown approval", "environments:\n  - {name: qa, approval: nobody}\n",
			[]string{`environments.qa: approval is "nobody": use approvers (the default) or none`}},
		{"unknown request", "environments:\n  - {name: qa}\n  - {name: production, after: qa, request: always}\n",
			[]string{`environments.production: request is "always": use auto or manual`}},
		{"request auto without after", "environments:\n  - {name: production, request: auto}\n",
			[]string{"environments.production: request: auto needs after"}},
		{"bake without after", "environments:\n  - {name: production, bake: 30m}\n",
			[]string{"environments.production: bake needs after"}},
		{"bad bake", "environments:\n  - {name: qa}\n  - {name: production, after: qa, bake: soon}\n",
			[]string{`"soon" is not a duration`}},
		{"approvals with approval none", "environments:\n  - {name: qa, approval: none, approvals: 2}\n",
			[]string{"environments.qa: approvals is 2 but approval is none"}},
		{"unknown default_environment", "environments:\n  - {name: qa}\n  - {name: production}\ndefault_environment: prod\n",
			[]string{`default_environment is "prod", which is not an environment (known: qa, production)`}},
		{"default_environment without environments", "default_environment: production\n",
			[]string{`default_environment is "production" but there are no environments`}},
		{"bad role ID", "environments:\n  - {name: qa, roles: {deployers: [someone]}}\n",
			[]string{`environments.qa.roles: "someone" is not a Slack user or user-group ID`}},
		{"bad component", "environments:\n  - {name: qa, components: [all]}\n",
			[]string{`environments.qa.components: "all" is not a valid component name`}},
		{"bad hook", "environments:\n  - {name: qa, hooks: {start: {timeout: 1m}}}\n",
			[]string{"environments.qa.hooks.start: set exec (an argv list) or webhook"}},
		{"unknown key", "environments:\n  - {name: qa, aproval: none}\n",
			[]string{"aproval"}},
		{"deployers at the top level", "roles: {deployers: [U01]}\n",
			[]string{"deployers"}},
		{"every problem at once", "environments:\n  - {name: qa, auto_deploy: true}\n  - {name: production, after: staging, approvals: 0}\n",
			[]string{"auto_deploy needs approval: none", `after is "staging"`, "approvals is 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig([]byte(tc.yaml), noEnv)
			if err == nil {
				t.Fatalf("no error; environments = %+v", c.Environments)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestConfigEnvironmentsResolved: each environment's policy is the top
// level merged key by key with its own keys, resolved at load; defaults
// are approval by approvers, one approval, an admin needed, no after.
func TestConfigEnvironmentsResolved(t *testing.T) {
	yaml := `
roles: {requesters: [U01], approvers: [U02], admins: [U03]}
components: [backend, payments]
hooks:
  env: [PATH]
  start: {exec: [/bin/deploy]}
  finish: {exec: [/bin/finish]}
environments:
  - name: qa
    approval: none
    needs_admin: false
    auto_deploy: true
    components: [Backend]
    hooks: {start: {exec: [/bin/deploy-qa]}}
  - name: production
    after: qa
    bake: 30m
    request: auto
    approvals: 2
    roles: {approvers: [S01QA, U04], deployers: [S02OWNERS]}
`
	c, err := parseConfig([]byte(yaml), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Policy()
	want := []commands.EnvPolicy{
		{Name: "qa", Requesters: []string{"U01"}, Approvers: []string{"U02"}, Admins: []string{"U03"},
			Components: []string{"backend"}, Approval: false, Approvals: 1, NeedsAdmin: false, AutoDeploy: true},
		{Name: "production", Requesters: []string{"U01"}, Approvers: []string{"S01QA", "U04"}, Admins: []string{"U03"},
			Deployers: []string{"S02OWNERS"}, Components: []string{"backend", "payments"}, Approval: true, Approvals: 2,
			NeedsAdmin: true, After: "qa", Bake: 30 * time.Minute, RequestAuto: true},
	}
	if diff := cmp.Diff(want, p.Envs, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Policy.Envs (-want +got):\n%s", diff)
	}
	if p.DefaultEnv != "production" {
		t.Errorf("DefaultEnv = %q, want production (the last one)", p.DefaultEnv)
	}
	// The hooks: qa's own start, the top level's finish; production both
	// from the top level; the top level's env list for every one.
	_, envHooks, problems := (&app{}).buildHooks(c)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	argv := func(e commands.Executor) []string {
		if e == nil {
			return nil
		}
		x := e.(*hook.Exec)
		return append(slices.Clone(x.Argv), x.Env...)
	}
	got := [][]string{argv(envHooks[0].Start), argv(envHooks[0].Finish), argv(envHooks[0].Cancel), argv(envHooks[1].Start), argv(envHooks[1].Finish)}
	wantHooks := [][]string{{"/bin/deploy-qa", "PATH"}, {"/bin/finish", "PATH"}, nil, {"/bin/deploy", "PATH"}, {"/bin/finish", "PATH"}}
	if diff := cmp.Diff(wantHooks, got); diff != "" {
		t.Errorf("hooks (argv + env; -want +got):\n%s", diff)
	}

	c, err = parseConfig([]byte(yaml+"default_environment: qa\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Policy().DefaultEnv; got != "qa" {
		t.Errorf("DefaultEnv = %q, want qa (default_environment)", got)
	}
}

// TestConfigWithoutEnvironments: without environments the policy names
// none and the Service builds one production from the top level, with the
// top level's hooks: behaviour as before environments existed.
func TestConfigWithoutEnvironments(t *testing.T) {
	c, err := parseConfig([]byte("roles: {approvers: [U02], admins: [U03]}\ncomponents: [backend]\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Policy()
	if p.Envs != nil || p.DefaultEnv != "" {
		t.Errorf("Envs = %+v, DefaultEnv = %q; want none (the core's implicit production)", p.Envs, p.DefaultEnv)
	}
}

// TestConsoleEnvironments drives the seed's pipeline through the console
// from a configuration file with a real bbolt store: dobro to qa (no
// approval), done there, production requested by itself, two approvals,
// an admin, a refused start by the requester (not a deployer), the
// owner's deploy, and where. The audit log exports and verifies.
func TestConsoleEnvironments(t *testing.T) {
	cfg, db := consoleConfig(t, `components: [backend]
users: {me: U0ANN, approver: U0APPROVER, qa2: U0QA2, admin: U0ADMIN, owner: U0OWNER}
environments:
  - {name: qa, approval: none, needs_admin: false}
  - name: production
    after: qa
    request: auto
    approvals: 2
    roles: {approvers: [U0APPROVER, U0QA2], deployers: [U0OWNER]}
`)
	out := runConsole(t, cfg,
		"dobro PAY-1 to qa version 2.4.0 on backend",
		"dep start PAY-1", "dep finish PAY-1",
		"/as approver", "accept PAY-1",
		"/as qa2", "accept PAY-1 in production",
		"/as admin", "here PAY-1",
		"/as me", "dep start PAY-1",
		"/as owner", "dep start PAY-1", "dep finish PAY-1",
		"where",
	)
	wantSaid(t, out,
		"in qa, version 2.4.0 is in the queue (#1), accepted: qa needs no approval.",
		"I requested PAY-1 in production, version 2.4.0 for you.",
		"You approved PAY-1 (1 of 2): it needs 1 more.",
		"Only the deployers of production (or an admin) can dep start PAY-1",
		"• backend: v2.4.0 (PAY-1), done by @owner",
	)
	want := []string{
		"request PAY-1 U0ANN", "accept PAY-1 U0ANN", "start PAY-1 U0ANN", "finish PAY-1 U0ANN",
		"request PAY-1 U0ANN", "approve PAY-1 U0APPROVER", "accept PAY-1 U0QA2", "claim PAY-1 U0ADMIN",
		"refused PAY-1 U0ANN", "start PAY-1 U0OWNER", "finish PAY-1 U0OWNER",
	}
	if diff := cmp.Diff(want, exported(t, db)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	if code, out, errs := run(t, "", nil, "audit", "verify", "--db", db); code != 0 {
		t.Errorf("audit verify: exit %d\n%s%s", code, out, errs)
	}
}
