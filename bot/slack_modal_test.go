package bot

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/tracker"
	"github.com/dobrobot/dobrobot/tracker/fakejira"
	"github.com/google/go-cmp/cmp"
)

var modalRules = commands.Rules{Projects: []string{"PAY", "WEB"}, ReadyStatuses: []string{"Ready for Release"}}

// modalBot runs the bot with the dobro form, its tickets from a fake Jira
// (fakejira.Fixtures: PAY-1 and WEB-7 ready, PAY-2 in progress).
func modalBot(t *testing.T, timeout time.Duration, tune ...func(*Slack, *commands.Config)) (*botHarness, *fakejira.Server) {
	t.Helper()
	fj := fakejira.New(t)
	j, err := tracker.NewJira(tracker.JiraConfig{URL: fj.URL, User: "bot@example.com", Token: "t0ken", Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	fs := fakeslack.New(t)
	fs.SetChannelMembers(releaseChannel, ann, bob, adm)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), j, append([]func(*Slack, *commands.Config){func(b *Slack, c *commands.Config) {
		c.Policy.Rules = modalRules
		b.Modal = &Modal{Tickets: tracker.Ready{Tracker: j, Scope: tracker.Scope{Projects: modalRules.Projects, Statuses: modalRules.ReadyStatuses}},
			Timeout: timeout}
	}}, append(tune, func(b *Slack, c *commands.Config) { b.Modal.Policy = c.Policy })...)...)
	return h, fj
}

var triggers atomic.Int64

// openForm types /dobro alone as user in channel and returns the form
// Slack opened for it.
func openForm(t *testing.T, fs *fakeslack.Server, user, channel string) fakeslack.View {
	t.Helper()
	before := len(fs.Views())
	slash(t, fs, fakeslack.Slash{User: user, Channel: channel})
	views := fs.Views()
	if len(views) != before+1 || views[len(views)-1].User != user || views[len(views)-1].CallbackID != modalCallback {
		t.Fatalf("after /dobro by %s: views %+v, want one more dobro form for them (opened before the ack)", user, views)
	}
	return views[len(views)-1]
}

type optionsAck struct {
	Options []struct {
		Text  struct{ Text string } `json:"text"`
		Value string                `json:"value"`
	} `json:"options"`
}

// suggestFor types text into the form's ticket select and returns the
// options the ack carried, as "value: text", and the ack's latency.
func suggestFor(t *testing.T, fs *fakeslack.Server, v fakeslack.View, text string) []string {
	t.Helper()
	sent := send(t, fs, fs.BlockSuggestionEnvelope(fakeslack.Suggestion{User: v.User, ViewID: v.ID, BlockID: blockTicket, ActionID: blockTicket, Value: text}))
	var got optionsAck
	ack, err := fs.AckPayload(sent.EnvelopeID, 5*time.Second, &got)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Late {
		t.Errorf("the suggestion for %q was acked after Slack's 3 s", text)
	}
	out := []string{}
	for _, o := range got.Options {
		out = append(out, o.Value+": "+o.Text.Text)
	}
	return out
}

// form is what a person fills in.
type form struct {
	ticket, env, note string
	components        []string
	noNeedAdmin       bool
	hotfix            bool
}

func (f form) values() map[string]map[string]any {
	opts := func(vs []string) []any {
		out := []any{}
		for _, v := range vs {
			out = append(out, map[string]any{"text": map[string]any{"type": "plain_text", "text": v}, "value": v})
		}
		return out
	}
	vals := map[string]map[string]any{
		blockTicket:     {blockTicket: map[string]any{"type": "external_select", "selected_option": nil}},
		blockComponents: {blockComponents: map[string]any{"type": "multi_static_select", "selected_options": opts(f.components)}},
		blockOptions:    {blockOptions: map[string]any{"type": "checkboxes", "selected_options": []any{}}},
		blockNote:       {blockNote: map[string]any{"type": "plain_text_input", "value": f.note}},
	}
	if f.ticket != "" {
		vals[blockTicket][blockTicket] = map[string]any{"type": "external_select", "selected_option": opts([]string{f.ticket})[0]}
	}
	if f.env != "" {
		vals[blockEnv] = map[string]any{blockEnv: map[string]any{"type": "static_select", "selected_option": opts([]string{f.env})[0]}}
	}
	var flags []string
	if f.noNeedAdmin {
		flags = append(flags, commands.NoNeedAdmin)
	}
	if f.hotfix {
		flags = append(flags, commands.HotfixWord)
	}
	if len(flags) > 0 {
		vals[blockOptions][blockOptions] = map[string]any{"type": "checkboxes", "selected_options": opts(flags)}
	}
	return vals
}

type submitAck struct {
	ResponseAction string            `json:"response_action"`
	Errors         map[string]string `json:"errors"`
}

// submit submits the form and returns its ack's response (zero when the
// ack carried none: the form closes).
func submit(t *testing.T, fs *fakeslack.Server, v fakeslack.View, user string, f form) submitAck {
	t.Helper()
	sent := send(t, fs, fs.ViewSubmissionEnvelope(fakeslack.Submission{User: user, ViewID: v.ID, Values: f.values()}))
	ack, err := fs.WaitAck(sent.EnvelopeID, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Late {
		t.Errorf("the submission of %+v was acked after Slack's 3 s", f)
	}
	var got submitAck
	if len(ack.Payload) > 0 {
		if err := json.Unmarshal(ack.Payload, &got); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func TestModalEndToEnd(t *testing.T) {
	h, _ := modalBot(t, 2*time.Second)
	fs := h.fs

	v := openForm(t, fs, ann, releaseChannel)
	var view struct {
		Blocks []struct {
			BlockID  string `json:"block_id"`
			Optional bool   `json:"optional"`
			Element  struct {
				Type    string            `json:"type"`
				Options []json.RawMessage `json:"options"`
			} `json:"element"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(v.JSON, &view); err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, b := range view.Blocks {
		blocks = append(blocks, fmt.Sprintf("%s %s %d %v", b.BlockID, b.Element.Type, len(b.Element.Options), b.Optional))
	}
	want := []string{"ticket external_select 0 false", "components multi_static_select 1 true", "options checkboxes 1 true", "note plain_text_input 0 true"}
	if diff := cmp.Diff(want, blocks); diff != "" {
		t.Errorf("the form's blocks, without environments (-want +got):\n%s", diff)
	}

	// Typing: the tracker's ready tickets of the allowed projects.
	for _, tt := range []struct {
		typed string
		want  []string
	}{
		{"", []string{"PAY-1: PAY-1 — Faster checkout", "WEB-7: WEB-7 — New landing page"}},
		{"check", []string{"PAY-1: PAY-1 — Faster checkout"}},
		{"pay-1", []string{"PAY-1: PAY-1 — Faster checkout"}},
		{"refund", []string{}}, // PAY-2 is not ready
		{"pay-42", []string{"PAY-42: PAY-42 (as typed)"}},
		{`" OR project = OPS OR "`, []string{}},
	} {
		if diff := cmp.Diff(tt.want, suggestFor(t, fs, v, tt.typed)); diff != "" {
			t.Errorf("options for %q (-want +got):\n%s", tt.typed, diff)
		}
	}

	// A ticket that is not ready: the error is on its field, nothing is
	// recorded, and the form stays open for another choice.
	got := submit(t, fs, v, ann, form{ticket: "PAY-2", note: "refunds"})
	if got.ResponseAction != "errors" || !strings.Contains(got.Errors[blockTicket], "status is In Progress, needs Ready for Release") {
		t.Errorf("submitting PAY-2 (in progress): %+v, want errors on the ticket field", got)
	}
	got = submit(t, fs, v, ann, form{ticket: "PAY-404"})
	if got.ResponseAction != "errors" || !strings.Contains(got.Errors[blockTicket], "PAY-404 was not found") {
		t.Errorf("submitting PAY-404: %+v, want errors on the ticket field", got)
	}
	got = submit(t, fs, v, ann, form{ticket: typeTheKey})
	if got.ResponseAction != "errors" || !strings.Contains(got.Errors[blockTicket], "Type the ticket's whole key") {
		t.Errorf("submitting the slow tracker's option: %+v", got)
	}
	got = submit(t, fs, v, ann, form{ticket: "PAY-1", note: "ship it on backend"})
	if got.ResponseAction != "errors" || !strings.Contains(got.Errors[blockNote], "reword") {
		t.Errorf("a note ending in 'on backend' without components chosen: %+v, want it refused on the note", got)
	}
	for _, note := range []string{"please no_need_admin", "no_need_admin"} {
		got = submit(t, fs, v, ann, form{ticket: "PAY-1", components: []string{"backend"}, note: note})
		if got.ResponseAction != "errors" || !strings.Contains(got.Errors[blockNote], "reword") {
			t.Errorf("the note %q: %+v, want it refused on the note", note, got)
		}
	}
	h.settle(t)
	if rel := h.release(t, "PAY-2"); rel.ID != 0 {
		t.Errorf("PAY-2 was stored: %+v", rel)
	}
	if a := h.audit(t, "PAY-2"); len(a) != 0 {
		t.Errorf("PAY-2 audit %q, want nothing", a)
	}

	// A ready ticket: the form closes (an ack without a response) and the
	// release is queued as by dobro PAY-1 on backend no_need_admin ship it.
	got = submit(t, fs, v, ann, form{ticket: "PAY-1", components: []string{"backend"}, noNeedAdmin: true, note: "ship\nit"})
	if got.ResponseAction != "" || len(got.Errors) > 0 {
		t.Errorf("submitting PAY-1: %+v, want the form closed", got)
	}
	h.settle(t)
	rel := h.release(t, "PAY-1")
	if rel.State != commands.StateRequested || rel.Requester != ann || rel.Note != "ship it" || !rel.ComponentsChosen ||
		!slices.Equal(rel.Components, []string{"backend"}) || rel.NeedAdmin {
		t.Errorf("PAY-1 after the form: %+v", rel)
	}
	if c := cards(fs); len(c) != 1 || !strings.Contains(c[0].Text, "PAY-1") {
		t.Errorf("cards: %q, want PAY-1's", texts(c))
	}
	if !ephemeralTo(fs, ann, "PAY-1") {
		t.Errorf("ann was not answered where she typed /dobro: %q", texts(fs.Ephemerals(ann)))
	}
	if a := h.audit(t, "PAY-1"); !cmp.Equal(a, []string{ann + ":request"}) {
		t.Errorf("PAY-1 audit %q", a)
	}
	// The same form submitted again (a double click) has no second effect.
	submit(t, fs, v, ann, form{ticket: "PAY-1", components: []string{"backend"}, noNeedAdmin: true, note: "ship it"})
	h.settle(t)
	if a := h.audit(t, "PAY-1"); len(a) != 1 {
		t.Errorf("PAY-1 audit after a second submission: %q", a)
	}
}

// With environments configured, the form offers them, the default
// preselected, and the choice reaches the release.
func TestModalEnvironments(t *testing.T) {
	envs := []commands.EnvPolicy{
		{Name: "staging", Approvers: []string{bob}, Admins: []string{adm}, Components: []string{"backend", "web"}},
		{Name: "production", Approvers: []string{bob}, Admins: []string{adm}, Components: []string{"backend"}, Approval: true, Approvals: 1, NeedsAdmin: true},
	}
	h, _ := modalBot(t, 2*time.Second, func(b *Slack, c *commands.Config) {
		c.Policy.Envs, c.Policy.DefaultEnv = envs, "production"
	})
	v := openForm(t, h.fs, ann, fakeslack.DMChannel(ann))
	var view struct {
		Blocks []struct {
			BlockID string `json:"block_id"`
			Element struct {
				InitialOption *struct{ Value string }  `json:"initial_option"`
				Options       []struct{ Value string } `json:"options"`
			} `json:"element"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(v.JSON, &view); err != nil {
		t.Fatal(err)
	}
	env := view.Blocks[1]
	if env.BlockID != blockEnv || env.Element.InitialOption == nil || env.Element.InitialOption.Value != "production" || len(env.Element.Options) != 2 {
		t.Errorf("environment block: %+v, want staging and production, production preselected", env)
	}
	if c := view.Blocks[2]; c.BlockID != blockComponents || len(c.Element.Options) != 2 {
		t.Errorf("components block: %+v, want backend and web", c)
	}
	if got := submit(t, h.fs, v, ann, form{ticket: "WEB-7", env: "staging"}); got.ResponseAction != "" || len(got.Errors) > 0 {
		t.Errorf("submitting WEB-7 to staging: %+v", got)
	}
	h.settle(t)
	if rel := h.release(t, "WEB-7"); rel.Env != "staging" || rel.State == commands.StateNone {
		t.Errorf("WEB-7: %+v, want a release in staging", rel)
	}
	// Typed in the bot's DM: answered there.
	if dm := h.fs.Messages(fakeslack.DMChannel(ann)); !slices.ContainsFunc(dm, func(m fakeslack.Message) bool { return strings.Contains(m.Text, "WEB-7") }) {
		t.Errorf("ann's DM: %q", texts(dm))
	}
	// With environments, the form offers hotfix, and checking it requests
	// one, as dobro … hotfix does; a note that ends with the word is refused
	// when the box is not checked, rather than ask to go first unseen.
	if opts := view.Blocks[3]; opts.BlockID != blockOptions || len(opts.Element.Options) != 2 || opts.Element.Options[1].Value != commands.HotfixWord {
		t.Errorf("options block: %+v, want no_need_admin and hotfix", opts)
	}
	v = openForm(t, h.fs, ann, fakeslack.DMChannel(ann))
	if got := submit(t, h.fs, v, ann, form{ticket: "PAY-1", env: "staging", note: "not a hotfix"}); got.Errors[blockNote] == "" {
		t.Errorf("a note ending in hotfix, box unchecked: %+v, want an error on the note", got)
	}
	v = openForm(t, h.fs, ann, fakeslack.DMChannel(ann))
	if got := submit(t, h.fs, v, ann, form{ticket: "PAY-1", env: "staging", note: "urgent fix", hotfix: true}); got.ResponseAction != "" || len(got.Errors) > 0 {
		t.Errorf("submitting PAY-1 as a hotfix: %+v", got)
	}
	h.settle(t)
	if rel := h.release(t, "PAY-1"); !rel.Hotfix || rel.Note != "urgent fix" {
		t.Errorf("PAY-1: hotfix %v, note %q; want a hotfix noted \"urgent fix\"", rel.Hotfix, rel.Note)
	}
}

// A slow tracker: the suggestion falls back to typing the key within the
// modal's timeout, and a submission whose check outlasts it closes the
// form and is answered as a typed dobro is.
func TestModalSlowTracker(t *testing.T) {
	h, fj := modalBot(t, 200*time.Millisecond)
	fs := h.fs
	v := openForm(t, fs, ann, releaseChannel)
	fj.Fail("", fakejira.Failure{Delay: 1500 * time.Millisecond})

	began := time.Now()
	if diff := cmp.Diff([]string{"-: The tracker is slow: type the whole key, like PAY-123"}, suggestFor(t, fs, v, "check")); diff != "" {
		t.Errorf("options with a slow tracker (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PAY-1: PAY-1 (as typed)"}, suggestFor(t, fs, v, "pay-1")); diff != "" {
		t.Errorf("options for a typed key with a slow tracker (-want +got):\n%s", diff)
	}
	if took := time.Since(began); took > 1400*time.Millisecond {
		t.Errorf("two suggestions took %s with a 200ms bound", took)
	}
	if !strings.Contains(h.logs.String(), "could not search the tracker for the form") {
		t.Errorf("the fallback was not logged")
	}

	// PAY-2 is not ready, but the check cannot tell in time: the form
	// closes, and the refusal comes as a typed dobro's would.
	if got := submit(t, fs, v, ann, form{ticket: "PAY-2"}); got.ResponseAction != "" || len(got.Errors) > 0 {
		t.Errorf("submitting with a slow tracker: %+v, want the form closed", got)
	}
	h.settle(t)
	if !ephemeralTo(fs, ann, "status is In Progress") {
		t.Errorf("ann was not told why PAY-2 was refused: %q", texts(fs.Ephemerals(ann)))
	}
	if rel := h.release(t, "PAY-2"); rel.ID != 0 {
		t.Errorf("PAY-2 stored: %+v", rel)
	}
}

// A trigger that expired before the bot could open the form: logged, and
// the person is told how to go on.
func TestModalExpiredTrigger(t *testing.T) {
	h, _ := modalBot(t, 2*time.Second)
	fs := h.fs
	env := fs.SlashEnvelope(fakeslack.Slash{User: ann, Channel: releaseChannel})
	fs.Advance(fakeslack.TriggerWindow + time.Second) // the bot got the command too late
	do(t, fs, env)
	h.settle(t)
	if n := len(fs.Views()); n != 0 {
		t.Errorf("%d views opened with an expired trigger", n)
	}
	if !ephemeralTo(fs, ann, "The form could not open (expired_trigger_id)") {
		t.Errorf("ann's answers: %q, want the form's failure explained", texts(fs.Ephemerals(ann)))
	}
	if !strings.Contains(h.logs.String(), "could not open the dobro form") {
		t.Errorf("the failure was not logged")
	}
}
