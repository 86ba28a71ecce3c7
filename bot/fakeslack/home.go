package fakeslack

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The App Home: Slack sends app_home_opened when a user opens the app's
// Home tab (and the Messages tab, with tab "messages"), and a click on a
// button of a published home view is a block_actions whose container is
// the view, with no channel and no message.

// AppHomeOpenedEnvelope returns the events_api envelope Slack sends when
// user opens the app's tab ("home" or "messages"; "" means "home").
func (s *Server) AppHomeOpenedEnvelope(user, tab string) Envelope {
	if tab == "" {
		tab = "home"
	}
	s.mu.Lock()
	s.nextEvent++
	eventID := fmt.Sprintf("Ev%08dFAKE", s.nextEvent)
	ts := s.nextTSLocked()
	event := map[string]any{"type": "app_home_opened", "user": user, "channel": DMChannel(user), "tab": tab, "event_ts": ts}
	if v, ok := s.homes[user]; ok && tab == "home" {
		// Slack sends the view last published, if any.
		var obj map[string]any
		_ = json.Unmarshal(v.JSON, &obj)
		obj["id"], obj["team_id"], obj["app_id"], obj["bot_id"] = v.ID, TeamID, AppID, BotID
		event["view"] = obj
	}
	s.mu.Unlock()
	payload := map[string]any{"token": "fake-verification-token", "team_id": TeamID, "api_app_id": AppID,
		"event": event, "type": "event_callback", "event_id": eventID, "event_time": 1700000000,
		"authorizations": []any{map[string]any{"enterprise_id": nil, "team_id": TeamID, "user_id": BotUser,
			"is_bot": true, "is_enterprise_install": false}}}
	return Envelope{Type: "events_api", Payload: mustJSON(payload)}
}

// Buttons returns the buttons in the view's actions blocks; their Channel
// and MessageTS are empty (a view is not a message).
func (v View) Buttons() []Button {
	// Each block is read on its own: a home has context blocks, whose
	// elements are text objects, not buttons.
	var obj struct {
		Blocks []json.RawMessage `json:"blocks"`
	}
	if json.Unmarshal(v.JSON, &obj) != nil {
		return nil
	}
	var actions []json.RawMessage
	for _, b := range obj.Blocks {
		var head struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(b, &head) == nil && head.Type == "actions" {
			actions = append(actions, b)
		}
	}
	blocks, _ := json.Marshal(actions)
	return Message{Blocks: blocks}.Buttons()
}

// HomeClickEnvelope returns the block_actions envelope Slack sends when
// user clicks button b of their published App Home: the container is the
// home view, and there is neither a channel nor a message.
func (s *Server) HomeClickEnvelope(user string, b Button) Envelope {
	s.mu.Lock()
	trig := s.newTriggerLocked(user)
	ts := s.nextTSLocked()
	view := map[string]any{"type": "home", "team_id": TeamID, "app_id": AppID, "bot_id": BotID}
	if v, ok := s.homes[user]; ok {
		var obj map[string]any
		_ = json.Unmarshal(v.JSON, &obj)
		for k, x := range obj {
			view[k] = x
		}
		view["id"] = v.ID
	}
	s.mu.Unlock()
	viewID, _ := view["id"].(string)
	payload := map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": user, "username": strings.ToLower(user), "name": strings.ToLower(user), "team_id": TeamID},
		"api_app_id": AppID, "token": "fake-verification-token",
		"container":  map[string]any{"type": "view", "view_id": viewID},
		"trigger_id": trig, "team": map[string]any{"id": TeamID, "domain": "fake"},
		"enterprise": nil, "is_enterprise_install": false,
		"view": view,
		"actions": []any{map[string]any{"action_id": b.ActionID, "block_id": b.BlockID,
			"text":  map[string]any{"type": "plain_text", "text": b.Label, "emoji": true},
			"value": b.Value, "type": "button", "action_ts": ts}},
	}
	return Envelope{Type: "interactive", Payload: mustJSON(payload)}
}
