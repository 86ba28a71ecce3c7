package fakeslack

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TriggerWindow is how long after Slack issues a trigger_id (with a slash
// command or a click) the app may use it to open a modal, and how long
// Slack waits for the ack of a slash command or an interaction.
const TriggerWindow = 3 * time.Second

// SetClock sets the clock the fake judges its 3 s windows by (trigger
// expiry, late acks); time.Now unless set. Tests move it instead of
// sleeping.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = now
}

// Advance moves the fake's clock forward by d.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

func (s *Server) nowLocked() time.Time { return s.clock().Add(s.offset) }

// trigger is a trigger_id Slack issued.
type trigger struct {
	user      string
	at        time.Time
	exchanged bool // used to open a view already
}

// sentEnv is what the fake remembers of an envelope it sent, to judge its ack.
type sentEnv struct {
	typ  string    // events_api, interactive, slash_commands
	kind string    // an interactive payload's type: block_actions, view_submission, block_suggestion
	at   time.Time // by the fake's clock
}

// interactionType returns the type of an interactive envelope's payload.
func interactionType(env Envelope) string {
	if env.Type != "interactive" {
		return ""
	}
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(env.Payload, &p)
	return p.Type
}

// newTriggerLocked issues a trigger_id to user, now.
func (s *Server) newTriggerLocked(user string) string {
	s.nextTrig++
	id := fmt.Sprintf("%d.%d.fake%08x", 1000+s.nextTrig, s.tsSec, s.nextTrig)
	s.triggers[id] = &trigger{user: user, at: s.nowLocked()}
	return id
}

// checkAckLocked checks an ack's payload as Slack reads it for the
// envelope it acknowledges, recording what Slack would refuse, and reports
// whether the ack came after Slack's 3 s window.
func (s *Server) checkAckLocked(envelopeID string, payload json.RawMessage) bool {
	sent, known := s.sentAt[envelopeID]
	if !known {
		return false
	}
	late := (sent.typ == "slash_commands" || sent.typ == "interactive") && s.nowLocked().Sub(sent.at) > TriggerWindow
	if len(payload) == 0 || string(payload) == "null" {
		if sent.kind == "block_suggestion" {
			// Slack shows "no options" for a suggestion acked without any.
			s.errs = append(s.errs, fmt.Sprintf("the block_suggestion envelope %s was acked without options", envelopeID))
		}
		return late
	}
	var problem string
	switch {
	case sent.typ == "slash_commands":
		problem = checkSlashResponse(payload)
	case sent.kind == "view_submission":
		problem = checkViewSubmissionResponse(payload)
	case sent.kind == "block_suggestion":
		problem = checkOptions(payload)
	default:
		problem = "Slack takes no payload in the ack of a " + sent.typ + " envelope " + sent.kind
	}
	if problem != "" {
		s.errs = append(s.errs, fmt.Sprintf("the ack of envelope %s (%s %s): %s: %s", envelopeID, sent.typ, sent.kind, problem, payload))
	}
	return late
}

// checkSlashResponse checks a slash command's ack payload: a message with
// text or blocks, ephemeral (the default) or in_channel.
func checkSlashResponse(payload json.RawMessage) string {
	var r struct {
		Text         string          `json:"text"`
		Blocks       json.RawMessage `json:"blocks"`
		ResponseType string          `json:"response_type"`
	}
	if err := json.Unmarshal(payload, &r); err != nil {
		return "not a message object"
	}
	if r.ResponseType != "" && r.ResponseType != "ephemeral" && r.ResponseType != "in_channel" {
		return "response_type must be ephemeral or in_channel"
	}
	if r.Text == "" && len(r.Blocks) == 0 {
		return "a response without text or blocks"
	}
	return ""
}

// checkViewSubmissionResponse checks a view_submission's ack payload.
func checkViewSubmissionResponse(payload json.RawMessage) string {
	var r struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
		View           json.RawMessage   `json:"view"`
	}
	if err := json.Unmarshal(payload, &r); err != nil {
		return "not a response_action object"
	}
	switch r.ResponseAction {
	case "errors":
		if len(r.Errors) == 0 {
			return "response_action errors without errors"
		}
		for block, msg := range r.Errors {
			if block == "" || msg == "" {
				return "an error without a block_id or a message"
			}
		}
	case "update", "push":
		if len(r.View) == 0 {
			return "response_action " + r.ResponseAction + " without a view"
		}
	case "clear":
	default:
		return fmt.Sprintf("unknown response_action %q", r.ResponseAction)
	}
	return ""
}

// checkOptions checks a block_suggestion's ack payload: options (or
// option_groups), at most 100, each with plain_text text and a value.
func checkOptions(payload json.RawMessage) string {
	type option struct {
		Text struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"text"`
		Value string `json:"value"`
	}
	var r struct {
		Options      *[]option `json:"options"`
		OptionGroups *[]struct {
			Options []option `json:"options"`
		} `json:"option_groups"`
	}
	if err := json.Unmarshal(payload, &r); err != nil {
		return "not an options object"
	}
	var all []option
	switch {
	case r.Options != nil:
		all = *r.Options
	case r.OptionGroups != nil:
		for _, g := range *r.OptionGroups {
			all = append(all, g.Options...)
		}
	default:
		return "neither options nor option_groups"
	}
	if len(all) > 100 {
		return fmt.Sprintf("%d options (Slack takes at most 100)", len(all))
	}
	for _, o := range all {
		if o.Text.Type != "plain_text" || o.Text.Text == "" || o.Value == "" {
			return "an option without plain_text text or a value"
		}
	}
	return ""
}

// AckPayload waits up to timeout for the ack of envelopeID and decodes its
// payload into v (a slash command's response, a view_submission's
// response_action, a block_suggestion's options). It returns the ack; the
// error says when there was none, or no payload.
func (s *Server) AckPayload(envelopeID string, timeout time.Duration, v any) (Ack, error) {
	a, err := s.WaitAck(envelopeID, timeout)
	if err != nil {
		return a, err
	}
	if len(a.Payload) == 0 || string(a.Payload) == "null" {
		return a, fmt.Errorf("fakeslack: envelope %s was acked without a payload", envelopeID)
	}
	if err := json.Unmarshal(a.Payload, v); err != nil {
		return a, fmt.Errorf("fakeslack: the ack payload of %s: %w", envelopeID, err)
	}
	return a, nil
}

// Slash describes a slash command for SlashEnvelope. Zero fields get
// realistic defaults.
type Slash struct {
	User      string
	Team      string // "" means TeamID
	Channel   string // where it was typed: C…, G… or D…
	Command   string // "" means /dobro
	Text      string // what follows the command
	TriggerID string // "" issues a new one, valid for 3 s
}

// SlashEnvelope returns the slash_commands envelope Slack sends for c. It
// must be acked within 3 s, optionally with a response payload (shown to
// the user only unless response_type is in_channel).
func (s *Server) SlashEnvelope(c Slash) Envelope {
	s.mu.Lock()
	if c.TriggerID == "" {
		c.TriggerID = s.newTriggerLocked(c.User)
	}
	s.mu.Unlock()
	if c.Team == "" {
		c.Team = TeamID
	}
	if c.Command == "" {
		c.Command = "/dobro"
	}
	name := "releases"
	switch {
	case strings.HasPrefix(c.Channel, "D"):
		name = "directmessage"
	case strings.HasPrefix(c.Channel, "G"):
		name = "privategroup"
	}
	payload := map[string]any{
		"token": "fake-verification-token", "team_id": c.Team, "team_domain": "fake",
		"channel_id": c.Channel, "channel_name": name, "user_id": c.User, "user_name": strings.ToLower(c.User),
		"command": c.Command, "text": c.Text, "api_app_id": AppID, "is_enterprise_install": false,
		"response_url": "https://hooks.fake.slack.com/commands/" + c.Team + "/1/x", "trigger_id": c.TriggerID,
	}
	return Envelope{Type: "slash_commands", Payload: mustJSON(payload), AcceptsResponsePayload: true}
}

// SendSlash sends the slash_commands envelope of c and returns it.
func (s *Server) SendSlash(c Slash) (Envelope, error) { return s.Send(s.SlashEnvelope(c)) }

// View is a view the app opened (views.open) or published (views.publish).
type View struct {
	ID              string
	Type            string // modal or home
	User            string // whose it is: the trigger's user, or views.publish's user_id
	TriggerID       string // views.open's
	CallbackID      string
	PrivateMetadata string
	JSON            json.RawMessage // as the app sent it
}

// Publish is one views.publish call the fake answered.
type Publish struct {
	User string
	Time time.Time // by the fake's clock
	View View
}

// Views returns the modals opened with views.open, in order.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]View, 0, len(s.views))
	for _, v := range s.views {
		out = append(out, *v)
	}
	return out
}

// Home returns the App Home last published for user, and whether there is one.
func (s *Server) Home(user string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.homes[user]
	if !ok {
		return View{}, false
	}
	return *v, true
}

// Publishes returns the views.publish calls answered, for user (every user
// if ""), in order.
func (s *Server) Publishes(user string) []Publish {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Publish
	for _, p := range s.publish {
		if user == "" || p.User == user {
			out = append(out, p)
		}
	}
	return out
}

// parseView reads a view argument, or returns the error code Slack answers.
func parseView(raw string) (View, map[string]any, string) {
	var v struct {
		Type            string                 `json:"type"`
		CallbackID      string                 `json:"callback_id"`
		PrivateMetadata string                 `json:"private_metadata"`
		Title           *struct{ Text string } `json:"title"`
		Blocks          []json.RawMessage      `json:"blocks"`
	}
	var obj map[string]any
	if raw == "" || json.Unmarshal([]byte(raw), &v) != nil || json.Unmarshal([]byte(raw), &obj) != nil {
		return View{}, nil, "invalid_arguments"
	}
	switch {
	case len(v.Blocks) > 100:
		return View{}, nil, "invalid_arguments"
	case len(v.PrivateMetadata) > 3000:
		return View{}, nil, "invalid_arguments"
	case v.Type == "modal" && (v.Title == nil || v.Title.Text == "" || len([]rune(v.Title.Text)) > 24):
		return View{}, nil, "invalid_arguments"
	}
	return View{Type: v.Type, CallbackID: v.CallbackID, PrivateMetadata: v.PrivateMetadata, JSON: json.RawMessage(raw)}, obj, ""
}

// viewJSONLocked is v as Slack answers it: the app's view with Slack's
// fields added.
func (s *Server) viewJSONLocked(v *View, obj map[string]any) map[string]any {
	obj["id"], obj["team_id"], obj["app_id"], obj["bot_id"] = v.ID, TeamID, AppID, BotID
	obj["hash"] = fmt.Sprintf("%d.fakehash", s.nextView)
	obj["state"] = map[string]any{"values": map[string]any{}}
	if _, ok := obj["blocks"]; !ok {
		obj["blocks"] = []any{}
	}
	return obj
}

// viewsOpenLocked answers views.open like Slack: a trigger_id is good for
// one view, within 3 s of the click or command that issued it.
func (s *Server) viewsOpenLocked(args url.Values) apiResult {
	id := args.Get("trigger_id")
	t, found := s.triggers[id]
	switch {
	case id == "" || !found:
		return fail("invalid_trigger_id")
	case t.exchanged:
		return fail("exchanged_trigger_id")
	case s.nowLocked().Sub(t.at) > TriggerWindow:
		return fail("expired_trigger_id")
	}
	v, obj, code := parseView(args.Get("view"))
	if code == "" && v.Type != "modal" {
		code = "invalid_arguments"
	}
	if code != "" {
		return fail(code)
	}
	t.exchanged = true
	s.nextView++
	v.ID, v.User, v.TriggerID = fmt.Sprintf("V%08dFAKE", s.nextView), t.user, id
	s.views = append(s.views, &v)
	return ok(map[string]any{"view": s.viewJSONLocked(&v, obj)})
}

// viewsPublishLocked answers views.publish: the user's App Home is
// replaced by a view of type home.
func (s *Server) viewsPublishLocked(args url.Values) apiResult {
	user := args.Get("user_id")
	if user == "" {
		return fail("invalid_arguments")
	}
	v, obj, code := parseView(args.Get("view"))
	if code == "" && v.Type != "home" {
		code = "invalid_arguments"
	}
	if code != "" {
		return fail(code)
	}
	s.nextView++
	v.ID, v.User = fmt.Sprintf("V%08dHOME", s.nextView), user
	if old, ok := s.homes[user]; ok {
		v.ID = old.ID // a user's home keeps its view ID
	}
	s.homes[user] = &v
	s.publish = append(s.publish, Publish{User: user, Time: s.nowLocked(), View: v})
	return ok(map[string]any{"view": s.viewJSONLocked(&v, obj)})
}

// Submission describes a modal's submission, for ViewSubmissionEnvelope.
type Submission struct {
	User string
	Team string // "" means TeamID
	// ViewID names a view opened with views.open: its callback_id,
	// private_metadata and blocks come with the submission, as from Slack.
	ViewID string
	// Values is the state of the view's inputs: block_id → action_id →
	// the element's state, e.g. {"type": "plain_text_input", "value": "x"}
	// or {"type": "external_select", "selected_option": {…}}.
	Values map[string]map[string]any
}

// ViewSubmissionEnvelope returns the interactive view_submission envelope
// Slack sends when sub's user submits the modal. Its ack may carry a
// response_action (errors, update, push, clear); see AckPayload.
func (s *Server) ViewSubmissionEnvelope(sub Submission) Envelope {
	s.mu.Lock()
	trig := s.newTriggerLocked(sub.User)
	view := map[string]any{"id": sub.ViewID, "type": "modal", "team_id": TeamID, "app_id": AppID, "bot_id": BotID}
	for _, v := range s.views {
		if v.ID == sub.ViewID {
			var obj map[string]any
			_ = json.Unmarshal(v.JSON, &obj)
			for k, x := range obj {
				view[k] = x
			}
			view["id"] = v.ID
		}
	}
	s.mu.Unlock()
	if sub.Team == "" {
		sub.Team = TeamID
	}
	values := map[string]any{}
	for b, actions := range sub.Values {
		values[b] = actions
	}
	view["state"] = map[string]any{"values": values}
	view["hash"] = "1.fakehash"
	payload := map[string]any{
		"type": "view_submission", "team": map[string]any{"id": sub.Team, "domain": "fake"},
		"user":       map[string]any{"id": sub.User, "username": strings.ToLower(sub.User), "name": strings.ToLower(sub.User), "team_id": sub.Team},
		"api_app_id": AppID, "token": "fake-verification-token", "trigger_id": trig, "view": view,
		"response_urls": []any{}, "is_enterprise_install": false, "enterprise": nil,
	}
	return Envelope{Type: "interactive", Payload: mustJSON(payload), AcceptsResponsePayload: true}
}

// Suggestion describes typing into an external_select, for
// BlockSuggestionEnvelope.
type Suggestion struct {
	User     string
	Team     string // "" means TeamID
	ViewID   string // the modal the select is in
	BlockID  string
	ActionID string
	Value    string // what the user has typed so far
}

// BlockSuggestionEnvelope returns the interactive block_suggestion envelope
// Slack sends as the user types into an external_select. Its ack must carry
// the options, within 3 s; see AckPayload.
func (s *Server) BlockSuggestionEnvelope(g Suggestion) Envelope {
	if g.Team == "" {
		g.Team = TeamID
	}
	s.mu.Lock()
	ts := s.nextTSLocked()
	callback := ""
	for _, v := range s.views {
		if v.ID == g.ViewID {
			callback = v.CallbackID
		}
	}
	s.mu.Unlock()
	payload := map[string]any{
		"type": "block_suggestion", "team": map[string]any{"id": g.Team, "domain": "fake"},
		"user":       map[string]any{"id": g.User, "username": strings.ToLower(g.User), "name": strings.ToLower(g.User), "team_id": g.Team},
		"api_app_id": AppID, "token": "fake-verification-token",
		"container": map[string]any{"type": "view", "view_id": g.ViewID},
		"view":      map[string]any{"id": g.ViewID, "type": "modal", "callback_id": callback, "team_id": g.Team, "app_id": AppID, "bot_id": BotID},
		"block_id":  g.BlockID, "action_id": g.ActionID, "value": g.Value, "action_ts": ts,
		"is_enterprise_install": false, "enterprise": nil,
	}
	return Envelope{Type: "interactive", Payload: mustJSON(payload), AcceptsResponsePayload: true}
}
