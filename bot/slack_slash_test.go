package bot

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
)

// texts returns the texts of messages.
func texts(ms []fakeslack.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Channel+": "+m.Text)
	}
	return out
}

// slash sends a slash command and waits for its ack, which must come in
// time and carry nothing (the answer comes as a message).
func slash(t *testing.T, fs *fakeslack.Server, c fakeslack.Slash) fakeslack.Envelope {
	t.Helper()
	sent := send(t, fs, fs.SlashEnvelope(c))
	ack, err := fs.WaitAck(sent.EnvelopeID, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Late || len(ack.Payload) > 0 {
		t.Errorf("/dobro %s: ack late %v, payload %s", c.Text, ack.Late, ack.Payload)
	}
	return sent
}

// TestSlashCommandText: /dobro TEXT runs TEXT as its sender's command, as
// a mention would, and answers only the sender (ephemeral where it was
// typed; in the DM when typed in the bot's DM, or in the bot's DM when
// typed in a DM the bot is not in). /dobro alone answers with help. A
// slash command Slack delivers twice has one effect.
func TestSlashCommandText(t *testing.T) {
	fs := fakeslack.New(t)
	fs.SetChannelMembers(releaseChannel, ann, bob, adm)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{})

	env := slash(t, fs, fakeslack.Slash{User: ann, Channel: releaseChannel, Text: "dobro <https://jira.example.com/browse/PAY-1|PAY-1> fix &amp; ship"})
	h.settle(t)
	rel := h.release(t, "PAY-1")
	if rel.State != commands.StateRequested || rel.Requester != ann || rel.Note != "fix & ship" {
		t.Fatalf("after /dobro dobro PAY-1: %+v", rel)
	}
	if c := cards(fs); len(c) != 1 || !strings.Contains(c[0].Text, "PAY-1") {
		t.Errorf("cards: %q", texts(c))
	}
	if eph := fs.Ephemerals(ann); len(eph) != 1 || eph[0].Channel != releaseChannel {
		t.Errorf("ann's answers: %q, want one ephemeral in the release channel", texts(eph))
	}

	// Slack delivers the same command again (a new envelope, the same
	// payload): it is acked and has no second effect.
	again, err := fs.Redeliver(env, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.WaitAck(again.EnvelopeID, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	h.settle(t)
	if got := h.audit(t, "PAY-1"); !cmp.Equal(got, []string{ann + ":request"}) {
		t.Errorf("audit of PAY-1 after a redelivery: %q", got)
	}
	if n := len(fs.Ephemerals(ann)); n != 1 {
		t.Errorf("ann has %d answers after a redelivery, want 1", n)
	}

	// Anywhere else: answered where it was typed, to its sender only.
	slash(t, fs, fakeslack.Slash{User: bob, Channel: "C0ELSEWHERE", Text: "queue"})
	h.settle(t) // the two are handled concurrently: their answers' order is checked
	// Alone: help, for now (the modal comes later).
	slash(t, fs, fakeslack.Slash{User: bob, Channel: "C0ELSEWHERE", Text: "  "})
	h.settle(t)
	eph := fs.Ephemerals(bob)
	if len(eph) != 2 || eph[0].Channel != "C0ELSEWHERE" || !strings.Contains(eph[0].Text, "PAY-1") ||
		eph[1].Channel != "C0ELSEWHERE" || !strings.Contains(eph[1].Text, "dep start TICKET") {
		t.Errorf("bob's ephemeral answers: %q, want the queue then help, in C0ELSEWHERE", texts(eph))
	}
	if n := len(fs.Messages("C0ELSEWHERE")); n != 0 {
		t.Errorf("%d messages everyone in C0ELSEWHERE sees", n)
	}

	// In the bot's DM: answered there.
	slash(t, fs, fakeslack.Slash{User: adm, Channel: fakeslack.DMChannel(adm), Text: "status PAY-1"})
	h.settle(t)
	// In a DM between people, which the bot is not in: in the bot's DM.
	fs.Fail("chat.postMessage", fakeslack.Failure{Error: "channel_not_found", Times: 1})
	slash(t, fs, fakeslack.Slash{User: adm, Channel: "D0PEOPLE", Text: "history"})
	h.settle(t)
	dm := fs.Messages(fakeslack.DMChannel(adm))
	if len(dm) != 2 || !strings.Contains(dm[0].Text, "PAY-1") || !strings.Contains(dm[1].Text, "PAY-1") {
		t.Errorf("admin's DM: %q, want the status and the history", texts(dm))
	}
	if n := len(fs.Ephemerals(adm)); n != 0 {
		t.Errorf("admin got %d ephemeral answers", n)
	}
}

// TestSlashCommandAuthorisation: a slash command has its sender's roles and
// no more. Typed in the release channel, it does not stand for membership
// of it (anyone can type one anywhere): with no requesters configured, a
// dobro from someone outside the release channel is refused, as by DM.
func TestSlashCommandAuthorisation(t *testing.T) {
	fs := fakeslack.New(t)
	fs.SetChannelMembers(releaseChannel, ann, bob, adm)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{})

	// Each settles before the next: commands of different people are
	// handled concurrently, and the audit's order is compared below.
	slash(t, fs, fakeslack.Slash{User: mallory, Channel: releaseChannel, Text: "dobro PAY-7"})
	h.settle(t)
	slash(t, fs, fakeslack.Slash{User: ann, Channel: releaseChannel, Text: "dobro PAY-8"})
	h.settle(t)
	slash(t, fs, fakeslack.Slash{User: ann, Channel: releaseChannel, Text: "accept PAY-8"})
	h.settle(t)
	slash(t, fs, fakeslack.Slash{User: mallory, Channel: releaseChannel, Text: "lock all"})
	// Not the bot, not another workspace: ignored, not even recorded.
	slash(t, fs, fakeslack.Slash{User: fakeslack.BotUser, Channel: releaseChannel, Text: "lock all"})
	slash(t, fs, fakeslack.Slash{User: "U0STRANGER", Team: "T0OTHER", Channel: releaseChannel, Text: "lock all"})
	h.settle(t)

	if st := h.state(t, "PAY-7"); st != commands.StateNone {
		t.Errorf("PAY-7 requested by someone outside the release channel: %s", st)
	}
	if st := h.state(t, "PAY-8"); st != commands.StateRequested {
		t.Errorf("PAY-8 is %s after its requester tried to accept it, want requested", st)
	}
	var got []string
	if err := h.db.Audit(t.Context(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		got = append(got, e.Actor+" "+string(e.Action)+" "+e.Via+" "+firstWords(e.Detail, 6))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		mallory + " refused slack dobro: Only members of the release",
		ann + " request slack components: backend",
		ann + " refused slack accept: Only approvers can accept releases:",
		mallory + " refused slack lock: Only admins can freeze components:",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	if n := len(fs.Ephemerals(mallory)); n != 2 {
		t.Errorf("mallory got %d answers, want 2", n)
	}
	if locks := h.locks(t); len(locks) != 0 {
		t.Errorf("locks: %+v", locks)
	}
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(n, len(f))], " ")
}

func (h *botHarness) locks(t *testing.T) []commands.Lock {
	t.Helper()
	var locks []commands.Lock
	if err := h.db.View(t.Context(), func(tx commands.Tx) error {
		var err error
		locks, err = tx.Locks()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return locks
}
