package commands

import (
	"context"
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

// configuredEnvs returns the names of p's environments, nil when it names
// none: only configured environments give "to", "in" and "version" a
// meaning; without them those words stay in notes and reasons.
func configuredEnvs(p Policy) []string {
	if len(p.Envs) == 0 {
		return nil
	}
	return p.EnvNames()
}

// allAdmins returns the admins of every environment, groups expanded, each
// once.
func (s *Service) allAdmins(ctx context.Context) []string {
	var admins []string
	for _, e := range s.cfg.Policy.Envs {
		admins = append(admins, s.expand(ctx, e.Admins)...)
	}
	return uniq(admins...)
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

// envName is the name of rel's environment: Env, or the default
// environment for a release that names none.
func (s *Service) envName(rel Release) string {
	if rel.Env == "" {
		return s.cfg.Policy.DefaultEnv
	}
	return rel.Env
}

// findOpen returns ticket's open release in environment env, or, with env
// "", its one open release whatever the environment. A ticket open in
// several environments is refused with the list, and one open elsewhere
// than env is refused naming where: a command never guesses the release.
func (r *cmdRun) findOpen(ticket, env string) (Release, error) {
	open, err := r.tx.OpenReleases(ticket)
	if err != nil {
		return Release{}, err
	}
	var in []Release
	var names []string
	for _, o := range open {
		name := r.s.envName(o)
		names = append(names, name)
		if env == "" || name == env {
			in = append(in, o)
		}
	}
	switch {
	case len(in) == 1:
		return in[0], nil
	case len(in) > 1 && env == "":
		return Release{}, Errorf(ECONFLICT, "%s is open in %s: say which, e.g. %s %s in %s.", ticket, joinTickets(names), r.cmd.Verb, ticket, names[len(names)-1])
	case len(in) > 1:
		return in[len(in)-1], nil // two open in one environment: only a store written by hand
	case len(open) > 0:
		return Release{}, Errorf(ENOTFOUND, "%s has no open release in %s (it is open in %s): %s %s in %s.", ticket, env, joinTickets(names), r.cmd.Verb, ticket, names[len(names)-1])
	}
	if env != "" {
		return Release{}, Errorf(ENOTFOUND, "%s has no open release in %s: request it with dobro %s to %s.", ticket, env, ticket, env)
	}
	return Release{}, Errorf(ENOTFOUND, "%s has no open release.", ticket)
}

// lastRelease returns ticket's most recent release, in environment env
// when env is set; ENOTFOUND when there is none.
func (r *cmdRun) lastRelease(ticket, env string) (Release, error) {
	if env == "" {
		return r.tx.LastRelease(ticket)
	}
	// A ticket has few releases: reading them all costs little.
	all, err := r.tx.Releases(ticket, 0)
	if err != nil {
		return Release{}, err
	}
	for _, rel := range all {
		if r.s.envName(rel) == env {
			return rel, nil
		}
	}
	return Release{}, Errorf(ENOTFOUND, "%s has never been requested in %s.", ticket, env)
}

// lockEnv is the environment lock l holds: its Env, or, for a release's
// lock written before environments, the default environment. A freeze
// without one holds every environment and has "".
func (s *Service) lockEnv(l Lock) string {
	if l.Env == "" && !l.Frozen() {
		return s.cfg.Policy.DefaultEnv
	}
	return l.Env
}

// lockIn reports whether lock l holds in environment env.
func (s *Service) lockIn(l Lock, env string) bool {
	e := s.lockEnv(l)
	return e == env || (e == "" && l.Frozen())
}

// handoffsByEnv is handoffs in each environment on its own: a release waits
// only for releases and locks of its environment (and for freezes of every
// environment).
func (r *cmdRun) handoffsByEnv(open []Release, locks []Lock, closing map[uint64]Release, typical time.Duration, known bool) map[uint64]handoff {
	if len(r.s.cfg.Policy.Envs) == 1 {
		return handoffs(open, locks, closing, r.now, typical, known)
	}
	out := map[uint64]handoff{}
	for _, e := range r.s.cfg.Policy.Envs {
		var in []Release
		for _, o := range open {
			if r.s.envName(o) == e.Name {
				in = append(in, o)
			}
		}
		if len(in) == 0 {
			continue
		}
		var held []Lock
		for _, l := range locks {
			if r.s.lockIn(l, e.Name) {
				held = append(held, l)
			}
		}
		for id, h := range handoffs(in, held, closing, r.now, typical, known) {
			out[id] = h
		}
	}
	return out
}
