package bot

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// CheckSlack reports whether the tokens work, for `dobrobot config check`:
// auth.test with the bot token and apps.connections.open with the app token
// (the socket URL it returns is not used). It never prints a token.
func CheckSlack(ctx context.Context, apiURL, botToken, appToken, channel string) (string, error) {
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	api := slack.New(botToken, slack.OptionAPIURL(apiURL), slack.OptionAppLevelToken(appToken), slack.OptionHTTPClient(hc))
	auth, err := api.AuthTestContext(ctx)
	if err != nil {
		if code := slackCode(err); code != "" {
			return "", fmt.Errorf("Slack: the bot token is refused (%s)", code)
		}
		return "", fmt.Errorf("Slack: could not reach %s: %v", apiURL, err)
	}
	if _, _, err := api.StartSocketModeContext(ctx); err != nil {
		if code := slackCode(err); code != "" {
			return "", fmt.Errorf("Slack: the app token is refused (%s): it needs connections:write and Socket Mode on", code)
		}
		return "", fmt.Errorf("Slack: apps.connections.open failed: %v", err)
	}
	return fmt.Sprintf("Slack: ok as %s (%s) in %s, release channel %s", auth.User, auth.UserID, auth.Team, channel), nil
}
