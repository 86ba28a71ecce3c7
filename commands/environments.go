package commands

import (
	"slices"
	"time"
)

// EnvPolicy is one environment's complete, resolved policy: the
// configuration merges the top-level keys with the environment's own once,
// at load, so that the core never merges at run time.
type EnvPolicy struct {
	Name string
	// Requesters, Approvers and Admins are the environment's roles, as
	// Policy's. Deployers, when set, are who may dep start and dep finish
	// its releases; empty: the requester or the claiming admin (or any
	// admin), as without environments.
	Requesters, Approvers, Admins, Deployers []string

	Components []string // lockable components in this environment
	Hooks      Hooks    // nil executors: no hook
	// Approval is false for "approval: none": a release needs no accept
	// step and is accepted as soon as it is requested.
	Approval   bool
	Approvals  int // distinct approvers needed, >= 1
	NeedsAdmin bool
	AutoDeploy bool
	// After names an earlier environment where the same version (or,
	// without a version, the same ticket) must be done, at least Bake ago,
	// before dep start here; "" for none.
	After       string
	Bake        time.Duration
	RequestAuto bool // a release done in After opens this environment's by itself
}

// Lockable reports whether component c is in the environment's list.
func (e EnvPolicy) Lockable(c string) bool { return slices.Contains(e.Components, c) }

// Env returns the policy of the environment called name.
func (p Policy) Env(name string) (EnvPolicy, bool) {
	for _, e := range p.Envs {
		if e.Name == name {
			return e, true
		}
	}
	return EnvPolicy{}, false
}

// EnvNames returns the environments' names in promotion order.
func (p Policy) EnvNames() []string {
	out := make([]string, len(p.Envs))
	for i, e := range p.Envs {
		out[i] = e.Name
	}
	return out
}

// withEnvs returns c with Policy.Envs and Policy.DefaultEnv filled in: a
// configuration without environments gets one, DefaultEnv, built from the
// top-level policy and hooks, so that every release has an environment and
// behaves exactly as before environments existed.
func withEnvs(c Config) Config {
	p := &c.Policy
	if len(p.Envs) == 0 {
		p.Envs = []EnvPolicy{{
			Name: DefaultEnv, Requesters: p.Requesters, Approvers: p.Approvers, Admins: p.Admins,
			Components: p.Components, Hooks: c.Hooks, Approval: true, Approvals: 1, NeedsAdmin: true,
		}}
		if p.DefaultEnv == "" {
			p.DefaultEnv = DefaultEnv
		}
	}
	if p.DefaultEnv == "" {
		p.DefaultEnv = p.Envs[len(p.Envs)-1].Name
	}
	p.Envs = slices.Clone(p.Envs)
	for i := range p.Envs {
		if p.Envs[i].Approvals < 1 {
			p.Envs[i].Approvals = 1
		}
	}
	return c
}

// envConfigured reports whether the configuration named environments (and
// so whether "to", "in" and "version" have their pipeline meaning).
func (s *Service) envConfigured() bool { return s.envNames != nil }

// envOf returns the policy of release rel's environment: a release that
// names none (written before environments, or without them configured) is
// in DefaultEnv. A name no longer configured gets the default's policy, so
// that an old release can still be finished or cancelled.
func (s *Service) envOf(rel Release) EnvPolicy {
	return s.env(rel.Env)
}

// env returns the policy of the environment called name ("" or unknown:
// the default environment's).
func (s *Service) env(name string) EnvPolicy {
	if name == "" {
		name = s.cfg.Policy.DefaultEnv
	}
	if e, ok := s.cfg.Policy.Env(name); ok {
		return e
	}
	e, _ := s.cfg.Policy.Env(s.cfg.Policy.DefaultEnv)
	return e
}
