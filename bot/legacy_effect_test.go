package bot

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
)

// legacyDM is an outbox item as the version before structured effects wrote
// it: its text already Slack mrkdwn under the key "text". One may be pending
// at the upgrade.
const legacyDM = `{"id":7,"kind":"dm","event":"Ev1","user":"U04","text":"<https://jira.example.com/browse/PAY-1|PAY-1> was accepted by <@U02>: a &amp; b &lt;!here&gt;."}`

const legacyMrkdwn = "<https://jira.example.com/browse/PAY-1|PAY-1> was accepted by <@U02>: a &amp; b &lt;!here&gt;."

// TestLegacyEffectIsDeliveredAsBefore: an effect in the old JSON shape
// decodes into Legacy, and the Slack adapter posts that mrkdwn as it is,
// through a real outbox.
func TestLegacyEffectIsDeliveredAsBefore(t *testing.T) {
	var e commands.Effect
	if err := json.Unmarshal([]byte(legacyDM), &e); err != nil {
		t.Fatal(err)
	}
	if e.Legacy != legacyMrkdwn || e.Text != nil {
		t.Fatalf("decoded %+v, want the old text in Legacy and no Text", e)
	}
	h := startSender(t, nil)
	h.emit(t, e)
	h.waitEmpty(t, 3*time.Second)
	if m := h.fs.Messages(fakeslack.DMChannel("U04")); len(m) != 1 || m[0].Text != legacyMrkdwn {
		t.Errorf("the old DM was delivered as %+v, want its text %q as it is", m, legacyMrkdwn)
	}
}

// TestConsolePrintsLegacyEffect: the console un-marks an old effect's
// mrkdwn as it did before effects were structured.
func TestConsolePrintsLegacyEffect(t *testing.T) {
	var e commands.Effect
	if err := json.Unmarshal([]byte(legacyDM), &e); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c := &Console{Out: &out, Names: map[string]string{"approver": "U02", "me": "U04"}}
	c.print(e)
	if want := "  ✉ DM to me: PAY-1 was accepted by @approver: a & b <!here>.\n"; out.String() != want {
		t.Errorf("console printed %q, want %q", out.String(), want)
	}
}

// TestConsolePrintsOutput: a program's output (a hook's, the report's
// table) is printed as its own lines, indented with the effect, without
// the fences a chat would need.
func TestConsolePrintsOutput(t *testing.T) {
	var out bytes.Buffer
	c := &Console{Out: &out, Names: map[string]string{"me": "U04"}}
	c.print(commands.Effect{Kind: commands.EffectReply, User: "U04",
		Text: commands.Text{commands.Plain("start hook failed:"), commands.Output("line 1\nline 2")}})
	if want := "  → to me only: start hook failed:\n      line 1\n      line 2\n"; out.String() != want {
		t.Errorf("console printed %q, want %q", out.String(), want)
	}
}
