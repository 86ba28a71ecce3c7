package bot

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/slack-go/slack/socketmode"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
)

// Fuzzers of envelope decoding (RELIABILITY.md T51). Seeds are in
// testdata/fuzz; make fuzz runs them for longer.

// checkInbound fails t when an envelope the bot would act on is not one it
// may act on: a command needs an event ID, a user of this team who is not
// the bot, a way in, and text without the bot's mention.
func checkInbound(t *testing.T, in inbound, raw []byte) {
	t.Helper()
	switch in.kind {
	case inboundIgnore:
		if in.reason == "" {
			t.Errorf("ignored without a reason: %s", raw)
		}
	case inboundGroupChanged:
		if in.group == "" {
			t.Errorf("a group change without a group: %s", raw)
		}
	case inboundCommand, inboundElsewhere:
		m := in.msg
		switch {
		case m.EventID == "", m.User == "", m.User == testMe.User, m.Team != testMe.Team:
			t.Errorf("accepted %s as %+v", raw, m)
		case m.Via != commands.ViaMention && m.Via != commands.ViaDM && m.Via != commands.ViaButton:
			t.Errorf("no way in: %+v", m)
		case m.Via != commands.ViaButton && testMe.mention.MatchString(m.Text) && !strings.Contains(string(raw), "&lt;"):
			t.Errorf("the bot's mention is left in %q", m.Text)
		}
	default:
		t.Errorf("unknown kind %d", in.kind)
	}
}

// FuzzParseAction: any interactive payload is either ignored with a reason
// or a command of a user of this team clicking one of the bot's buttons.
func FuzzParseAction(f *testing.F) {
	s := fakeslack.New(f)
	for _, c := range []fakeslack.Click{
		{User: "U01", Channel: "D01", MessageTS: "1.000100", ActionID: "dobrobot.0", Value: "accept PAY-1"},
		{User: "U01", Channel: "D01", ActionID: "other.0", Value: "accept PAY-1"},
		{User: fakeslack.BotUser, Channel: "D01", ActionID: "dobrobot.1", Value: "queue"},
		{User: "U01", Team: "T0OTHER", Channel: "C01", ActionID: "dobrobot.0", Value: "dep start PAY-1"},
	} {
		f.Add(string(s.ClickEnvelope(c).Payload))
	}
	f.Add(`{"type":"block_actions","team":{"id":"` + fakeslack.TeamID + `"},"user":{"id":"U1"},"actions":[]}`)
	f.Fuzz(func(t *testing.T, p string) {
		in := parseAction([]byte(p), testMe)
		checkInbound(t, in, []byte(p))
		if in.kind == inboundCommand {
			if !strings.HasPrefix(in.msg.EventID, "button:") || in.msg.Via != commands.ViaButton || strings.TrimSpace(in.msg.Text) == "" {
				t.Errorf("click %s became %+v", p, in.msg)
			}
			if !strings.Contains(p, buttonPrefix) {
				t.Errorf("a click without the bot's action_id prefix became a command: %s", p)
			}
		}
	})
}

// FuzzSocketModeEnvelope: a whole Socket Mode message, decoded as the bot
// decodes one slack-go could not parse, then read by type; whatever it
// holds, the result is one the bot may act on.
func FuzzSocketModeEnvelope(f *testing.F) {
	s := fakeslack.New(f)
	for _, env := range []fakeslack.Envelope{
		s.EventEnvelope(fakeslack.Mention("U01", releaseChannel, "dobro PAY-1")),
		s.EventEnvelope(fakeslack.DM("U01", "queue")),
		s.EventEnvelope(fakeslack.Event{ID: "Ev1", User: "U01", Channel: releaseChannel, Text: "<@" + fakeslack.BotUser + "> x", Edited: true}),
		s.GroupChangedEnvelope("S01", []string{"U01"}, nil),
		s.ClickEnvelope(fakeslack.Click{User: "U01", Channel: "D01", ActionID: "dobrobot.0", Value: "accept PAY-1"}),
	} {
		b, err := json.Marshal(env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(`{"type":"disconnect","reason":"refresh_requested"}`)
	f.Add(`{"type":"hello","num_connections":2}`)
	f.Fuzz(func(t *testing.T, raw string) {
		var req socketmode.Request
		if json.Unmarshal([]byte(raw), &req) != nil {
			return
		}
		var in inbound
		switch req.Type {
		case socketmode.RequestTypeEventsAPI:
			in = parseEvent(req.Payload, testMe, releaseChannel)
		case socketmode.RequestTypeInteractive:
			in = parseAction(req.Payload, testMe)
		default:
			return
		}
		checkInbound(t, in, []byte(raw))
		if in.kind == inboundCommand {
			if _, err := commands.Parse(in.msg.Text); err != nil && commands.ErrorCode(err) != commands.EINVALID {
				t.Errorf("Parse(%q): %v", in.msg.Text, err)
			}
		}
	})
}
