package fakeslack_test

import (
	"encoding/json"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
)

// The App Home's envelopes read as Slack's do, by slack-go's own parsers:
// app_home_opened with its user and tab, and a click on a home view's
// button with the view as its container and no channel or message.
func TestAppHomeEnvelopes(t *testing.T) {
	fs := fakeslack.New(t)
	env := fs.AppHomeOpenedEnvelope("U0ANN", "")
	ev, err := slackevents.ParseEvent(env.Payload, slackevents.OptionNoVerifyToken())
	if err != nil {
		t.Fatal(err)
	}
	opened, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
	if !ok || opened.User != "U0ANN" || opened.Tab != "home" || opened.Channel != fakeslack.DMChannel("U0ANN") {
		t.Errorf("app_home_opened parsed as %T %+v", ev.InnerEvent.Data, ev.InnerEvent.Data)
	}

	b := fakeslack.Button{BlockID: "b0", ActionID: "dobrobot.home.0", Label: "Accept", Value: "accept PAY-1"}
	var cb slack.InteractionCallback
	if err := json.Unmarshal(fs.HomeClickEnvelope("U0BOB", b).Payload, &cb); err != nil {
		t.Fatal(err)
	}
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != "U0BOB" || cb.Container.Type != "view" || cb.Channel.ID != "" || cb.Message.Timestamp != "" || cb.TriggerID == "" {
		t.Errorf("home click parsed as %+v", cb)
	}
	if a := cb.ActionCallback.BlockActions; len(a) != 1 || a[0].ActionID != b.ActionID || a[0].Value != b.Value || a[0].BlockID != b.BlockID {
		t.Errorf("home click actions %+v", a)
	}
}
