package bot

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// slashCommand is the part of a slash_commands payload the bot reads. It is
// decoded here, not through slack-go's SlashCommand, so that a field Slack
// sends in another JSON type (is_enterprise_install has been seen both as a
// string and a boolean) cannot make the command unreadable.
type slashCommand struct {
	TeamID    string `json:"team_id"`
	ChannelID string `json:"channel_id"`
	UserID    string `json:"user_id"`
	Command   string `json:"command"`
	Text      string `json:"text"`
	TriggerID string `json:"trigger_id"`
}

// parseSlash decides what a slash command means: /dobro TEXT is its sender
// writing TEXT to the bot, and /dobro alone opens the dobro form when the
// bot has one (modal), else asks for help. Identity is the payload's user
// ID.
//
// A command typed in a DM is taken as a DM (it is answered there, and the
// commands that want a DM, such as audit, accept it); anywhere else it is
// ViaSlash: answered to its sender only, with the authorisation of a DM or a
// button, since the channel it was typed in says nothing of who may request
// releases. Slack gives a new trigger_id to every command and repeats it
// when it delivers the same payload again, so it keys the inbox, as a
// button's does; the envelope ID is the fallback.
func parseSlash(payload []byte, self botIdentity, envelopeID string, now time.Time, modal bool) inbound {
	var p slashCommand
	if err := json.Unmarshal(payload, &p); err != nil {
		return skip("malformed slash_commands payload")
	}
	switch {
	case p.TeamID != self.Team:
		return skip("slash command of another team " + p.TeamID)
	case p.UserID == "":
		return skip("slash command without a user")
	case p.UserID == self.User:
		return skip("a slash command attributed to the bot itself")
	case p.ChannelID == "":
		return skip("slash command without a channel")
	}
	id := "slash:" + p.TriggerID
	if p.TriggerID == "" {
		id = "slash:" + envelopeID
	}
	text := self.commandText(p.Text)
	kind := inboundCommand
	switch {
	case text == "" && modal && p.TriggerID != "":
		kind = inboundModal
	case text == "":
		text = string(commands.VerbHelp)
	}
	via := commands.ViaSlash
	if strings.HasPrefix(p.ChannelID, "D") {
		via = commands.ViaDM
	}
	return inbound{kind: kind, trigger: p.TriggerID, msg: commands.Message{
		EventID: id,
		Team:    p.TeamID,
		User:    p.UserID,
		Channel: p.ChannelID,
		Text:    text,
		Via:     via,
		Time:    now.UTC(),
	}}
}
