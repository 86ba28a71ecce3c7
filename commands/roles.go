package commands

import (
	"context"
	"slices"
)

// prepared holds what a command needs from the network, fetched before its
// transaction: the actor's roles and, for dobro, the ticket.
type prepared struct {
	roles     roles
	ticket    Ticket
	ticketErr error
	approvers []string // users to ask, groups expanded
	admins    []string
	report    Text  // report's answer (needReport)
	reportErr error // why it could not be computed
}

type roles struct {
	requester, approver, admin bool
	// notInChannel: not a requester because not a member of the release
	// channel, when that is what makes a requester.
	notInChannel bool
	err          error // could not tell (groups unavailable)
}

// prepare fetches what cmd needs before its transaction: the actor's roles
// for a command that changes state, and what its verb's Needs name.
func (s *Service) prepare(ctx context.Context, m Message, cmd Command) prepared {
	var p prepared
	spec, _ := lookup(cmd.Verb)
	if spec.Needs&needReport != 0 {
		p.report, p.reportErr = s.prepareReport(ctx, cmd)
	}
	if !spec.Changes {
		return p
	}
	p.roles = s.rolesOf(ctx, m, spec.Who)
	if spec.Needs&needTicket != 0 && p.roles.err == nil && p.roles.requester {
		p.ticket, p.ticketErr = s.cfg.Tracker.Ticket(ctx, cmd.Ticket)
		p.approvers = s.expand(ctx, s.cfg.Policy.Approvers)
	}
	if spec.Needs&needAdmins != 0 {
		p.admins = s.expand(ctx, s.cfg.Policy.Admins)
	}
	return p
}

// rolesOf is the one place that decides a user's roles, for every path
// (mention, DM, button, console). Missing role configuration denies.
//
// With no requesters configured, the requesters are the people in the
// release channel: a mention there (Slack delivered it from the channel)
// and the console need no check, but a dobro by DM or button asks Groups
// for the members of the release channel (Policy.Channel), and denies when
// they cannot be known (issue 12, item 10). Only a verb for requesters
// (dobro) asks, so that an approver's click never waits on, or fails with,
// that list.
func (s *Service) rolesOf(ctx context.Context, m Message, rule who) roles {
	user := m.User
	var r roles
	var err error
	switch {
	case len(s.cfg.Policy.Requesters) > 0:
		if r.requester, err = s.member(ctx, user, s.cfg.Policy.Requesters); err != nil {
			r.err = err
		}
	case m.Via == ViaMention || m.Via == ViaConsole:
		r.requester = user != ""
	case rule == whoRequester:
		r.requester, err = s.inChannel(ctx, user)
		if err != nil {
			r.err = err
		}
		r.notInChannel = err == nil && !r.requester
	}
	if r.approver, err = s.member(ctx, user, s.cfg.Policy.Approvers); err != nil {
		r.err = err
	}
	if r.admin, err = s.member(ctx, user, s.cfg.Policy.Admins); err != nil {
		r.err = err
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
