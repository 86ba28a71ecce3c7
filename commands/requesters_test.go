package commands_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// channelGroups is groups{}, with the release channel's members unknown
// when down is set (Slack did not answer conversations.members).
type channelGroups struct{ down bool }

func (g channelGroups) Members(ctx context.Context, id string) ([]string, error) {
	if g.down && strings.HasPrefix(id, "C") {
		return nil, commands.Errorf(commands.EUNAVAILABLE, "could not check the members of %s (Slack did not answer): try again in a minute", id)
	}
	return groups{}.Members(ctx, id)
}

// TestRequestersAreTheChannelByDM is issue 12, item 10: with no requesters
// configured, the requesters are the release channel's members. A mention
// comes from the channel and the console is the operator's, so anyone
// there may request; a dobro by DM or button is taken only from a member of
// the channel, and refused (changing nothing) when the members cannot be
// known. Other commands never ask for the channel's members.
func TestRequestersAreTheChannelByDM(t *testing.T) {
	const queued = "<https://jira.example.com/browse/PAY-1|PAY-1> is in the queue"
	const notMember = "Only members of the release channel can request releases: join <#C0REL> and ask there."
	for i, tc := range []struct {
		user, text string
		via        commands.Via
		down       bool
		want       string // the reply's start
		queued     bool
	}{
		{guest, "dobro PAY-1", commands.ViaMention, false, queued, true},
		{guest, "dobro PAY-1", commands.ViaConsole, false, queued, true},
		{guest, "dobro PAY-1", commands.ViaDM, false, notMember, false},
		{guest, "dobro PAY-1", commands.ViaButton, false, notMember, false},
		{bob, "dobro PAY-1", commands.ViaDM, false, queued, true},
		{bob, "dobro PAY-1", commands.ViaButton, false, queued, true},
		{bob, "dobro PAY-1", commands.ViaDM, true, "Could not check your roles right now", false},
		{bob, "dobro PAY-1", commands.ViaMention, true, queued, true},
	} {
		t.Run(fmt.Sprintf("%s %s via %s, channel members known %v", tc.user, tc.text, tc.via, !tc.down), func(t *testing.T) {
			h := newHarness(t)
			h.rebuild(func(c *commands.Config) {
				c.Policy.Channel = "C0REL"
				c.Groups = channelGroups{down: tc.down}
			})
			effects := h.deliver(commands.Message{EventID: fmt.Sprintf("ev-%d", i), User: tc.user, Channel: "D0" + tc.user,
				Text: tc.text, Via: tc.via, Time: h.now})
			var replies []string
			for _, e := range effects {
				if e.Kind == commands.EffectReply && e.User == tc.user {
					replies = append(replies, render(e.Text))
				}
			}
			if len(replies) != 1 || !strings.HasPrefix(replies[0], tc.want) {
				t.Errorf("replies: got %q, want one starting %q", replies, tc.want)
			}
			var rel commands.Release
			err := h.db.View(context.Background(), func(tx commands.Tx) error {
				var err error
				rel, err = commands.OpenRelease(tx, "PAY-1", "")
				return err
			})
			if queued := err == nil; queued != tc.queued {
				t.Errorf("PAY-1 queued: got %v (%v), want %v", queued, err, tc.queued)
			}
			if tc.queued && rel.Requester != tc.user {
				t.Errorf("PAY-1 requested by %s, want %s", rel.Requester, tc.user)
			}
		})
	}

	// An approver's click does not depend on the channel's members.
	h := newHarness(t)
	h.rebuild(func(c *commands.Config) { c.Policy.Channel = "C0REL" })
	h.say(ann, "dobro PAY-1")
	h.rebuild(func(c *commands.Config) { c.Groups = channelGroups{down: true} })
	effects := h.deliver(commands.Message{EventID: "click", User: approver, Channel: "D0APPROVER", Text: "accept PAY-1",
		Via: commands.ViaButton, Time: h.now})
	var got []string
	for _, e := range effects {
		if e.Kind == commands.EffectReply {
			got = append(got, render(e.Text))
		}
	}
	if diff := cmp.Diff([]string{"You accepted PAY-1."}, got); diff != "" {
		t.Errorf("accept by button with the channel's members unknown (-want +got):\n%s", diff)
	}
}
