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

	"github.com/dobrobot/dobrobot/commands"
)

// GroupLister lists the members of a Slack user group; *slack.Client is one.
type GroupLister interface {
	GetUserGroupMembersContext(ctx context.Context, group string, options ...slack.GetUserGroupMembersOption) ([]string, error)
}

// ChannelLister lists the members of a channel, a page at a time
// (conversations.members); *slack.Client is one. A GroupLister that is not
// one resolves no channel: Members fails closed.
type ChannelLister interface {
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

// Members returns the members of group (a user group or a channel). Errors: EUNAVAILABLE when the list
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
				return nil, commands.Errorf(commands.EUNAVAILABLE, "could not check the members of %s in time: try again", describe(group))
			}
		}
		if now.Before(e.notBefore) {
			defer g.mu.Unlock()
			if usable {
				return slices.Clone(e.members), nil
			}
			return nil, commands.Errorf(commands.EUNAVAILABLE, "could not check the members of %s (Slack did not answer): try again in a minute", describe(group))
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
			stale := known && now.Sub(e.fetched) < g.maxStale
			g.Log.Warn().Err(err).Str("group", group).Bool("using_cached", stale).
				Msg("could not refresh the members of a user group or channel")
			if !stale {
				g.mu.Unlock()
				return nil, commands.Errorf(commands.EUNAVAILABLE, "could not check the members of %s (Slack did not answer): try again in a minute", describe(group))
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
	if !isChannel(group) {
		return g.api.GetUserGroupMembersContext(ctx, group)
	}
	lister, ok := g.api.(ChannelLister)
	if !ok {
		return nil, errors.New("this Slack client cannot list a channel's members")
	}
	var members []string
	cursor := ""
	for range channelPages {
		page, next, err := lister.GetUsersInConversationContext(ctx, &slack.GetUsersInConversationParameters{
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
