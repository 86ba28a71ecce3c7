package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"golang.org/x/sync/singleflight"

	"github.com/dobrobot/dobrobot/commands"
)

// GroupLister lists the members of a Slack user group
// (usergroups.users.list) and of a channel, a page at a time
// (conversations.members); *slack.Client is one.
type GroupLister interface {
	GetUserGroupMembersContext(ctx context.Context, group string, options ...slack.GetUserGroupMembersOption) ([]string, error)
	GetUsersInConversationContext(ctx context.Context, params *slack.GetUsersInConversationParameters) ([]string, string, error)
}

// channelPage is how many members one conversations.members call asks for
// (Slack's maximum is 1000), and channelPages bounds the pages of one list,
// so that a cursor that never ends cannot hold a command for ever.
const (
	channelPage  = 1000
	channelPages = 200
)

// isChannel reports whether id names a channel (public C…, private G… or
// C…) rather than a user group (S…).
func isChannel(id string) bool { return strings.HasPrefix(id, "C") || strings.HasPrefix(id, "G") }

// isGroup reports whether id is a Slack user group (S…) or a channel: any
// other ID in a role list is a user.
func isGroup(id string) bool { return strings.HasPrefix(id, "S") || isChannel(id) }

// describe names id for messages: a user group or a channel.
func describe(id string) string {
	if isChannel(id) {
		return "channel " + id
	}
	return "user group " + id
}

// UserGroups resolves Slack user groups (S…) and channels (C…, G…: the
// release channel, whose members are the requesters when none are
// configured) to their members for commands.Groups, with a cache of bounded
// staleness: a list younger than the TTL is used as is; an older one is
// refreshed with usergroups.users.list (a Tier 2 method, so calls are spread
// out) or conversations.members (paginated); if the refresh fails, a list
// younger than the maximum staleness is still used, and beyond that Members
// fails closed with EUNAVAILABLE so the caller denies.
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

	flight singleflight.Group // one refresh per group at a time
	mu     sync.Mutex
	groups map[string]*groupEntry
}

type groupEntry struct {
	members    []string
	fetched    time.Time // zero: nothing usable
	notBefore  time.Time // no refresh attempt before this
	refreshing bool      // a refresh is asking Slack
	gen        uint64    // incremented by Forget
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

// Members returns the members of group (a user group or a channel), or a
// user ID as itself without asking Slack. Errors: EUNAVAILABLE when the list
// cannot be known fresh enough.
func (g *UserGroups) Members(ctx context.Context, group string) ([]string, error) {
	if !isGroup(group) {
		return []string{group}, nil
	}
	for {
		g.mu.Lock()
		members, ok, err := g.cached(group, true)
		g.mu.Unlock()
		if ok {
			return members, err
		}
		// Concurrent misses for one group share one Slack call.
		ch := g.flight.DoChan(group, func() (any, error) { return g.refresh(ctx, group) })
		select {
		case r := <-ch:
			if r.Err != nil {
				return nil, r.Err
			}
			res := r.Val.(refreshed)
			if res.again {
				continue
			}
			return slices.Clone(res.members), nil
		case <-ctx.Done():
			return nil, commands.Errorf(commands.EUNAVAILABLE, "could not check the members of %s in time: try again", describe(group))
		}
	}
}

// cached answers from the cache when it may: a list within the TTL; a list
// within the maximum staleness while a refresh runs (when usingFlight) or
// before the next attempt is due; or EUNAVAILABLE before that attempt when
// nothing usable is known. ok is false when Slack must be asked. g.mu is
// held.
func (g *UserGroups) cached(group string, usingFlight bool) (members []string, ok bool, err error) {
	e := g.groups[group]
	if e == nil {
		e = &groupEntry{}
		g.groups[group] = e
	}
	now := g.now()
	age := now.Sub(e.fetched)
	known := !e.fetched.IsZero()
	usable := known && age < g.maxStale
	switch {
	case known && age < g.ttl:
		return slices.Clone(e.members), true, nil
	case e.refreshing:
		if usable && usingFlight {
			return slices.Clone(e.members), true, nil
		}
		return nil, false, nil
	case now.Before(e.notBefore):
		if usable {
			return slices.Clone(e.members), true, nil
		}
		return nil, true, errSlackSilent(group)
	}
	return nil, false, nil
}

func errSlackSilent(group string) error {
	return commands.Errorf(commands.EUNAVAILABLE, "could not check the members of %s (Slack did not answer): try again in a minute", describe(group))
}

// refreshed is what one refresh tells every caller that shared it: the
// members, or again when Forget ran meanwhile and the answer may predate it.
type refreshed struct {
	members []string
	again   bool
}

// refresh asks Slack for group's members and records the answer. It runs
// once per group at a time (g.flight).
func (g *UserGroups) refresh(ctx context.Context, group string) (refreshed, error) {
	g.mu.Lock()
	// A refresh that ended just before this one began may have answered.
	if members, ok, err := g.cached(group, false); ok {
		g.mu.Unlock()
		return refreshed{members: members}, err
	}
	e := g.groups[group]
	e.refreshing = true
	gen := e.gen
	g.mu.Unlock()

	members, err := g.fetch(ctx, group)

	g.mu.Lock()
	defer g.mu.Unlock()
	e.refreshing = false
	if e.gen != gen {
		// The members changed while Slack answered: the answer may
		// predate the change, so ask again.
		return refreshed{again: true}, nil
	}
	now := g.now()
	var missing slack.SlackErrorResponse
	switch {
	case err == nil:
		e.members, e.fetched, e.notBefore = members, now, time.Time{}
	case errors.As(err, &missing) && missing.Err == "no_such_subteam":
		// A group that does not exist has no members: deny, without
		// asking Slack again before the TTL.
		g.Log.Warn().Str("group", group).Msg("a user group in the roles does not exist in Slack: it grants nobody")
		e.members, e.fetched, e.notBefore = nil, now, time.Time{}
	case errors.As(err, &missing) && missing.Err == "channel_not_found":
		// Likewise a channel the bot cannot see (deleted, or private
		// without the bot): nobody is in it as far as roles go.
		g.Log.Warn().Str("channel", group).Msg("the release channel cannot be found in Slack: nobody can request releases by DM")
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
		stale := !e.fetched.IsZero() && now.Sub(e.fetched) < g.maxStale
		g.Log.Warn().Err(err).Str("group", group).Bool("using_cached", stale).
			Msg("could not refresh the members of a user group or channel")
		if !stale {
			return refreshed{}, errSlackSilent(group)
		}
	}
	return refreshed{members: slices.Clone(e.members)}, nil
}

func (g *UserGroups) fetch(ctx context.Context, group string) ([]string, error) {
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !isChannel(group) {
		return g.api.GetUserGroupMembersContext(ctx, group)
	}
	var members []string
	cursor := ""
	for range channelPages {
		page, next, err := g.api.GetUsersInConversationContext(ctx, &slack.GetUsersInConversationParameters{
			ChannelID: group, Cursor: cursor, Limit: channelPage})
		if err != nil {
			return nil, err
		}
		members = append(members, page...)
		if next == "" {
			return members, nil
		}
		cursor = next
	}
	return nil, fmt.Errorf("conversations.members of %s: more than %d pages", group, channelPages)
}

// Forget drops what is known of group (a user group or a channel), so the
// next check asks Slack (and denies if Slack cannot answer). The bot calls
// it when Slack reports that the members changed (subteam_members_changed,
// member_joined_channel, member_left_channel).
func (g *UserGroups) Forget(group string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.groups[group]; e != nil {
		e.members, e.fetched, e.notBefore = nil, time.Time{}, time.Time{}
		e.gen++
	}
}
