package bot

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
)

var testMe = newIdentity(fakeslack.BotUser, fakeslack.BotID, fakeslack.TeamID)

const releaseChannel = "C0RELEASE"

func TestCommandText(t *testing.T) {
	bot := "<@" + fakeslack.BotUser + ">"
	tests := []struct{ in, want string }{
		{bot + " dobro PAY-1", "dobro PAY-1"},
		{bot + "\u00a0dobro PAY-1", "dobro PAY-1"},
		{"<@" + fakeslack.BotUser + "|dobrobot> queue", "queue"},
		{"dobro PAY-1 " + bot, "dobro PAY-1"},
		{bot + " reject PAY-1 ask <@U02ANN> first", "reject PAY-1 ask @U02ANN first"},
		{bot + " dobro <https://x.atlassian.net/browse/PAY-1|PAY-1>", "dobro https://x.atlassian.net/browse/PAY-1"},
		{bot + " dobro PAY-1 R&amp;D &lt;fast&gt;", "dobro PAY-1 R&D fast"},
		{bot + " dobro PAY-1 &amp;lt; stays", "dobro PAY-1 &lt; stays"},
		{bot + " dobro PAY\u200b-1", "dobro PAY-1"},
		{"&lt;@" + fakeslack.BotUser + "&gt; typed", "@" + fakeslack.BotUser + " typed"},
		{"<@U0OTHER> dobro PAY-1", "@U0OTHER dobro PAY-1"},
		{bot, ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := testMe.commandText(tt.in); got != tt.want {
			t.Errorf("commandText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzCommandText(f *testing.F) {
	for _, s := range []string{
		"<@" + fakeslack.BotUser + "> dobro PAY-1", "<@" + fakeslack.BotUser + "|x> <!here> <#C1|general>",
		"<https://x/browse/PAY-1|PAY-1>", "&amp;&lt;&gt;", "<<@" + fakeslack.BotUser + ">>", "\u200b\ufeff",
		"<!subteam^S01|@qa> accept PAY-1", ":tada: dobro pay-1 :rocket:",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := testMe.commandText(in)
		if utf8.ValidString(in) && !utf8.ValidString(out) {
			t.Errorf("commandText(%q) = %q: invalid UTF-8", in, out)
		}
		// Every mention of the bot Slack sent is removed; one can only
		// appear from text the user typed (which Slack escaped).
		if !strings.Contains(in, "&lt;") && !strings.Contains(in, "&gt;") && testMe.mention.MatchString(out) {
			t.Errorf("commandText(%q) = %q still mentions the bot", in, out)
		}
		if strings.ContainsAny(out, "\u200b\ufeff") {
			t.Errorf("commandText(%q) = %q keeps zero-width characters", in, out)
		}
		// Parse takes plain text: what commandText gives it holds no
		// markup left to unwrap.
		if p := plainText(out); p != out && utf8.ValidString(in) {
			t.Errorf("commandText(%q) = %q still holds markup (%q)", in, out, p)
		}
		_, _ = commands.Parse(out) // must not panic
	})
}

// payload builds an events_api payload the way fakeslack (Slack) does.
func payload(t *testing.T, e fakeslack.Event) []byte {
	t.Helper()
	return fakeslack.New(t).EventEnvelope(e).Payload
}

func TestParseEvent(t *testing.T) {
	bot := "<@" + fakeslack.BotUser + "> "
	tests := []struct {
		name string
		ev   fakeslack.Event
		kind inboundKind
		via  commands.Via
		text string
	}{
		{"mention in the release channel", fakeslack.Event{ID: "Ev1", User: "U01", Channel: releaseChannel, Text: bot + "dobro PAY-1"}, inboundCommand, commands.ViaMention, "dobro PAY-1"},
		{"mention in a thread", fakeslack.Event{ID: "Ev1", User: "U01", Channel: releaseChannel, Text: bot + "queue", ThreadTS: "1.2"}, inboundCommand, commands.ViaMention, "queue"},
		{"mention in another channel", fakeslack.Event{ID: "Ev1", User: "U01", Channel: "C0OTHER", Text: bot + "dobro PAY-1"}, inboundElsewhere, commands.ViaMention, "dobro PAY-1"},
		{"DM", fakeslack.Event{ID: "Ev1", Type: "message", User: "U01", Channel: "D01", Text: "dobro PAY-1"}, inboundCommand, commands.ViaDM, "dobro PAY-1"},
		{"DM with a mention", fakeslack.Event{ID: "Ev1", Type: "message", User: "U01", Channel: "D01", Text: bot + "queue"}, inboundCommand, commands.ViaDM, "queue"},
		{"app_mention copy of a DM", fakeslack.Event{ID: "Ev1", User: "U01", Channel: "D01", Text: bot + "queue"}, inboundIgnore, "", ""},
		{"channel message without a mention", fakeslack.Event{ID: "Ev1", Type: "message", User: "U01", Channel: releaseChannel, Text: "dobro PAY-1"}, inboundIgnore, "", ""},
		{"bot message", fakeslack.Event{ID: "Ev1", Type: "message", Subtype: "bot_message", BotID: "B9", Channel: "D01", Text: "dobro PAY-1"}, inboundIgnore, "", ""},
		{"message by a bot user", fakeslack.Event{ID: "Ev1", User: "U09BOTUSER", BotID: "B9", Channel: releaseChannel, Text: bot + "dobro PAY-1"}, inboundIgnore, "", ""},
		{"own message", fakeslack.Event{ID: "Ev1", Type: "message", User: fakeslack.BotUser, Channel: "D01", Text: "dobro PAY-1"}, inboundIgnore, "", ""},
		{"edit", fakeslack.Event{ID: "Ev1", Type: "message", Subtype: "message_changed", User: "U01", Channel: "D01", Text: "dobro PAY-1"}, inboundIgnore, "", ""},
		{"mention raised by an edit", fakeslack.Event{ID: "Ev1", User: "U01", Channel: releaseChannel, Text: bot + "dobro PAY-1", Edited: true}, inboundIgnore, "", ""},
		{"thread broadcast", fakeslack.Event{ID: "Ev1", Subtype: "thread_broadcast", User: "U01", Channel: releaseChannel, Text: bot + "dobro PAY-1", ThreadTS: "1.2"}, inboundIgnore, "", ""},
		{"another team", fakeslack.Event{ID: "Ev1", Team: "T0OTHER", User: "U01", Channel: releaseChannel, Text: bot + "dobro PAY-1"}, inboundIgnore, "", ""},
		{"user of another team in a shared channel", fakeslack.Event{ID: "Ev1", UserTeam: "T0OTHER", User: "U01", Channel: releaseChannel, Text: bot + "dobro PAY-1"}, inboundIgnore, "", ""},
		{"file share", fakeslack.Event{ID: "Ev1", Type: "message", Subtype: "file_share", User: "U01", Channel: "D01", Text: "dobro PAY-1"}, inboundIgnore, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := parseEvent(payload(t, tt.ev), testMe, releaseChannel)
			if in.kind != tt.kind {
				t.Fatalf("kind: got %d (%s), want %d", in.kind, in.reason, tt.kind)
			}
			if in.kind == inboundIgnore {
				if in.reason == "" {
					t.Error("an ignored event needs a reason for the log")
				}
				return
			}
			want := commands.Message{EventID: "Ev1", Team: fakeslack.TeamID, User: "U01", Channel: tt.ev.Channel,
				Thread: tt.ev.ThreadTS, Text: tt.text, Via: tt.via, Time: in.msg.Time}
			if diff := cmp.Diff(want, in.msg); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
			if in.msg.Time.IsZero() {
				t.Error("message time not set from ts")
			}
		})
	}
}

func TestParseEventIdentityIsTheUserID(t *testing.T) {
	// Display fields claiming to be the approver change nothing.
	e := fakeslack.Event{ID: "Ev1", User: "U0ATTACKER", Channel: releaseChannel, Text: "<@" + fakeslack.BotUser + "> accept PAY-1",
		Username: "approver", Profile: map[string]string{"display_name": "U01APPROVER", "real_name": "Ann Approver", "name": "ann"}}
	in := parseEvent(payload(t, e), testMe, releaseChannel)
	if in.kind != inboundCommand || in.msg.User != "U0ATTACKER" {
		t.Errorf("got kind %d, user %q; want the command of U0ATTACKER", in.kind, in.msg.User)
	}
}

func TestParseEventMalformed(t *testing.T) {
	for _, p := range []string{``, `null`, `[]`, `{"type":"event_callback"}`, `{"type":"url_verification"}`,
		`{"type":"event_callback","team_id":"` + fakeslack.TeamID + `","event":{"type":"app_mention","user":"U1","channel":"C1"}}`} {
		if in := parseEvent([]byte(p), testMe, releaseChannel); in.kind != inboundIgnore {
			t.Errorf("parseEvent(%s): kind %d, want ignored", p, in.kind)
		}
	}
	changed := `{"type":"event_callback","team_id":"` + fakeslack.TeamID + `","event_id":"Ev9","event":{"type":"subteam_members_changed","subteam_id":"S01QA"}}`
	if in := parseEvent([]byte(changed), testMe, releaseChannel); in.kind != inboundGroupChanged || in.group != "S01QA" {
		t.Errorf("subteam_members_changed: got %+v", in)
	}
	for _, typ := range []string{"member_joined_channel", "member_left_channel"} {
		for channel, want := range map[string]inboundKind{releaseChannel: inboundGroupChanged, "C0OTHER": inboundIgnore, "": inboundIgnore} {
			ev := `{"type":"event_callback","team_id":"` + fakeslack.TeamID + `","event_id":"Ev9","event":{"type":"` + typ + `","user":"U1","channel":"` + channel + `"}}`
			in := parseEvent([]byte(ev), testMe, releaseChannel)
			if in.kind != want || (want == inboundGroupChanged && in.group != releaseChannel) {
				t.Errorf("%s in %q: got %+v, want kind %d", typ, channel, in, want)
			}
		}
	}
}

func FuzzParseEvent(f *testing.F) {
	s := fakeslack.New(f)
	for _, e := range []fakeslack.Event{
		fakeslack.Mention("U01", releaseChannel, "dobro PAY-1"), fakeslack.DM("U01", "queue"),
		{Type: "message", Subtype: "message_changed", User: "U01", Channel: "D01", Text: "x"},
	} {
		f.Add(string(s.EventEnvelope(e).Payload))
	}
	f.Fuzz(func(t *testing.T, p string) {
		in := parseEvent([]byte(p), testMe, releaseChannel)
		if in.kind == inboundCommand || in.kind == inboundElsewhere {
			if in.msg.EventID == "" || in.msg.User == "" || in.msg.User == testMe.User || in.msg.Team != testMe.Team {
				t.Errorf("accepted %s as %+v", p, in.msg)
			}
		}
	})
}

func TestParseAction(t *testing.T) {
	s := fakeslack.New(t)
	click := fakeslack.Click{User: "U01", Channel: "D01", MessageTS: "1.000100", ActionID: "dobrobot.0",
		Value: "accept PAY-1", TriggerID: "111.222.abc", ActionTS: "1700000000.000200"}
	in := parseAction(s.ClickEnvelope(click).Payload, testMe)
	want := commands.Message{EventID: "button:111.222.abc", Team: fakeslack.TeamID, User: "U01", Channel: "D01",
		Text: "accept PAY-1", Via: commands.ViaButton, Time: time.Unix(1700000000, 200_000).UTC()}
	if diff := cmp.Diff(want, in.msg); in.kind != inboundCommand || diff != "" {
		t.Errorf("kind %d (%s); message (-want +got):\n%s", in.kind, in.reason, diff)
	}

	// A redelivered payload repeats the trigger_id; a second click has its own.
	again := parseAction(s.ClickEnvelope(click).Payload, testMe)
	click.TriggerID, click.ActionTS = "", ""
	second := parseAction(s.ClickEnvelope(click).Payload, testMe)
	if again.msg.EventID != in.msg.EventID || second.msg.EventID == in.msg.EventID {
		t.Errorf("event ids: first %q, redelivered %q, second click %q", in.msg.EventID, again.msg.EventID, second.msg.EventID)
	}

	ignored := []struct {
		name string
		c    fakeslack.Click
	}{
		{"another team", fakeslack.Click{User: "U01", Team: "T0OTHER", Channel: "D01", ActionID: "dobrobot.0", Value: "accept PAY-1"}},
		{"not our button", fakeslack.Click{User: "U01", Channel: "D01", ActionID: "other.0", Value: "accept PAY-1"}},
		{"no value", fakeslack.Click{User: "U01", Channel: "D01", ActionID: "dobrobot.0"}},
		{"no user", fakeslack.Click{Channel: "D01", ActionID: "dobrobot.0", Value: "accept PAY-1"}},
	}
	for _, tt := range ignored {
		if in := parseAction(s.ClickEnvelope(tt.c).Payload, testMe); in.kind != inboundIgnore {
			t.Errorf("%s: kind %d, want ignored", tt.name, in.kind)
		}
	}
	var other map[string]any
	_ = json.Unmarshal(s.ClickEnvelope(click).Payload, &other)
	other["message"].(map[string]any)["bot_id"] = "B0SOMEONEELSE"
	b, _ := json.Marshal(other)
	if in := parseAction(b, testMe); in.kind != inboundIgnore {
		t.Errorf("a click on another app's message: kind %d, want ignored", in.kind)
	}
	if in := parseAction([]byte(`{"type":"view_submission"}`), testMe); in.kind != inboundIgnore {
		t.Errorf("view_submission: kind %d, want ignored", in.kind)
	}
}

func TestTSTime(t *testing.T) {
	tests := []struct {
		ts   string
		want time.Time
	}{
		{"1700000000.000100", time.Unix(1700000000, 100_000).UTC()},
		{"1700000000", time.Unix(1700000000, 0).UTC()},
		{"", time.Time{}},
		{"x.1", time.Time{}},
	}
	for _, tt := range tests {
		if got := tsTime(tt.ts); !got.Equal(tt.want) {
			t.Errorf("tsTime(%q) = %v, want %v", tt.ts, got, tt.want)
		}
	}
}

func TestPlainText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"see <https://x.example/a|the run>", "see https://x.example/a"},
		{"<@U123> and <@U9|ann>", "@U123 and @U9"},
		{"<#C1|releases>", "#releases"},
		{"<!here> <!channel> <!subteam^S1|@qa>", "@here @channel @qa"},
		{"a < b > c", "a < b > c"},
		{"<https://x/browse/PAY-1|PAY-2>", "https://x/browse/PAY-1|PAY-2"},
	}
	for _, tt := range tests {
		if got := plainText(tt.in); got != tt.want {
			t.Errorf("plainText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCommandTextParses: what Slack sends parses, through commandText, to
// the command its reader sees: markup is plain words (moved here from the
// core's TestParse with the unwrapping).
func TestCommandTextParses(t *testing.T) {
	tests := []struct {
		in   string
		want commands.Command
	}{
		{"dobro <https://x.atlassian.net/browse/PAY-7|PAY-7>", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-7"}},
		{"dobro <https://x.atlassian.net/browse/PAY-7>", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-7"}},
		{"dobro PAY-1 see <https://ci.example.com/run/9|run 9> please", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Text: "see https://ci.example.com/run/9 please"}},
		{"dobro PAY-1 ping <!channel> and <@U123>", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Text: "ping @channel and @U123"}},
		{"dobro PAY-1 <<!here>> &lt;&lt;@U1&gt;&gt;", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Text: "@here @U1"}},
	}
	for _, tt := range tests {
		got, err := commands.Parse(testMe.commandText(tt.in))
		if err != nil {
			t.Errorf("Parse(commandText(%q)): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(commandText(%q)) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// TestCommandTextTicketLinks: Slack's link markup around a ticket is
// unwrapped before commands.Parse, which takes plain text only; a link whose
// label names another ticket is refused, not acted on.
func TestCommandTextTicketLinks(t *testing.T) {
	tests := []struct {
		in, ticket string // ticket "" means refused
	}{
		{"dobro <https://x/browse/PAY-1|PAY-1>", "PAY-1"},
		{"dobro <https://x/browse/PAY-1|pay-1>", "PAY-1"},
		{"dobro <https://x/browse/PAY-1>", "PAY-1"},
		{"dobro <https://x/browse/PAY-1;rm|PAY-1>", ""},
		{"dobro <https://evil.example/browse/PAY-1|PAY-2>", ""},
		{"<@" + fakeslack.BotUser + "> status &lt;https://x/browse/PAY-3|PAY-3&gt;", "PAY-3"},
	}
	for _, tt := range tests {
		c, err := commands.Parse(testMe.commandText(tt.in))
		if tt.ticket == "" {
			if commands.ErrorCode(err) != commands.EINVALID || !strings.Contains(err.Error(), "is not a ticket key") {
				t.Errorf("Parse(commandText(%q)) = %+v, %v; want refused as no ticket key", tt.in, c, err)
			}
			continue
		}
		if err != nil || c.Ticket != tt.ticket {
			t.Errorf("Parse(commandText(%q)) = %+v, %v; want ticket %s", tt.in, c, err, tt.ticket)
		}
	}
}
