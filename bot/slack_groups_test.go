package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newGroups(t *testing.T) (*UserGroups, *fakeslack.Server, *testClock) {
	s := fakeslack.New(t)
	api := slack.New(fakeslack.BotToken, slack.OptionAPIURL(s.URL))
	g := NewUserGroups(api, 5*time.Minute, 15*time.Minute)
	clock := &testClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	g.Now = clock.Now
	return g, s, clock
}

func TestUserGroupsCache(t *testing.T) {
	g, s, clock := newGroups(t)
	ctx := context.Background()
	s.SetGroup("S01QA", "U01", "U02")
	calls := func() int { return len(s.Calls("usergroups.users.list")) }

	type step struct {
		name    string
		advance time.Duration
		setup   func()
		want    []string
		code    string // expected error code, "" for none
		calls   int    // API calls in all after the step
	}
	steps := []step{
		{name: "first check asks Slack", want: []string{"U01", "U02"}, calls: 1},
		{name: "within the TTL the cache answers", advance: 4 * time.Minute, setup: func() { s.SetGroup("S01QA", "U01") }, want: []string{"U01", "U02"}, calls: 1},
		{name: "after the TTL Slack is asked again", advance: 2 * time.Minute, want: []string{"U01"}, calls: 2},
		{name: "a failed refresh within max staleness uses the cache", advance: 6 * time.Minute,
			setup: func() { s.Fail("usergroups.users.list", fakeslack.Failure{Status: http.StatusServiceUnavailable}) },
			want:  []string{"U01"}, calls: 3},
		{name: "no new call before RetryAfter", advance: 5 * time.Second, want: []string{"U01"}, calls: 3},
		{name: "past max staleness it fails closed", advance: 10 * time.Minute, code: commands.EUNAVAILABLE, calls: 4},
		{name: "and keeps failing closed without hammering Slack", advance: time.Second, code: commands.EUNAVAILABLE, calls: 4},
		{name: "once Slack answers it recovers", advance: 10 * time.Second, setup: s.ClearFailures, want: []string{"U01"}, calls: 5},
	}
	for _, st := range steps {
		clock.Add(st.advance)
		if st.setup != nil {
			st.setup()
		}
		got, err := g.Members(ctx, "S01QA")
		if code := commands.ErrorCode(err); code != st.code {
			t.Fatalf("%s: error %v (code %q), want code %q", st.name, err, code, st.code)
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s: members (-want +got):\n%s", st.name, diff)
		}
		if got := calls(); got != st.calls {
			t.Errorf("%s: usergroups.users.list calls: got %d, want %d", st.name, got, st.calls)
		}
	}
}

func TestUserGroupsRateLimited(t *testing.T) {
	g, s, clock := newGroups(t)
	ctx := context.Background()
	s.Fail("usergroups.users.list", fakeslack.Failure{Status: http.StatusTooManyRequests, RetryAfter: 30, Times: 1})
	if _, err := g.Members(ctx, "S01QA"); commands.ErrorCode(err) != commands.EUNAVAILABLE {
		t.Fatalf("a 429 with nothing cached: got %v, want EUNAVAILABLE", err)
	}
	s.SetGroup("S01QA", "U01")
	clock.Add(20 * time.Second)
	if _, err := g.Members(ctx, "S01QA"); commands.ErrorCode(err) != commands.EUNAVAILABLE {
		t.Fatalf("within Retry-After: got %v, want EUNAVAILABLE", err)
	}
	if n := len(s.Calls("usergroups.users.list")); n != 1 {
		t.Errorf("calls within Retry-After: got %d, want 1", n)
	}
	clock.Add(11 * time.Second)
	if got, err := g.Members(ctx, "S01QA"); err != nil || !cmp.Equal(got, []string{"U01"}) {
		t.Errorf("after Retry-After: got %v, %v", got, err)
	}
}

func TestUserGroupsForgetAndMissing(t *testing.T) {
	g, s, clock := newGroups(t)
	ctx := context.Background()
	s.SetGroup("S01QA", "U01")
	if _, err := g.Members(ctx, "S01QA"); err != nil {
		t.Fatal(err)
	}
	// Slack says the members changed: the cache is dropped, and a failed
	// refresh now denies instead of trusting the old list.
	g.Forget("S01QA")
	s.Fail("usergroups.users.list", fakeslack.Failure{Error: "internal_error", Times: 1})
	clock.Add(time.Second)
	if _, err := g.Members(ctx, "S01QA"); commands.ErrorCode(err) != commands.EUNAVAILABLE {
		t.Errorf("after Forget with Slack failing: got %v, want EUNAVAILABLE", err)
	}
	s.SetGroup("S01QA", "U02")
	clock.Add(11 * time.Second)
	if got, err := g.Members(ctx, "S01QA"); err != nil || !cmp.Equal(got, []string{"U02"}) {
		t.Errorf("after Forget: got %v, %v; want [U02]", got, err)
	}

	// A group Slack does not know grants nobody and is not asked again until the TTL.
	for range 3 {
		if got, err := g.Members(ctx, "S0GONE"); err != nil || len(got) != 0 {
			t.Errorf("unknown group: got %v, %v; want no members, no error", got, err)
		}
	}
	n := 0
	for _, c := range s.Calls("usergroups.users.list") {
		if c.Args.Get("usergroup") == "S0GONE" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("calls for the unknown group: got %d, want 1", n)
	}
}

func TestUserGroupsConcurrentColdStartAsksOnce(t *testing.T) {
	g, s, _ := newGroups(t)
	s.SetGroup("S01QA", "U01")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if got, err := g.Members(context.Background(), "S01QA"); err != nil || !cmp.Equal(got, []string{"U01"}) {
				t.Errorf("got %v, %v", got, err)
			}
		})
	}
	wg.Wait()
	if n := len(s.Calls("usergroups.users.list")); n != 1 {
		t.Errorf("usergroups.users.list calls: got %d, want 1", n)
	}
}

// TestUserGroupsConcurrentColdChannelAsksOnce: concurrent checks of a
// channel nobody has looked up yet share one conversations.members call,
// as a user group's share one usergroups.users.list.
func TestUserGroupsConcurrentColdChannelAsksOnce(t *testing.T) {
	g, s, _ := newGroups(t)
	s.SetChannelMembers("C01REL", "U01", "U02")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if got, err := g.Members(context.Background(), "C01REL"); err != nil || !cmp.Equal(got, []string{"U01", "U02"}) {
				t.Errorf("got %v, %v", got, err)
			}
		})
	}
	wg.Wait()
	if n := len(s.Calls("conversations.members")); n != 1 {
		t.Errorf("conversations.members calls: got %d, want 1", n)
	}
	if n := len(s.Calls("usergroups.users.list")); n != 0 {
		t.Errorf("usergroups.users.list calls: got %d, want 0", n)
	}
}

// TestUserGroupsResolvesTheChannel: a channel ID is resolved with
// conversations.members, every page of it, under the same cache rules as a
// user group: the TTL, the stale list while Slack fails, failing closed
// past the maximum staleness, Forget, and a channel Slack cannot find
// granting nobody (issue 12, item 10).
func TestUserGroupsResolvesTheChannel(t *testing.T) {
	g, s, clock := newGroups(t)
	ctx := context.Background()
	var big []string
	for i := range 2500 {
		big = append(big, fmt.Sprintf("U%05d", i))
	}
	s.SetChannelMembers("C0REL", big...)
	calls := func() int { return len(s.Calls("conversations.members")) }

	type step struct {
		name    string
		advance time.Duration
		setup   func()
		want    []string
		code    string
		calls   int
	}
	steps := []step{
		{name: "first check reads every page", want: big, calls: 3},
		{name: "within the TTL the cache answers", advance: 4 * time.Minute, setup: func() { s.SetChannelMembers("C0REL", "U01") }, want: big, calls: 3},
		{name: "after the TTL Slack is asked again", advance: 2 * time.Minute, want: []string{"U01"}, calls: 4},
		{name: "a failed refresh within max staleness uses the cache", advance: 6 * time.Minute,
			setup: func() { s.Fail("conversations.members", fakeslack.Failure{Status: http.StatusServiceUnavailable}) },
			want:  []string{"U01"}, calls: 5},
		{name: "past max staleness it fails closed", advance: 10 * time.Minute, code: commands.EUNAVAILABLE, calls: 6},
		{name: "once Slack answers it recovers", advance: 11 * time.Second, setup: s.ClearFailures, want: []string{"U01"}, calls: 7},
	}
	for _, st := range steps {
		clock.Add(st.advance)
		if st.setup != nil {
			st.setup()
		}
		got, err := g.Members(ctx, "C0REL")
		if code := commands.ErrorCode(err); code != st.code {
			t.Fatalf("%s: error %v (code %q), want code %q", st.name, err, code, st.code)
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s: members (-want +got):\n%s", st.name, diff)
		}
		if got := calls(); got != st.calls {
			t.Errorf("%s: conversations.members calls: got %d, want %d", st.name, got, st.calls)
		}
	}
	// A failure names the channel, not a user group.
	g.Forget("C0REL")
	s.Fail("conversations.members", fakeslack.Failure{Error: "internal_error", Times: 1})
	clock.Add(time.Second)
	if _, err := g.Members(ctx, "C0REL"); commands.ErrorCode(err) != commands.EUNAVAILABLE || !strings.Contains(err.Error(), "channel C0REL") {
		t.Errorf("after Forget with Slack failing: got %v, want EUNAVAILABLE naming channel C0REL", err)
	}
	for range 2 {
		if got, err := g.Members(ctx, "C0GONE"); err != nil || len(got) != 0 {
			t.Errorf("a channel Slack cannot find: got %v, %v; want no members, no error", got, err)
		}
	}
}

// groupsOnly lists user groups but cannot list a channel's members.
type groupsOnly struct{}

func (groupsOnly) GetUserGroupMembersContext(context.Context, string, ...slack.GetUserGroupMembersOption) ([]string, error) {
	return []string{"U01"}, nil
}

func (groupsOnly) GetUsersInConversationContext(context.Context, *slack.GetUsersInConversationParameters) ([]string, string, error) {
	return nil, "", errors.New("this Slack client cannot list a channel's members")
}

// TestUserGroupsChannelNeedsALister: a client that cannot list a channel's
// members fails closed instead of granting.
func TestUserGroupsChannelNeedsALister(t *testing.T) {
	g := NewUserGroups(groupsOnly{}, time.Minute, time.Minute)
	if got, err := g.Members(context.Background(), "C0REL"); commands.ErrorCode(err) != commands.EUNAVAILABLE {
		t.Errorf("got %v, %v; want EUNAVAILABLE", got, err)
	}
}

// TestUserGroupsTellGroupsFromUsers: the core asks Groups about any ID of a
// role list; only the adapter knows Slack's prefixes. A user ID stands for
// itself, without a call to Slack (api is nil here); so it does at the
// console, where a group has no member it could know (fail closed).
func TestUserGroupsTellGroupsFromUsers(t *testing.T) {
	g := NewUserGroups(nil, time.Minute, time.Minute)
	for _, id := range []string{"U01ANN", "W01ANN"} {
		if got, err := g.Members(context.Background(), id); err != nil || !cmp.Equal(got, []string{id}) {
			t.Errorf("UserGroups.Members(%s) = %v, %v; want the user alone", id, got, err)
		}
	}
	for id, want := range map[string][]string{"U01ANN": {"U01ANN"}, "S01QA": nil, "C0REL": nil} {
		if got, err := (ConsoleGroups{}).Members(context.Background(), id); err != nil || !cmp.Equal(got, want) {
			t.Errorf("ConsoleGroups.Members(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
}
