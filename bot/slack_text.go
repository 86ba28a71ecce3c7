package bot

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// botIdentity is who the bot is in Slack, from auth.test.
type botIdentity struct {
	User    string // the bot user's ID (U…), as it appears in <@U…>
	Bot     string // the bot's ID (B…), as it appears in bot_id
	Team    string // the workspace's ID (T…)
	mention *regexp.Regexp
}

func newIdentity(user, bot, team string) botIdentity {
	return botIdentity{User: user, Bot: bot, Team: team,
		mention: regexp.MustCompile(`<@` + regexp.QuoteMeta(user) + `(\|[^<>]*)?>`)}
}

// inboundKind says what to do with an envelope.
type inboundKind int

const (
	inboundIgnore       inboundKind = iota // ack and drop
	inboundCommand                         // record, ack, handle
	inboundModal                           // open the dobro form, then ack (/dobro alone)
	inboundElsewhere                       // a mention outside the release channel: point there
	inboundGroupChanged                    // a user group's or the release channel's members changed: forget its cache
	inboundHomeOpened                      // a user opened the App Home tab: publish it (slack_home.go)
)

// inbound is what an envelope's payload means to the bot.
type inbound struct {
	kind   inboundKind
	msg    commands.Message
	reason string // why it is ignored, for the debug log
	group  string // inboundGroupChanged: the user group's or channel's ID
	user   string // inboundHomeOpened: who opened it
	// trigger is inboundModal's trigger_id, for views.open.
	trigger string
}

func skip(reason string) inbound { return inbound{kind: inboundIgnore, reason: reason} }

// eventCallback is the part of an Events API payload the bot reads. It is
// decoded here rather than through slackevents so that every field used for
// filtering and botIdentity is explicit.
type eventCallback struct {
	Type    string `json:"type"`
	TeamID  string `json:"team_id"`
	EventID string `json:"event_id"`
	Event   struct {
		Type        string          `json:"type"`
		Subtype     string          `json:"subtype"`
		User        string          `json:"user"`
		BotID       string          `json:"bot_id"`
		Team        string          `json:"team"`
		UserTeam    string          `json:"user_team"`
		Channel     string          `json:"channel"`
		ChannelType string          `json:"channel_type"`
		Text        string          `json:"text"`
		TS          string          `json:"ts"`
		ThreadTS    string          `json:"thread_ts"`
		Edited      json.RawMessage `json:"edited"`
		SubteamID   string          `json:"subteam_id"`
		Tab         string          `json:"tab"` // app_home_opened: home or messages
	} `json:"event"`
}

// parseEvent decides what an Events API payload means. Only two kinds of
// event are commands: app_mention outside DMs and message.im in DMs, so one
// message never counts twice. Everything from a bot, from the bot itself,
// from another team, every edit and every message with a subtype
// (message_changed, thread_broadcast, bot_message, …) is ignored. Identity
// is the event's user ID; display names are never read.
func parseEvent(payload []byte, self botIdentity, releaseChannel string) inbound {
	var cb eventCallback
	if err := json.Unmarshal(payload, &cb); err != nil {
		return skip("malformed events_api payload")
	}
	ev := cb.Event
	switch {
	case cb.Type != "event_callback":
		return skip("not an event_callback: " + cb.Type)
	case cb.TeamID != self.Team:
		return skip("event of another team " + cb.TeamID)
	case ev.Type == "subteam_members_changed":
		if ev.SubteamID == "" {
			return skip("subteam_members_changed without a subteam_id")
		}
		return inbound{kind: inboundGroupChanged, group: ev.SubteamID}
	case ev.Type == "member_joined_channel" || ev.Type == "member_left_channel":
		// The release channel's members may be the requesters: drop the
		// cached list (issue 12, item 10). Other channels are not cached.
		if ev.Channel == "" || ev.Channel != releaseChannel {
			return skip(ev.Type + " of another channel")
		}
		return inbound{kind: inboundGroupChanged, group: ev.Channel}
	case ev.Type == "app_home_opened":
		// Not a command: nothing is recorded, the home is published.
		if ev.Tab != "home" || ev.User == "" || ev.User == self.User {
			return skip("app_home_opened of the " + ev.Tab + " tab")
		}
		return inbound{kind: inboundHomeOpened, user: ev.User}
	case cb.EventID == "":
		return skip("event without an event_id")
	case ev.Type != "app_mention" && ev.Type != "message":
		return skip("event type " + ev.Type)
	case ev.Subtype != "":
		return skip("message subtype " + ev.Subtype)
	case ev.BotID != "":
		return skip("message from a bot")
	case ev.User == "":
		return skip("message without a user")
	case ev.User == self.User:
		return skip("the bot's own message")
	case ev.Team != "" && ev.Team != self.Team, ev.UserTeam != "" && ev.UserTeam != self.Team:
		return skip("message from a user of another team")
	case len(ev.Edited) > 0 && string(ev.Edited) != "null":
		return skip("an edited message")
	case ev.Channel == "":
		return skip("message without a channel")
	}
	dm := ev.ChannelType == "im" || strings.HasPrefix(ev.Channel, "D")
	m := commands.Message{
		EventID: cb.EventID,
		Team:    cb.TeamID,
		User:    ev.User,
		Channel: ev.Channel,
		Thread:  ev.ThreadTS,
		Text:    self.commandText(ev.Text),
		Time:    tsTime(ev.TS),
	}
	switch {
	case ev.Type == "message" && !dm:
		return skip("channel message that does not mention the bot")
	case ev.Type == "message":
		m.Via = commands.ViaDM
		return inbound{kind: inboundCommand, msg: m}
	case dm:
		// A mention in a DM also arrives as message.im, which counts.
		return skip("app_mention in a DM")
	case ev.Channel != releaseChannel:
		m.Via = commands.ViaMention
		return inbound{kind: inboundElsewhere, msg: m}
	}
	m.Via = commands.ViaMention
	return inbound{kind: inboundCommand, msg: m}
}

// buttonPrefix starts the action_id of every button the bot posts, so a
// click on anything else is never taken for a command.
const buttonPrefix = "dobrobot."

// blockActions is the part of an interactive payload the bot reads.
type blockActions struct {
	Type      string `json:"type"`
	TriggerID string `json:"trigger_id"`
	User      struct {
		ID     string `json:"id"`
		TeamID string `json:"team_id"`
	} `json:"user"`
	Team struct {
		ID string `json:"id"`
	} `json:"team"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
	Container struct {
		ChannelID string `json:"channel_id"`
		ThreadTS  string `json:"thread_ts"`
	} `json:"container"`
	Message struct {
		BotID string `json:"bot_id"`
	} `json:"message"`
	Actions []struct {
		Type     string `json:"type"`
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
		ActionTS string `json:"action_ts"`
	} `json:"actions"`
}

// parseAction decides what an interactive payload means: a click on one of
// the bot's buttons is the clicker typing the button's command. Slack makes
// a new trigger_id for every click and repeats it when it redelivers the same
// payload, so it keys the inbox; a second click is a second command, which
// the state machine answers ("already accepted").
func parseAction(payload []byte, self botIdentity) inbound {
	var p blockActions
	if err := json.Unmarshal(payload, &p); err != nil {
		return skip("malformed interactive payload")
	}
	switch {
	case p.Type != "block_actions":
		return skip("interaction type " + p.Type)
	case p.Team.ID != self.Team, p.User.TeamID != "" && p.User.TeamID != self.Team:
		return skip("click by a user of another team")
	case p.User.ID == "":
		return skip("click without a user")
	case p.User.ID == self.User:
		return skip("a click attributed to the bot itself")
	case len(p.Actions) != 1:
		return skip("interaction without exactly one action")
	case p.Message.BotID != "" && p.Message.BotID != self.Bot:
		return skip("click on another app's message")
	}
	a := p.Actions[0]
	if a.Type != "button" || !strings.HasPrefix(a.ActionID, buttonPrefix) || strings.TrimSpace(a.Value) == "" {
		return skip("action that is not one of the bot's buttons")
	}
	id := "button:" + p.TriggerID
	if p.TriggerID == "" {
		id = "button:" + p.User.ID + ":" + a.ActionTS
	}
	channel := p.Channel.ID
	if channel == "" {
		channel = p.Container.ChannelID
	}
	return inbound{kind: inboundCommand, msg: commands.Message{
		EventID: id,
		Team:    p.Team.ID,
		User:    p.User.ID,
		Channel: channel,
		Thread:  p.Container.ThreadTS,
		Text:    a.Value,
		Via:     commands.ViaButton,
		Time:    tsTime(a.ActionTS),
	}}
}

// zeroWidth are invisible characters Slack clients (and pasted text) leave in
// messages; they would make a ticket key not match.
var zeroWidth = strings.NewReplacer("\u200b", "", "\u200c", "", "\u200d", "", "\u2060", "", "\ufeff", "")

// commandText turns the text of a Slack message into the plain text of a
// command, which is what commands.Parse takes: it removes the bot's own
// mentions (<@BOT> and <@BOT|name>), drops zero-width characters, unescapes
// &lt; &gt; &amp; and turns the remaining markup into plain words
// (plainText).
func (id botIdentity) commandText(text string) string {
	if id.mention != nil {
		text = id.mention.ReplaceAllString(text, " ")
	}
	text = zeroWidth.Replace(text)
	text = unescape(text)
	// Markup can nest ("<<a>>"); unwrap until nothing changes, so that the
	// command's text parses back to itself.
	for range 8 {
		p := plainText(text)
		if p == text {
			break
		}
		text = p
	}
	return strings.TrimSpace(text)
}

var slackMarkup = regexp.MustCompile(`<([^<>\s][^<>]*)>`)

// plainText turns Slack markup in user text into plain words: <url|label>
// and <url> become url, <@U1> becomes @U1, <#C1|name> becomes #name, and
// <!here> becomes @here, so echoing the text can never ping or link anyone.
// A tracker link whose label is another ticket's key keeps both, so that
// the command is refused rather than acting on a ticket the reader did not
// see.
func plainText(s string) string {
	return slackMarkup.ReplaceAllStringFunc(s, func(m string) string {
		inner := m[1 : len(m)-1]
		target, label, hasLabel := strings.Cut(inner, "|")
		switch {
		case strings.HasPrefix(target, "@"):
			return target
		case strings.HasPrefix(target, "#"):
			if hasLabel && label != "" {
				return "#" + label
			}
			return target
		case strings.HasPrefix(target, "!"):
			name, _, _ := strings.Cut(target[1:], "^")
			if hasLabel && label != "" {
				return label
			}
			return "@" + name
		}
		if key, ok := commands.TicketKey(target); ok && hasLabel {
			if l, ok := commands.TicketKey(label); ok && l != key {
				return target + "|" + label // link and label disagree
			}
		}
		return target
	})
}

// tsTime turns a Slack ts ("1700000000.000100") into a time; zero if malformed.
func tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s <= 0 {
		return time.Time{}
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if n, err := strconv.ParseInt(frac, 10, 64); err == nil {
			ns = n
		}
	}
	return time.Unix(s, ns).UTC()
}
