package bot

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
)

// TestSlackRequestersAreTheChannel is issue 12, item 10 end to end: with no
// requesters configured, a dobro by DM is taken only from a member of the
// release channel (conversations.members, cached), a mention in the channel
// needs no look-up, and when someone joins the channel Slack's
// member_joined_channel drops the cached list at once.
func TestSlackRequestersAreTheChannel(t *testing.T) {
	fs := fakeslack.New(t)
	fs.SetChannelMembers(releaseChannel, ann, bob, adm)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{}) // no requesters
	dmTo := func(user, contains string) bool {
		return slices.ContainsFunc(fs.Messages(fakeslack.DMChannel(user)), func(m fakeslack.Message) bool {
			return strings.Contains(m.Text, contains)
		})
	}

	do(t, fs, fs.EventEnvelope(fakeslack.DM(mallory, "dobro PAY-1")))
	h.settle(t)
	want := "Only members of the release channel can request releases: join <#" + releaseChannel + "> and ask there."
	if !dmTo(mallory, want) {
		t.Errorf("a non-member's DM dobro: replies %+v, want %q", fs.Messages(fakeslack.DMChannel(mallory)), want)
	}
	if r := h.release(t, "PAY-1"); r.ID != 0 {
		t.Errorf("a non-member's DM dobro queued %+v", r)
	}

	do(t, fs, fs.EventEnvelope(fakeslack.DM(ann, "dobro PAY-2")))
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(mallory, releaseChannel, "dobro PAY-3")))
	h.settle(t)
	for ticket, by := range map[string]string{"PAY-2": ann, "PAY-3": mallory} {
		if r := h.release(t, ticket); r.State != commands.StateRequested || r.Requester != by {
			t.Errorf("%s: got %s by %s, want requested by %s", ticket, r.State, r.Requester, by)
		}
	}
	if n := len(fs.Calls("conversations.members")); n != 1 {
		t.Errorf("conversations.members calls: %d, want 1 (the list is cached; a mention needs none)", n)
	}

	// Mallory joins: Slack says so, the cache is dropped, the next DM is taken.
	fs.SetChannelMembers(releaseChannel, ann, bob, adm, mallory)
	do(t, fs, fs.MemberEnvelope(mallory, releaseChannel, true))
	do(t, fs, fs.EventEnvelope(fakeslack.DM(mallory, "dobro PAY-4")))
	h.settle(t)
	if r := h.release(t, "PAY-4"); r.State != commands.StateRequested || r.Requester != mallory {
		t.Errorf("PAY-4 after joining the channel: got %s by %s, want requested by %s", r.State, r.Requester, mallory)
	}

	// Slack cannot say who is in the channel: a DM dobro is refused, nothing changes.
	fs.Fail("conversations.members", fakeslack.Failure{Error: "internal_error"})
	do(t, fs, fs.MemberEnvelope(mallory, releaseChannel, false))
	do(t, fs, fs.EventEnvelope(fakeslack.DM(ann, "dobro PAY-5")))
	h.settle(t)
	if !dmTo(ann, "Could not check your roles right now") {
		t.Errorf("a DM dobro with the members unknown: replies %+v", fs.Messages(fakeslack.DMChannel(ann)))
	}
	if r := h.release(t, "PAY-5"); r.ID != 0 {
		t.Errorf("a DM dobro with the members unknown queued %+v", r)
	}
}
