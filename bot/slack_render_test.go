package bot

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

var updateSlackGolden = flag.Bool("update-slack", false, "rewrite bot/testdata/slack_*.golden")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "slack_"+name+".golden")
	if *updateSlackGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot -run %s -update-slack to create it)", err, t.Name())
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestCardMessage(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)
	created := now.Add(-42 * time.Minute)
	base := commands.Release{
		ID: 7, Ticket: "PAY-123", Summary: "Faster checkout <!channel> & <@U0EVIL>", URL: "https://x.atlassian.net/browse/PAY-123",
		Requester: "U01ANN", Components: []string{"backend", "docs"}, Locks: []string{"backend"},
		NeedAdmin: true, Created: created, Updated: created, Note: "see <https://evil|here> & more",
	}
	deploying := base
	deploying.State, deploying.Approver, deploying.Admin = commands.StateDeploying, "U02BOB", "U03ADM"
	deploying.Running = &commands.HookRun{Phase: commands.PhaseStart, Since: now.Add(-2 * time.Minute)}
	deploying.Updated = now.Add(-2 * time.Minute)
	rejected := base
	rejected.State, rejected.Approver, rejected.Reason, rejected.NeedAdmin = commands.StateRejected, "U02BOB", "no QA <yet>", false
	rejected.Updated = now.Add(-30 * time.Minute)
	requested := base
	requested.State = commands.StateRequested
	// The requester chose ios for a backend ticket, with no_need_admin
	// (issue 12, item 5): the card says so.
	chosen := requested
	chosen.Components, chosen.Locks, chosen.NeedAdmin = []string{"ios"}, []string{"ios"}, false
	chosen.ComponentsChosen, chosen.TicketComponents = true, []string{"backend"}

	// A release CI opened whose last build failed (issue 15): the card
	// shows the build, its version (CI's text, escaped) and its link.
	ci := requested
	ci.Requester = commands.ActorCI
	ci.CI = &commands.CIStatus{Status: commands.BuildFailure, Build: "981", Version: "2.4.0 <!channel>", Commit: "0123456789abcdef", URL: "https://ci.example.com/runs/981", At: now}

	for name, r := range map[string]commands.Release{"requested": requested, "deploying": deploying, "rejected": rejected, "chosen": chosen, "ci": ci} {
		t.Run(name, func(t *testing.T) {
			text, blocks := cardMessage(r, now)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			// The fallback text is the core's CardText in mrkdwn; the
			// golden file holds what this package renders.
			if want := mrkdwnText(commands.CardText(r, now)); text != want {
				t.Errorf("fallback text: got %q, want CardText's %q", text, want)
			}
			if err := enc.Encode(blocks); err != nil {
				t.Fatal(err)
			}
			out := buf.Bytes()
			golden(t, "card_"+name, out)
			// Nothing from the tracker or a user may ping or link anyone.
			all := string(out)
			if name == "ci" {
				for _, want := range []string{":x: *CI build 981:* failure · version 2.4.0 &lt;!channel&gt; · commit `0123456789ab` · <https://ci.example.com/runs/981|CI run>", "*Requester*\\nCI"} {
					if !strings.Contains(all, want) {
						t.Errorf("card blocks do not say %q:\n%s", want, all)
					}
				}
			}
			if name == "chosen" {
				for _, want := range []string{"requester chose ios; the ticket says backend", "*Admin*\\nnot needed"} {
					if !strings.Contains(all, want) {
						t.Errorf("card blocks do not say %q:\n%s", want, all)
					}
				}
			}
			for _, bad := range []string{"<!channel>", "<@U0EVIL>", "<https://evil"} {
				if strings.Contains(all, bad) {
					t.Errorf("card contains %q unescaped", bad)
				}
			}
		})
	}
}

func TestTextBlocks(t *testing.T) {
	long := strings.Repeat("a line of text &amp; more\n", 300) // > 3000 bytes
	blocks := textBlocks(long, []commands.Button{
		{Label: "Approve", Command: "accept PAY-1", Style: "primary"},
		{Label: "Reject", Command: "reject PAY-1", Style: "danger"},
		{Label: strings.Repeat("x", 100), Command: "here PAY-1", Style: "weird"},
	})
	out, _ := json.Marshal(blocks)
	var decoded []struct {
		Type string `json:"type"`
		Text struct {
			Text string `json:"text"`
		} `json:"text"`
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
			Style    string `json:"style"`
			Text     struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(out, &decoded); err != nil {
		t.Fatal(err)
	}
	var joined []string
	for _, b := range decoded[:len(decoded)-1] {
		if b.Type != "section" || len(b.Text.Text) > maxSectionText {
			t.Errorf("section block: type %s, %d bytes", b.Type, len(b.Text.Text))
		}
		joined = append(joined, b.Text.Text)
	}
	if got := strings.Join(joined, "\n"); got != long {
		t.Errorf("the sections do not add up to the text (%d vs %d bytes)", len(got), len(long))
	}
	actions := decoded[len(decoded)-1]
	type button struct{ ActionID, Value, Style, Label string }
	var got []button
	for _, e := range actions.Elements {
		got = append(got, button{e.ActionID, e.Value, e.Style, e.Text.Text})
	}
	want := []button{
		{"dobrobot.0", "accept PAY-1", "primary", "Approve"},
		{"dobrobot.1", "reject PAY-1", "danger", "Reject"},
		{"dobrobot.2", "here PAY-1", "", strings.Repeat("x", 72) + "…"},
	}
	if diff := cmp.Diff(want, got); actions.Type != "actions" || diff != "" {
		t.Errorf("actions block %q (-want +got):\n%s", actions.Type, diff)
	}
}

func TestSplitText(t *testing.T) {
	entity := regexp.MustCompile(`&[a-z]*$`)
	tests := []string{
		strings.Repeat("é", 40),
		strings.Repeat("ab&amp;", 20),
		"short",
		"",
		strings.Repeat("line\n", 30),
	}
	for _, in := range tests {
		parts := splitText(in, 16)
		var b strings.Builder
		for i, p := range parts {
			if len(p) > 16 {
				t.Errorf("splitText(%q): part %d has %d bytes", in, i, len(p))
			}
			if entity.MatchString(p) {
				t.Errorf("splitText(%q): part %q cuts an entity", in, p)
			}
			b.WriteString(p)
		}
		if got := b.String(); strings.ReplaceAll(got, "\n", "") != strings.ReplaceAll(in, "\n", "") {
			t.Errorf("splitText(%q) lost text: %q", in, parts)
		}
	}
}
