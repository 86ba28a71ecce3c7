package fakeslack

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Event describes a message event for EventEnvelope. Zero fields get
// realistic defaults.
type Event struct {
	ID   string // event_id; "" makes a new one
	Team string // the envelope's team_id; "" means TeamID
	// UserTeam is the sender's team (the event's team and user_team fields);
	// "" means the same as Team. It differs for a user of another workspace
	// in a shared channel.
	UserTeam string
	Type     string // "app_mention" (default) or "message"
	Subtype  string // "", "bot_message", "message_changed", "thread_broadcast", …
	User     string
	BotID    string
	Channel  string
	// ChannelType is "channel", "group" or "im"; "" derives it from Channel
	// (D… is an im).
	ChannelType string
	Text        string
	TS          string // "" makes a new one
	ThreadTS    string
	// Edited marks the message as edited, as Slack does for an app_mention
	// raised by an edit.
	Edited bool
	// Username and Profile are the display fields a sender controls; they
	// must never be used to identify anyone.
	Username string
	Profile  map[string]string
}

// Mention returns an app_mention of the bot by user in channel; text is what
// follows the mention.
func Mention(user, channel, text string) Event {
	return Event{Type: "app_mention", User: user, Channel: channel, Text: "<@" + BotUser + "> " + text}
}

// DM returns a message.im event: user writes text to the bot.
func DM(user, text string) Event {
	return Event{Type: "message", User: user, Channel: DMChannel(user), ChannelType: "im", Text: text}
}

// EventEnvelope returns the events_api envelope Slack sends for e.
func (s *Server) EventEnvelope(e Event) Envelope {
	s.mu.Lock()
	if e.ID == "" {
		s.nextEvent++
		e.ID = fmt.Sprintf("Ev%08dFAKE", s.nextEvent)
	}
	if e.TS == "" {
		e.TS = s.nextTSLocked()
	}
	s.mu.Unlock()
	if e.Team == "" {
		e.Team = TeamID
	}
	if e.UserTeam == "" {
		e.UserTeam = e.Team
	}
	if e.Type == "" {
		e.Type = "app_mention"
	}
	if e.ChannelType == "" {
		switch {
		case strings.HasPrefix(e.Channel, "D"):
			e.ChannelType = "im"
		case strings.HasPrefix(e.Channel, "G"):
			e.ChannelType = "group"
		default:
			e.ChannelType = "channel"
		}
	}

	msg := map[string]any{
		"type": e.Type, "text": e.Text, "ts": e.TS, "channel": e.Channel, "event_ts": e.TS,
	}
	if e.Type == "message" {
		msg["channel_type"] = e.ChannelType
	}
	if e.User != "" {
		msg["user"] = e.User
		msg["team"] = e.UserTeam
		msg["user_team"] = e.UserTeam
		msg["source_team"] = e.UserTeam
		msg["client_msg_id"] = fmt.Sprintf("%08x-0000-4000-8000-000000000000", len(e.ID)+len(e.TS))
		msg["blocks"] = []any{map[string]any{"type": "rich_text", "block_id": "x", "elements": []any{}}}
	}
	if e.BotID != "" {
		msg["bot_id"] = e.BotID
		msg["bot_profile"] = map[string]any{"id": e.BotID, "name": "somebot", "team_id": e.UserTeam}
	}
	if e.Username != "" {
		msg["username"] = e.Username
	}
	if e.Profile != nil {
		msg["user_profile"] = e.Profile
	}
	if e.ThreadTS != "" {
		msg["thread_ts"] = e.ThreadTS
	}
	if e.Edited {
		msg["edited"] = map[string]any{"user": e.User, "ts": e.TS}
	}

	event := msg
	if e.Subtype != "" {
		event["subtype"] = e.Subtype
	}
	if e.Subtype == "message_changed" {
		// An edit arrives as a hidden message whose sender and new text are
		// nested, not at the top level.
		inner := map[string]any{"type": "message", "user": e.User, "text": e.Text, "ts": e.TS,
			"team": e.UserTeam, "edited": map[string]any{"user": e.User, "ts": e.TS}}
		event = map[string]any{
			"type": "message", "subtype": "message_changed", "hidden": true, "channel": e.Channel,
			"channel_type": e.ChannelType, "ts": e.TS, "event_ts": e.TS, "message": inner,
			"previous_message": map[string]any{"type": "message", "user": e.User, "text": "before the edit", "ts": e.TS},
		}
	}

	payload := map[string]any{
		"token": "fake-verification-token", "team_id": e.Team, "context_team_id": e.Team,
		"api_app_id": AppID, "event": event, "type": "event_callback", "event_id": e.ID,
		"event_time": time.Now().Unix(), "is_ext_shared_channel": e.UserTeam != e.Team,
		"event_context": "4-fake-context",
		"authorizations": []any{map[string]any{"enterprise_id": nil, "team_id": e.Team, "user_id": BotUser,
			"is_bot": true, "is_enterprise_install": false}},
	}
	return Envelope{Type: "events_api", Payload: mustJSON(payload)}
}

// GroupChangedEnvelope returns the subteam_members_changed envelope Slack
// sends when users join or leave user group id.
func (s *Server) GroupChangedEnvelope(id string, added, removed []string) Envelope {
	s.mu.Lock()
	s.nextEvent++
	eventID := fmt.Sprintf("Ev%08dFAKE", s.nextEvent)
	ts := s.nextTSLocked()
	s.mu.Unlock()
	event := map[string]any{"type": "subteam_members_changed", "subteam_id": id, "team_id": TeamID,
		"date_previous_update": time.Now().Unix() - 60, "date_update": time.Now().Unix(),
		"added_users": added, "added_users_count": fmt.Sprint(len(added)),
		"removed_users": removed, "removed_users_count": fmt.Sprint(len(removed)), "event_ts": ts}
	payload := map[string]any{"token": "fake-verification-token", "team_id": TeamID, "api_app_id": AppID,
		"event": event, "type": "event_callback", "event_id": eventID, "event_time": time.Now().Unix()}
	return Envelope{Type: "events_api", Payload: mustJSON(payload)}
}

// MemberEnvelope returns the member_joined_channel (joined) or
// member_left_channel envelope Slack sends when user joins or leaves
// channel.
func (s *Server) MemberEnvelope(user, channel string, joined bool) Envelope {
	s.mu.Lock()
	s.nextEvent++
	eventID := fmt.Sprintf("Ev%08dFAKE", s.nextEvent)
	ts := s.nextTSLocked()
	s.mu.Unlock()
	typ := "member_left_channel"
	if joined {
		typ = "member_joined_channel"
	}
	event := map[string]any{"type": typ, "user": user, "channel": channel, "channel_type": "C", "team": TeamID, "event_ts": ts}
	payload := map[string]any{"token": "fake-verification-token", "team_id": TeamID, "api_app_id": AppID,
		"event": event, "type": "event_callback", "event_id": eventID, "event_time": time.Now().Unix()}
	return Envelope{Type: "events_api", Payload: mustJSON(payload)}
}

// Deliver sends the events_api envelope of e and returns it.
func (s *Server) Deliver(e Event) (Envelope, error) { return s.Send(s.EventEnvelope(e)) }

// Click describes a click on a button, for ClickEnvelope.
type Click struct {
	User      string
	Team      string // "" means TeamID
	Channel   string // where the button's message is
	MessageTS string
	ActionID  string
	BlockID   string
	Value     string
	TriggerID string // "" makes a new one; Slack makes one per click
	ActionTS  string // "" makes a new one
	// Username and Name are display fields; they must never be used to
	// identify anyone.
	Username, Name string
}

// ClickOn returns the click of user on button b.
func ClickOn(user string, b Button) Click {
	return Click{User: user, Channel: b.Channel, MessageTS: b.MessageTS, ActionID: b.ActionID,
		BlockID: b.BlockID, Value: b.Value}
}

// ClickEnvelope returns the interactive block_actions envelope Slack sends
// for c.
func (s *Server) ClickEnvelope(c Click) Envelope {
	s.mu.Lock()
	if c.TriggerID == "" {
		c.TriggerID = s.newTriggerLocked(c.User) // good for views.open for 3 s
	}
	if c.ActionTS == "" {
		c.ActionTS = s.nextTSLocked()
	}
	s.mu.Unlock()
	if c.Team == "" {
		c.Team = TeamID
	}
	if c.Username == "" {
		c.Username = strings.ToLower(c.User)
	}
	if c.Name == "" {
		c.Name = c.Username
	}
	payload := map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": c.User, "username": c.Username, "name": c.Name, "team_id": c.Team},
		"api_app_id": AppID, "token": "fake-verification-token",
		"container": map[string]any{"type": "message", "message_ts": c.MessageTS, "channel_id": c.Channel,
			"is_ephemeral": false},
		"trigger_id":            c.TriggerID,
		"team":                  map[string]any{"id": c.Team, "domain": "fake"},
		"enterprise":            nil,
		"is_enterprise_install": false,
		"channel":               map[string]any{"id": c.Channel, "name": "directmessage"},
		"message": map[string]any{"type": "message", "user": BotUser, "bot_id": BotID, "ts": c.MessageTS,
			"text": "a message with buttons"},
		"state":        map[string]any{"values": map[string]any{}},
		"response_url": "https://hooks.fake.slack.com/actions/T0/1/x",
		"actions": []any{map[string]any{"action_id": c.ActionID, "block_id": c.BlockID,
			"text":  map[string]any{"type": "plain_text", "text": "button", "emoji": true},
			"value": c.Value, "type": "button", "action_ts": c.ActionTS}},
	}
	return Envelope{Type: "interactive", Payload: mustJSON(payload), AcceptsResponsePayload: false}
}

// SendClick sends the interactive envelope of c and returns it.
func (s *Server) SendClick(c Click) (Envelope, error) { return s.Send(s.ClickEnvelope(c)) }

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakeslack: encoding %T: %v", v, err))
	}
	return b
}
