package bot

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The manifest in docs/ is what people install: it must ask for what the
// bot uses.
func TestSlackAppManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "docs", "slack-app-manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Settings struct {
			Events struct {
				Bot []string `yaml:"bot_events"`
			} `yaml:"event_subscriptions"`
			Interactivity struct {
				Enabled    bool   `yaml:"is_enabled"`
				RequestURL string `yaml:"request_url"`
				OptionsURL string `yaml:"message_menu_options_url"`
			} `yaml:"interactivity"`
			SocketMode bool `yaml:"socket_mode_enabled"`
		} `yaml:"settings"`
		Features struct {
			Slash []struct {
				Command string `yaml:"command"`
				URL     string `yaml:"url"`
			} `yaml:"slash_commands"`
			AppHome struct {
				Home     bool `yaml:"home_tab_enabled"`
				Messages bool `yaml:"messages_tab_enabled"`
				ReadOnly bool `yaml:"messages_tab_read_only_enabled"`
			} `yaml:"app_home"`
		} `yaml:"features"`
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, scope := range []string{"app_mentions:read", "channels:history", "channels:read", "chat:write", "groups:history", "groups:read", "im:history", "im:write", "usergroups:read", "users:read", "commands", "files:write"} {
		if !slices.Contains(m.OAuth.Scopes.Bot, scope) {
			t.Errorf("bot scope %s missing", scope)
		}
	}
	for _, event := range []string{"app_mention", "message.im", "subteam_members_changed", "member_joined_channel", "member_left_channel", "app_home_opened"} {
		if !slices.Contains(m.Settings.Events.Bot, event) {
			t.Errorf("bot event %s missing", event)
		}
	}
	if !m.Settings.SocketMode || !m.Settings.Interactivity.Enabled {
		t.Errorf("socket mode %v, interactivity %v; want both on", m.Settings.SocketMode, m.Settings.Interactivity.Enabled)
	}
	// The form's submissions and its ticket select's searches come over
	// the socket too: either URL would make Slack post them there.
	if m.Settings.Interactivity.RequestURL != "" || m.Settings.Interactivity.OptionsURL != "" {
		t.Errorf("interactivity URLs %+v; want none (Socket Mode)", m.Settings.Interactivity)
	}
	if !m.Features.AppHome.Messages || m.Features.AppHome.ReadOnly {
		t.Error("people must be able to write to the bot in its Messages tab")
	}
	if !m.Features.AppHome.Home {
		t.Error("the Home tab must be enabled: the bot publishes each person's App Home")
	}
	// The slash command comes over the socket: a request URL would make
	// Slack post it there instead.
	if len(m.Features.Slash) != 1 || m.Features.Slash[0].Command != "/dobro" || m.Features.Slash[0].URL != "" {
		t.Errorf("slash commands %+v; want /dobro alone, without a request URL", m.Features.Slash)
	}
}

// Every log message docs/slack.md explains is one the bot writes.
func TestSlackDocsLogMessages(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "slack.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "## Logs to know")
	if !ok {
		t.Fatal("docs/slack.md has no Logs to know section")
	}
	files, _ := filepath.Glob("slack*.go")
	var src strings.Builder
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src.Write(b)
		}
	}
	rows := regexp.MustCompile("(?m)^\\| `([^`]+)` \\(").FindAllStringSubmatch(table, -1)
	if len(rows) < 5 {
		t.Fatalf("found %d log messages in the table", len(rows))
	}
	for _, r := range rows {
		if !strings.Contains(src.String(), r[1]) {
			t.Errorf("docs/slack.md explains %q, which the bot never logs", r[1])
		}
	}
}
