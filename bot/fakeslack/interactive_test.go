package fakeslack_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
)

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func modal(title string) slack.ModalViewRequest {
	return slack.ModalViewRequest{Type: slack.VTModal, Title: plain(title), CallbackID: "dobro", PrivateMetadata: "meta",
		Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewInputBlock("ticket", plain("Ticket"), nil,
			slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, plain("PAY-…"), "pick"))}}}
}

// A slash command arrives as slack-go's SlashCommand; its ack may carry a
// response, which the test reads back; an ack after 3 s (by the fake's
// clock) is marked late.
func TestSlashCommand(t *testing.T) {
	s := fakeslack.New(t)
	c, _ := run(t, s, fakeslack.AppToken)
	next(t, c, socketmode.EventTypeHello)

	env, err := s.SendSlash(fakeslack.Slash{User: "U01", Channel: "C1", Text: "queue"})
	if err != nil {
		t.Fatal(err)
	}
	e := next(t, c, socketmode.EventTypeSlashCommand)
	cmd, ok := e.Data.(slack.SlashCommand)
	if !ok {
		t.Fatalf("event data: %T", e.Data)
	}
	type fields struct{ User, Channel, Command, Text, Team, App string }
	if diff := cmp.Diff(fields{"U01", "C1", "/dobro", "queue", fakeslack.TeamID, fakeslack.AppID},
		fields{cmd.UserID, cmd.ChannelID, cmd.Command, cmd.Text, cmd.TeamID, cmd.APIAppID}); diff != "" || cmd.TriggerID == "" {
		t.Errorf("slash command (-want +got):\n%s\ntrigger %q", diff, cmd.TriggerID)
	}
	if !e.Request.AcceptsResponsePayload || e.Request.EnvelopeID != env.EnvelopeID {
		t.Errorf("request: %+v", e.Request)
	}
	c.Ack(*e.Request, map[string]any{"text": "only you see this", "response_type": "ephemeral"})
	var resp struct {
		Text         string `json:"text"`
		ResponseType string `json:"response_type"`
	}
	ack, err := s.AckPayload(env.EnvelopeID, 2*time.Second, &resp)
	if err != nil || resp.Text != "only you see this" || ack.Late {
		t.Errorf("ack payload: %+v, late %v, %v", resp, ack.Late, err)
	}

	// Acked after Slack's window: late, and Slack would have shown the user
	// an error.
	env, _ = s.SendSlash(fakeslack.Slash{User: "U01", Channel: "D01", Text: ""})
	e = next(t, c, socketmode.EventTypeSlashCommand)
	s.Advance(fakeslack.TriggerWindow + time.Millisecond)
	c.Ack(*e.Request)
	ack, err = s.WaitAck(env.EnvelopeID, 2*time.Second)
	if err != nil || !ack.Late {
		t.Errorf("an ack 3 s late: %+v, %v", ack, err)
	}
	if _, err := s.AckPayload(env.EnvelopeID, time.Second, &resp); err == nil {
		t.Error("AckPayload of an ack without a payload did not say so")
	}
}

// views.open takes a trigger_id once, within 3 s of the command or click
// that issued it, by the fake's clock; the view is kept with its user.
func TestViewsOpen(t *testing.T) {
	s := fakeslack.New(t)
	api := client(s, fakeslack.BotToken)
	ctx := context.Background()
	trigger := func(user string) string {
		var p struct {
			TriggerID string `json:"trigger_id"`
		}
		json.Unmarshal(s.SlashEnvelope(fakeslack.Slash{User: user, Channel: "C1"}).Payload, &p)
		return p.TriggerID
	}
	clickTrigger := func(user string) string {
		var p struct {
			TriggerID string `json:"trigger_id"`
		}
		json.Unmarshal(s.ClickEnvelope(fakeslack.Click{User: user, Channel: "C1", ActionID: "x"}).Payload, &p)
		return p.TriggerID
	}
	fresh, used, click := trigger("U01"), trigger("U02"), clickTrigger("U04")
	if _, err := api.OpenViewContext(ctx, used, modal("Release")); err != nil {
		t.Fatal(err)
	}
	s.Advance(2 * time.Second)
	justInTime := trigger("U05")
	s.Advance(1*time.Second + time.Millisecond) // fresh is now 3.001 s old
	for _, c := range []struct {
		name    string
		trigger string
		view    slack.ModalViewRequest
		want    string
	}{
		{"a trigger 3.001 s old", fresh, modal("Release"), "expired_trigger_id"},
		{"a trigger used before", used, modal("Release"), "exchanged_trigger_id"},
		{"a trigger Slack never issued", "1.2.nope", modal("Release"), "invalid_trigger_id"},
		{"a click's trigger 3.001 s old", click, modal("Release"), "expired_trigger_id"},
		{"a title over 24 characters", justInTime, modal(strings.Repeat("x", 25)), "invalid_arguments"},
		{"a home view", justInTime, slack.ModalViewRequest{Type: slack.VTHomeTab, Title: plain("x")}, "invalid_arguments"},
		{"a trigger 1.001 s old", justInTime, modal("Release"), ""},
	} {
		v, err := api.OpenViewContext(ctx, c.trigger, c.view)
		if got := slackError(err); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
		if c.want == "" && (v == nil || v.ID == "" || v.CallbackID != "dobro" || v.PrivateMetadata != "meta") {
			t.Errorf("%s: view %+v", c.name, v)
		}
	}
	var got []string
	for _, v := range s.Views() {
		got = append(got, v.User+" "+v.CallbackID)
	}
	if diff := cmp.Diff([]string{"U02 dobro", "U05 dobro"}, got); diff != "" {
		t.Errorf("opened views (-want +got):\n%s", diff)
	}
}

// Typing into an external_select sends block_suggestion, whose ack carries
// the options; submitting sends view_submission with the inputs' state,
// whose ack carries the response_action. Both arrive as slack-go's
// InteractionCallback.
func TestModalInteractions(t *testing.T) {
	s := fakeslack.New(t)
	c, _ := run(t, s, fakeslack.AppToken)
	next(t, c, socketmode.EventTypeHello)
	api := client(s, fakeslack.BotToken)

	slash, _ := s.SendSlash(fakeslack.Slash{User: "U01", Channel: "C1"})
	e := next(t, c, socketmode.EventTypeSlashCommand)
	c.Ack(*e.Request)
	if _, err := s.WaitAck(slash.EnvelopeID, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	v, err := api.OpenViewContext(context.Background(), e.Data.(slack.SlashCommand).TriggerID, modal("Release"))
	if err != nil {
		t.Fatal(err)
	}

	env, _ := s.Send(s.BlockSuggestionEnvelope(fakeslack.Suggestion{User: "U01", ViewID: v.ID, BlockID: "ticket", ActionID: "pick", Value: "pay"}))
	e = next(t, c, socketmode.EventTypeInteractive)
	cb := e.Data.(slack.InteractionCallback)
	if cb.Type != slack.InteractionTypeBlockSuggestion || cb.User.ID != "U01" || cb.BlockID != "ticket" ||
		cb.ActionID != "pick" || cb.Value != "pay" || cb.View.ID != v.ID || cb.View.CallbackID != "dobro" {
		t.Errorf("block_suggestion: %+v", cb)
	}
	c.Ack(*e.Request, slack.OptionsResponse{Options: []*slack.OptionBlockObject{
		slack.NewOptionBlockObject("PAY-1", plain("PAY-1 Faster checkout"), nil)}})
	var opts struct {
		Options []struct {
			Text  struct{ Text string } `json:"text"`
			Value string                `json:"value"`
		} `json:"options"`
	}
	if _, err := s.AckPayload(env.EnvelopeID, 2*time.Second, &opts); err != nil || len(opts.Options) != 1 || opts.Options[0].Value != "PAY-1" {
		t.Errorf("options acked: %+v, %v", opts, err)
	}

	env, _ = s.Send(s.ViewSubmissionEnvelope(fakeslack.Submission{User: "U01", ViewID: v.ID, Values: map[string]map[string]any{
		"ticket": {"pick": map[string]any{"type": "external_select", "selected_option": map[string]any{
			"text": map[string]any{"type": "plain_text", "text": "PAY-1"}, "value": "PAY-1"}}},
		"note": {"text": map[string]any{"type": "plain_text_input", "value": "hello"}},
	}}))
	e = next(t, c, socketmode.EventTypeInteractive)
	cb = e.Data.(slack.InteractionCallback)
	state := cb.View.State
	if cb.Type != slack.InteractionTypeViewSubmission || cb.View.ID != v.ID || cb.View.CallbackID != "dobro" ||
		cb.View.PrivateMetadata != "meta" || state == nil || state.Values["ticket"]["pick"].SelectedOption.Value != "PAY-1" ||
		state.Values["note"]["text"].Value != "hello" || !e.Request.AcceptsResponsePayload {
		t.Errorf("view_submission: %+v", cb)
	}
	c.Ack(*e.Request, slack.NewErrorsViewSubmissionResponse(map[string]string{"ticket": "PAY-1 is not ready"}))
	var resp struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if _, err := s.AckPayload(env.EnvelopeID, 2*time.Second, &resp); err != nil || resp.ResponseAction != "errors" || resp.Errors["ticket"] != "PAY-1 is not ready" {
		t.Errorf("response_action acked: %+v, %v", resp, err)
	}
}

// An ack payload Slack would refuse is an error the fake reports.
func TestBadAckPayloads(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     func(*fakeslack.Server) fakeslack.Envelope
		payload any
		want    string
	}{
		{"options without a value", func(s *fakeslack.Server) fakeslack.Envelope {
			return s.BlockSuggestionEnvelope(fakeslack.Suggestion{User: "U1", BlockID: "b", ActionID: "a"})
		}, map[string]any{"options": []any{map[string]any{"text": map[string]any{"type": "plain_text", "text": "x"}}}}, "without plain_text text or a value"},
		{"no options at all", func(s *fakeslack.Server) fakeslack.Envelope {
			return s.BlockSuggestionEnvelope(fakeslack.Suggestion{User: "U1", BlockID: "b", ActionID: "a"})
		}, nil, "acked without options"},
		{"errors without errors", func(s *fakeslack.Server) fakeslack.Envelope {
			return s.ViewSubmissionEnvelope(fakeslack.Submission{User: "U1", ViewID: "V1"})
		}, map[string]any{"response_action": "errors"}, "without errors"},
		{"a slash response without text", func(s *fakeslack.Server) fakeslack.Envelope {
			return s.SlashEnvelope(fakeslack.Slash{User: "U1", Channel: "C1"})
		}, map[string]any{"response_type": "ephemeral"}, "without text or blocks"},
		{"a payload for an event", func(s *fakeslack.Server) fakeslack.Envelope {
			return s.EventEnvelope(fakeslack.DM("U1", "x"))
		}, map[string]any{"text": "x"}, "takes no payload"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := fakeslack.Start()
			defer s.Close()
			ws := dial(t, s)
			if err := s.WaitConnections(1, 1, 2*time.Second); err != nil {
				t.Fatal(err)
			}
			env, err := s.Send(c.env(s))
			if err != nil {
				t.Fatal(err)
			}
			read(t, ws)
			ack := map[string]any{"envelope_id": env.EnvelopeID}
			if c.payload != nil {
				ack["payload"] = c.payload
			}
			if err := ws.WriteJSON(ack); err != nil {
				t.Fatal(err)
			}
			if _, err := s.WaitAck(env.EnvelopeID, 2*time.Second); err != nil {
				t.Fatal(err)
			}
			if errs := s.Errors(); len(errs) != 1 || !strings.Contains(errs[0], c.want) {
				t.Errorf("errors: %q, want one saying %q", errs, c.want)
			}
		})
	}
}

// views.publish replaces the user's App Home, which keeps its view ID.
func TestViewsPublish(t *testing.T) {
	s := fakeslack.New(t)
	api := client(s, fakeslack.BotToken)
	ctx := context.Background()
	home := func(text string) slack.HomeTabViewRequest {
		return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}}}
	}
	first, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U01", View: home("one")})
	if err != nil {
		t.Fatal(err)
	}
	second, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U01", View: home("two")})
	if err != nil || second.ID != first.ID {
		t.Fatalf("second publish: %+v, %v (first id %s)", second, err, first.ID)
	}
	if _, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: "U01", View: slack.HomeTabViewRequest{Type: slack.VTModal}}); slackError(err) != "invalid_arguments" {
		t.Errorf("publishing a modal: %v", err)
	}
	v, ok := s.Home("U01")
	if !ok || !strings.Contains(string(v.JSON), `"two"`) {
		t.Errorf("home of U01: %+v, %v", v, ok)
	}
	if _, ok := s.Home("U02"); ok {
		t.Error("U02 has a home it was never published")
	}
	if n := len(s.Publishes("U01")); n != 2 {
		t.Errorf("publishes for U01: %d, want 2", n)
	}
}

// slack-go's files upload v2 (its three calls) delivers the bytes whole
// into the channel, with the title and comment; a complete without an
// upload is refused, and a length that disagrees with the bytes is an error.
func TestFilesUploadV2(t *testing.T) {
	s := fakeslack.New(t)
	api := client(s, fakeslack.BotToken)
	ctx := context.Background()
	content := bytes.Repeat([]byte("seq,time,actor\n1,2026-12-05T00:00:00Z,U01\n"), 5000)
	f, err := api.UploadFileContext(ctx, slack.UploadFileParameters{Reader: bytes.NewReader(content), FileSize: len(content),
		Filename: "dobrobot-audit-2026-12-05.csv", Title: "audit", InitialComment: "the audit log", Channel: "D01"})
	if err != nil {
		t.Fatal(err)
	}
	ups := s.Uploads("D01")
	sum := sha256.Sum256(content)
	if len(ups) != 1 || ups[0].FileID != f.ID || !bytes.Equal(ups[0].Content, content) || ups[0].Size != int64(len(content)) ||
		ups[0].SHA256 != hex.EncodeToString(sum[:]) || ups[0].Filename != "dobrobot-audit-2026-12-05.csv" || ups[0].Comment != "the audit log" {
		t.Errorf("upload: %+v (content %d bytes)", ups, len(ups[0].Content))
	}
	var methods []string
	for _, c := range s.Calls("") {
		methods = append(methods, c.Method)
	}
	if diff := cmp.Diff([]string{"files.getUploadURLExternal", "files.completeUploadExternal"}, methods); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}

	_, err = api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{Files: []slack.FileSummary{{ID: "F404"}}, Channel: "D01"})
	if slackError(err) != "file_not_found" {
		t.Errorf("completing a file never uploaded: %v", err)
	}

	s.KeepUploadBytes(false)
	big := bytes.Repeat([]byte("x"), 1<<20)
	if _, err := api.UploadFileContext(ctx, slack.UploadFileParameters{Reader: bytes.NewReader(big), FileSize: len(big), Filename: "big", Channel: "D01"}); err != nil {
		t.Fatal(err)
	}
	if ups := s.Uploads("D01"); len(ups) != 2 || ups[1].Content != nil || ups[1].Size != 1<<20 {
		t.Errorf("an upload without its bytes kept: size %d, %d bytes kept", ups[1].Size, len(ups[1].Content))
	}

	wrong := fakeslack.Start()
	defer wrong.Close()
	if _, err := client(wrong, fakeslack.BotToken).UploadFileContext(ctx, slack.UploadFileParameters{Reader: strings.NewReader("12345"), FileSize: 3, Filename: "x", Channel: "D01"}); err != nil {
		t.Fatal(err)
	}
	wrong.Close()
	if errs := wrong.Errors(); len(errs) != 1 || !strings.Contains(errs[0], "5 bytes sent, 3 announced") {
		t.Errorf("a length that disagrees: errors %q", errs)
	}
}
