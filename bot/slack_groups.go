package bot

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/dobrobot/dobrobot/commands"
)

// GroupLister lists the members of a Slack user group; *slack.Client is one.
type GroupLister interface {
	GetUserGroupMembersContext(ctx context.Context, group string, options ...slack.GetUserGroupMembersOption) ([]string, error)
}

// UserGroups resolves Slack user groups (S…) to their members for
// commands.Groups, with a cache of bounded staleness: a list younger than
// the TTL is used as is; an older one is refreshed with
// usergroups.users.list (a Tier 2 method, so calls are spread out); if the
// refresh fails, a list younger than the maximum staleness is still used, and
// beyond that Members fails closed with EUNAVAILABLE so the caller denies.
type UserGroups struct {
	// Log receives warnings about failed refreshes.
	Log zerolog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RetryAfter is how long to wait after a failed refresh before the next
	// attempt (default 10 s), unless Slack says longer with Retry-After.
	RetryAfter time.Duration
	// Timeout bounds one usergroups.users.list call (default 10 s).
	Timeout time.Duration

	api           GroupLister
	ttl, maxStale time.Duration

	mu     sync.Mutex
	groups map[string]*groupEntry
}

type groupEntry struct {
	members    []string
	fetched    time.Time     // zero: nothing usable
	notBefore  time.Time     // no refresh attempt before this
	refreshing chan struct{} // closed when the running refresh ends
	gen        uint64        // incremented by Forget
}

var _ commands.Groups = (*UserGroups)(nil)

// NewUserGroups returns a resolver that refreshes a group's members once its
// list is older than ttl and fails closed once it is older than maxStale
// and cannot be refreshed.
func NewUserGroups(api GroupLister, ttl, maxStale time.Duration) *UserGroups {
	if maxStale < ttl {
		maxStale = ttl
	}
	return &UserGroups{api: api, ttl: ttl, maxStale: maxStale, Log: zerolog.Nop(), groups: map[string]*groupEntry{}}
}

func (g *UserGroups) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// Members returns the members of group. Errors: EUNAVAILABLE when the list
// cannot be known fresh enough.
func (g *UserGroups) Members(ctx context.Context, group string) ([]string, error) {
	for {
		g.mu.Lock()
		e := g.groups[group]
		if e == nil {
			e = &groupEntry{}
			g.groups[group] = e
		}
		now := g.now()
		age := now.Sub(e.fetched)
		known := !e.fetched.IsZero()
		if known && age < g.ttl {
			m := slices.Clone(e.members)
			g.mu.Unlock()
			return m, nil
		}
		usable := known && age < g.maxStale
		if wait := e.refreshing; wait != nil {
			if usable {
				m := slices.Clone(e.members)
				g.mu.Unlock()
				return m, nil
			}
			g.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, commands.Errorf(commands.EUNAVAILABLE, "could not check the members of user group %s in time: try again", group)
			}
		}
		if now.Before(e.notBefore) {
			defer g.mu.Unlock()
			if usable {
				return slices.Clone(e.members), nil
			}
			return nil, commands.Errorf(commands.EUNAVAILABLE, "could not check the members of user group %s (Slack did not answer): try again in a minute", group)
		}
		done := make(chan struct{})
		e.refreshing = done
		gen := e.gen
		g.mu.Unlock()

		members, err := g.fetch(ctx, group)

		g.mu.Lock()
		e.refreshing = nil
		close(done)
		if e.gen != gen {
			// The members changed while Slack answered: the answer may
			// predate the change, so ask again.
			g.mu.Unlock()
			continue
		}
		now = g.now()
		var missing slack.SlackErrorResponse
		switch {
		case err == nil:
			e.members, e.fetched, e.notBefore = members, now, time.Time{}
		case errors.As(err, &missing) && missing.Err == "no_such_subteam":
			// A group that does not exist has no members: deny, without
			// asking Slack again before the TTL.
			g.Log.Warn().Str("group", group).Msg("a user group in the roles does not exist in Slack: it grants nobody")
			e.members, e.fetched, e.notBefore = nil, now, time.Time{}
		default:
			wait := g.RetryAfter
			if wait <= 0 {
				wait = 10 * time.Second
			}
			var rl *slack.RateLimitedError
			if errors.As(err, &rl) && rl.RetryAfter > wait {
				wait = rl.RetryAfter
			}
			e.notBefore = now.Add(wait)
			stale := known && now.Sub(e.fetched) < g.maxStale
			g.Log.Warn().Err(err).Str("group", group).Bool("using_cached", stale).
				Msg("could not refresh a user group's members")
			if !stale {
				g.mu.Unlock()
				return nil, commands.Errorf(commands.EUNAVAILABLE, "could not check the members of user group %s (Slack did not answer): try again in a minute", group)
			}
		}
		m := slices.Clone(e.members)
		g.mu.Unlock()
		return m, nil
	}
}

func (g *UserGroups) fetch(ctx context.Context, group string) ([]string, error) {
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return g.api.GetUserGroupMembersContext(ctx, group)
}

// Forget drops what is known of group, so the next check asks Slack (and
// denies if Slack cannot answer). The bot calls it when Slack reports that
// the group's members changed.
func (g *UserGroups) Forget(group string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.groups[group]; e != nil {
		e.members, e.fetched, e.notBefore = nil, time.Time{}, time.Time{}
		e.gen++
	}
}
