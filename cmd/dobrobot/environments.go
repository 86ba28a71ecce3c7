package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// EnvironmentConfig is one entry of environments (docs/configuration.md):
// what it overrides of the top level, and its pipeline rules.
type EnvironmentConfig struct {
	Name string `yaml:"name"`
	// Roles, Components and Hooks replace the top level's key by key: a
	// key left out keeps the top level's value.
	Roles      EnvRolesConfig `yaml:"roles"`
	Components *[]string      `yaml:"components"`
	Hooks      EnvHooksConfig `yaml:"hooks"`
	Approval   string         `yaml:"approval"`    // approvers (default) or none
	NeedsAdmin *bool          `yaml:"needs_admin"` // default true
	AutoDeploy bool           `yaml:"auto_deploy"`
	After      string         `yaml:"after"`
	Bake       Duration       `yaml:"bake"`
	Request    string         `yaml:"request"`   // auto, or manual (default)
	Approvals  *int           `yaml:"approvals"` // default 1
}

// EnvRolesConfig is an environment's roles: each key set replaces the top
// level's; deployers exists only here.
type EnvRolesConfig struct {
	Requesters *[]string `yaml:"requesters"`
	Approvers  *[]string `yaml:"approvers"`
	Admins     *[]string `yaml:"admins"`
	Deployers  []string  `yaml:"deployers"`
}

// EnvHooksConfig is an environment's hooks: each phase set replaces the top
// level's, and env (the variables passed) likewise.
type EnvHooksConfig struct {
	Env    *[]string   `yaml:"env"`
	Start  *HookConfig `yaml:"start"`
	Finish *HookConfig `yaml:"finish"`
	Cancel *HookConfig `yaml:"cancel"`
}

// resolvedEnv is an environment with the top level merged in: what
// Policy and the hooks are built from.
type resolvedEnv struct {
	commands.EnvPolicy
	hooks HooksConfig
}

// normaliseEnvs lower-cases the environments' components like the top
// level's.
func (c *Config) normaliseEnvs() {
	for i := range c.Environments {
		if cs := c.Environments[i].Components; cs != nil {
			for j, comp := range *cs {
				(*cs)[j] = strings.ToLower(strings.TrimSpace(comp))
			}
		}
	}
}

// validateEnvs returns a problem for each wrong key of environments and
// default_environment, all of them, each naming the environment.
func (c *Config) validateEnvs() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(c.Environments) == 0 {
		if c.DefaultEnvironment != "" {
			add("default_environment is %q but there are no environments: list them under environments, or leave it out", c.DefaultEnvironment)
		}
		return problems
	}
	var seen []string
	for i, e := range c.Environments {
		key := fmt.Sprintf("environments[%d]", i)
		if e.Name != "" {
			key = "environments." + e.Name
		}
		switch {
		case e.Name == "":
			add("%s: name is empty", key)
		case !commands.ValidEnv(e.Name):
			add("%s: %q is not a valid environment name (lower-case letters, digits, . _ -; starting with a letter or digit)", key, e.Name)
		case slices.Contains(seen, e.Name):
			add("%s: the name is used twice", key)
		}
		switch {
		case e.After == "":
		case e.After == e.Name:
			add("%s: after names the environment itself: name an earlier one", key)
		case slices.Contains(seen, e.After):
		case slices.ContainsFunc(c.Environments, func(o EnvironmentConfig) bool { return o.Name == e.After }):
			add("%s: after is %q, which comes later: environments are listed in promotion order, so list %s first", key, e.After, e.After)
		default:
			add("%s: after is %q, which is not an environment (known: %s)", key, e.After, strings.Join(envNames(c.Environments), ", "))
		}
		seen = append(seen, e.Name)
		switch e.Approval {
		case "", "approvers", "none":
		default:
			add("%s: approval is %q: use approvers (the default) or none", key, e.Approval)
		}
		if e.AutoDeploy && e.Approval != "none" {
			add("%s: auto_deploy needs approval: none (a release that waits for approvers cannot start by itself)", key)
		}
		if e.Approvals != nil && *e.Approvals < 1 {
			add("%s: approvals is %d: at least 1", key, *e.Approvals)
		}
		if e.Approvals != nil && *e.Approvals > 1 && e.Approval == "none" {
			add("%s: approvals is %d but approval is none: drop one of them", key, *e.Approvals)
		}
		switch e.Request {
		case "", "manual":
		case "auto":
			if e.After == "" {
				add("%s: request: auto needs after (the environment whose done release opens this one's)", key)
			}
		default:
			add("%s: request is %q: use auto or manual (the default)", key, e.Request)
		}
		if e.Bake != 0 && e.After == "" {
			add("%s: bake needs after (the environment the release must have baked in)", key)
		}
		if e.Components != nil {
			for _, comp := range *e.Components {
				if comp == commands.AllComponents || !commands.ValidComponent(comp) {
					add("%s.components: %q is not a valid component name (letters, digits, . _ -; not all)", key, comp)
				}
			}
		}
		for _, list := range []*[]string{e.Roles.Requesters, e.Roles.Approvers, e.Roles.Admins, &e.Roles.Deployers} {
			if list == nil {
				continue
			}
			for _, id := range *list {
				if !validUserOrGroup(id) {
					add("%s.roles: %q is not a Slack user or user-group ID (U…, W… or S…)", key, id)
				}
			}
		}
		problems = append(problems, hookProblems(key+".hooks", e.Hooks.Start, e.Hooks.Finish, e.Hooks.Cancel)...)
	}
	if d := c.DefaultEnvironment; d != "" && !slices.Contains(envNames(c.Environments), d) {
		add("default_environment is %q, which is not an environment (known: %s)", d, strings.Join(envNames(c.Environments), ", "))
	}
	return problems
}

func envNames(envs []EnvironmentConfig) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.Name
	}
	return out
}

// resolveEnvs merges the top level into each environment, once, at load:
// the core reads a complete policy per environment and never merges.
// Without environments it returns none (the core then builds the one
// implicit environment from the top level itself).
func (c *Config) resolveEnvs() []resolvedEnv {
	out := make([]resolvedEnv, 0, len(c.Environments))
	for _, e := range c.Environments {
		r := resolvedEnv{EnvPolicy: commands.EnvPolicy{
			Name:        e.Name,
			Requesters:  orTop(e.Roles.Requesters, c.Roles.Requesters),
			Approvers:   orTop(e.Roles.Approvers, c.Roles.Approvers),
			Admins:      orTop(e.Roles.Admins, c.Roles.Admins),
			Deployers:   slices.Clone(e.Roles.Deployers),
			Components:  orTop(e.Components, c.Components),
			Approval:    e.Approval != "none",
			Approvals:   1,
			NeedsAdmin:  e.NeedsAdmin == nil || *e.NeedsAdmin,
			AutoDeploy:  e.AutoDeploy,
			After:       e.After,
			Bake:        time.Duration(e.Bake),
			RequestAuto: e.Request == "auto",
		}}
		if e.Approvals != nil {
			r.Approvals = *e.Approvals
		}
		r.hooks = HooksConfig{
			Env:    orTop(e.Hooks.Env, c.Hooks.Env),
			Start:  orTopHook(e.Hooks.Start, c.Hooks.Start),
			Finish: orTopHook(e.Hooks.Finish, c.Hooks.Finish),
			Cancel: orTopHook(e.Hooks.Cancel, c.Hooks.Cancel),
		}
		out = append(out, r)
	}
	return out
}

func orTop(own *[]string, top []string) []string {
	if own != nil {
		return slices.Clone(*own)
	}
	return slices.Clone(top)
}

func orTopHook(own, top *HookConfig) *HookConfig {
	if own != nil {
		return own
	}
	return top
}

// defaultEnv is default_environment, else the last environment's name; ""
// without environments (the core's default then).
func (c *Config) defaultEnv() string {
	switch {
	case c.DefaultEnvironment != "":
		return c.DefaultEnvironment
	case len(c.Environments) > 0:
		return c.Environments[len(c.Environments)-1].Name
	}
	return ""
}
