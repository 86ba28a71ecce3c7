package commands

import (
	"context"
	"slices"
	"strings"
)

// prepared holds what a command needs from the network, fetched before its
// transaction: the actor's roles and, for dobro, the ticket.
type prepared struct {
	// roles are the actor's roles in each environment, by name: which
	// environment a command acts in is known for sure only inside its
	// transaction (the ticket's open release), so every one is prepared.
	roles     map[string]roles
	ticket    Ticket
	ticketErr error
	approvers []string            // dobro: its environment's approvers to ask, groups expanded
	admins    map[string][]string // each environment's admins to ask, groups expanded
	// envApprovers are each environment's approvers to ask, groups
	// expanded, for a verb that learns its environment in its transaction
	// (promote).
	envApprovers map[string][]string
	report       Text  // report's answer (needReport)
	recheck      bool  // dep start: ticket is the tracker's answer asked again (recheck.go)
	reportErr    error // why it could not be computed
	// historyAt is history at T's answer, historyAtErr why it could not
	// be read (historyat.go).
	historyAt    Text
	historyAtErr error
	// overrides is overrides' answer (overrides.go).
	overrides    Text
	overridesErr error
}

type roles struct {
	requester, approver, admin bool
	// deployer: a member of the environment's deployers (none configured:
	// false; the requester or an admin deploys then).
	deployer bool
	// notInChannel: not a requester because not a member of the release
	// channel, when that is what makes a requester.
	notInChannel bool
	err          error // could not tell (groups unavailable)
}

// prepare fetches what cmd needs before its transaction: the actor's roles
// in every environment for a command that changes state or that not
// anyone may use (audit), and what its verb's Needs name.
func (s *Service) prepare(ctx context.Context, m Message, cmd Command) prepared {
	var p prepared
	spec, _ := lookup(cmd.Verb)
	if spec.Needs&needReport != 0 {
		p.report, p.reportErr = s.prepareReport(ctx, cmd)
	}
	if _, ok, _ := historyAtTime(cmd); ok {
		p.historyAt, p.historyAtErr = s.prepareHistoryAt(ctx, cmd)
	} else if _, ok, _ := filtered(cmd, s.now()); ok {
		p.historyAt, p.historyAtErr = s.prepareHistory(ctx, cmd)
	}
	if cmd.Verb == VerbOverrides {
		p.overrides, p.overridesErr = s.prepareOverrides(ctx, cmd)
	}
	if !spec.Changes && spec.Who == whoAnyone && spec.Needs&needRoles == 0 {
		return p
	}
	// Environments share the top level's lists unless they override them:
	// each list is looked up once.
	memo := map[string]memberOf{}
	p.roles = make(map[string]roles, len(s.cfg.Policy.Envs))
	for _, e := range s.cfg.Policy.Envs {
		p.roles[e.Name] = s.rolesOf(ctx, m, spec.Who, e, memo)
	}
	env := s.env(cmd.Env)
	if spec.Needs&needTicket != 0 {
		if ro := p.roles[env.Name]; ro.err == nil && ro.requester {
			p.ticket, p.ticketErr = s.cfg.Tracker.Ticket(ctx, cmd.Ticket)
			p.approvers = s.expand(ctx, env.Approvers)
		}
	}
	if spec.Needs&needRecheck != 0 {
		s.prepareRecheck(ctx, cmd, &p)
	}
	if spec.Needs&needApprovers != 0 {
		p.envApprovers = map[string][]string{}
		for _, e := range s.cfg.Policy.Envs {
			p.envApprovers[e.Name] = s.expand(ctx, e.Approvers)
		}
	}
	if spec.Needs&(needAdmins|needApprovers) != 0 || (spec.Needs&needTicket != 0 && !env.Approval && env.NeedsAdmin) {
		p.admins = map[string][]string{}
		for _, e := range s.cfg.Policy.Envs {
			p.admins[e.Name] = s.expand(ctx, e.Admins)
		}
	}
	return p
}

// memberOf is a remembered answer of member.
type memberOf struct {
	ok  bool
	err error
}

// rolesOf is the one place that decides a user's roles in environment env,
// for every path (mention, DM, button, console). Missing role configuration
// denies. memo remembers the answers for lists already looked up.
//
// With no requesters configured, the requesters are the people in the
// release channel: a mention there (Slack delivered it from the channel)
// and the console need no check, but a dobro by DM or button asks Groups
// for the members of the release channel (Policy.Channel), and denies when
// they cannot be known (issue 12, item 10). Only a verb for requesters
// (dobro) asks, so that an approver's click never waits on, or fails with,
// that list.
func (s *Service) rolesOf(ctx context.Context, m Message, rule who, env EnvPolicy, memo map[string]memberOf) roles {
	user := m.User
	var r roles
	var err error
	member := func(list []string) bool {
		key := strings.Join(list, ",")
		a, ok := memo[key]
		if !ok {
			a.ok, a.err = s.member(ctx, user, list)
			memo[key] = a
		}
		if a.err != nil {
			r.err = a.err
		}
		return a.ok
	}
	switch {
	case len(env.Requesters) > 0:
		r.requester = member(env.Requesters)
	case m.Via == ViaMention || m.Via == ViaConsole:
		r.requester = user != ""
	case rule == whoRequester || rule == whoRequesterOrEnvAdmin:
		a, ok := memo["#channel"]
		if !ok {
			a.ok, a.err = s.inChannel(ctx, user)
			memo["#channel"] = a
		}
		r.requester, err = a.ok, a.err
		if err != nil {
			r.err = err
		}
		r.notInChannel = err == nil && !r.requester
	}
	r.approver = member(env.Approvers)
	r.admin = member(env.Admins)
	if len(env.Deployers) > 0 {
		r.deployer = member(env.Deployers)
	}
	return r
}

// inChannel reports whether user is a member of the release channel, as
// Groups knows it. No channel or no Groups: nobody is.
func (s *Service) inChannel(ctx context.Context, user string) (bool, error) {
	if user == "" || s.cfg.Policy.Channel == "" || s.cfg.Groups == nil {
		return false, nil
	}
	members, err := s.cfg.Groups.Members(ctx, s.cfg.Policy.Channel)
	if err != nil {
		return false, err
	}
	return slices.Contains(members, user), nil
}

func (s *Service) member(ctx context.Context, user string, list []string) (bool, error) {
	if user == "" {
		return false, nil
	}
	var groupErr error
	for _, id := range list {
		if id == user {
			return true, nil
		}
		if s.cfg.Groups == nil {
			continue
		}
		members, err := s.cfg.Groups.Members(ctx, id)
		if err != nil {
			groupErr = err
			continue
		}
		if slices.Contains(members, user) {
			return true, nil
		}
	}
	return false, groupErr
}

// expand turns a role list into user IDs, best effort (for DMs).
func (s *Service) expand(ctx context.Context, list []string) []string {
	var out []string
	for _, id := range list {
		if s.cfg.Groups == nil {
			out = append(out, id) // nobody to ask: an ID is taken for a user
			continue
		}
		members, err := s.cfg.Groups.Members(ctx, id)
		if err != nil {
			s.cfg.Log.Warn().Err(err).Str("group", id).Msg("could not list a user group's members to notify them")
		}
		out = append(out, members...)
	}
	return uniq(out...)
}

func uniq(ids ...string) []string {
	var out []string
	for _, id := range ids {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
