package bot

import (
	"strings"

	"github.com/slack-go/slack/slackutilsx"

	"github.com/dobrobot/dobrobot/commands"
)

// escape makes user or tracker text safe in Slack mrkdwn: &, < and > become
// entities, so the text can never form a link, a mention or <!channel>; and
// control and bidirectional characters are neutralised (commands.Neutralise).
func escape(s string) string { return slackutilsx.EscapeMessage(commands.Neutralise(s)) }

// unescape reverses escape's entities, for text shown plain:
// unescape(escape(s)) == commands.Neutralise(s).
func unescape(s string) string { return unescaper.Replace(s) }

// Built once: a Replacer builds its tables at its first use.
var unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// userRef renders a mention of a user by ID, or "nobody" for no ID.
func userRef(id string) string {
	if id == "" {
		return "nobody"
	}
	return "<@" + escape(id) + ">"
}

// mrkdwnText renders the core's structured text as Slack mrkdwn. Every run
// of text is escaped; only the spans that mean markup (a person, a channel,
// a ticket link, code, an icon) write any.
func mrkdwnText(t commands.Text) string {
	var b strings.Builder
	for _, s := range t {
		switch s.Kind {
		case commands.SpanPerson:
			b.WriteString(userRef(s.ID))
		case commands.SpanChannel:
			b.WriteString("<#" + escape(s.ID) + ">")
		case commands.SpanTicket:
			if s.URL != "" {
				// TicketRef lets only a URL without <, >, |, & or spaces
				// through: it cannot break out of the link.
				b.WriteString("<" + s.URL + "|" + escape(s.Text) + ">")
			} else {
				b.WriteString(escape(s.Text))
			}
		case commands.SpanCode:
			b.WriteString("`" + escape(strings.ReplaceAll(s.Text, "`", "'")) + "`")
		case commands.SpanOutput:
			b.WriteString("\n```\n" + escape(s.Text) + "\n```")
		case commands.SpanIcon:
			b.WriteString(":" + escape(s.Text) + ":")
		default: // plain, component
			b.WriteString(escape(s.Text))
		}
	}
	return b.String()
}

// effectText is the mrkdwn of an effect: its Text rendered, or the text an
// earlier version wrote to the outbox, already mrkdwn, as it is.
func effectText(e commands.Effect) string {
	if len(e.Text) == 0 && e.Legacy != "" {
		return e.Legacy
	}
	return mrkdwnText(e.Text)
}
