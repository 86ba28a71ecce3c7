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
	switch id {
	case "":
		return "nobody"
	case commands.ActorCI:
		return "CI" // the CI intake's actor is no Slack user
	}
	return "<@" + escape(id) + ">"
}

// mrkdwnText renders the core's structured text as Slack mrkdwn. Every run
// of text is escaped; only the spans that mean markup (a person, a channel,
// a ticket link, code, an icon) write any. It writes each span into one
// builder, sized once: a queue reply has about two hundred spans, and a
// string of each span's markup made rendering allocate per span.
func mrkdwnText(t commands.Text) string {
	var b strings.Builder
	n := 0
	for _, s := range t {
		n += len(s.Text) + len(s.ID) + len(s.URL) + 8
	}
	b.Grow(n + n/8)
	for _, s := range t {
		switch s.Kind {
		case commands.SpanPerson:
			if s.ID == "" {
				b.WriteString("nobody")
			} else {
				b.WriteString("<@")
				writeEscaped(&b, s.ID)
				b.WriteString(">")
			}
		case commands.SpanChannel:
			b.WriteString("<#")
			writeEscaped(&b, s.ID)
			b.WriteString(">")
		case commands.SpanTicket:
			if s.URL != "" {
				// TicketRef lets only a URL without <, >, |, & or spaces
				// through: it cannot break out of the link.
				b.WriteString("<")
				b.WriteString(s.URL)
				b.WriteString("|")
				writeEscaped(&b, s.Text)
				b.WriteString(">")
			} else {
				writeEscaped(&b, s.Text)
			}
		case commands.SpanCode:
			b.WriteString("`")
			writeEscaped(&b, strings.ReplaceAll(s.Text, "`", "'"))
			b.WriteString("`")
		case commands.SpanOutput:
			b.WriteString("\n```\n")
			writeEscaped(&b, s.Text)
			b.WriteString("\n```")
		case commands.SpanIcon:
			b.WriteString(":")
			writeEscaped(&b, s.Text)
			b.WriteString(":")
		default: // plain, component
			writeEscaped(&b, s.Text)
		}
	}
	return b.String()
}

// writeEscaped writes escape(s) to b. Most spans are text that neither
// escaping nor Neutralise changes, which one pass over the bytes proves; a
// multi-byte rune ("—" is in most of the core's lines) needs Neutralise's
// look only when there is one.
func writeEscaped(b *strings.Builder, s string) {
	wide := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '&' || c == '<' || c == '>' || c == 0x7f || (c < 0x20 && c != '\n' && c != '\t'):
			b.WriteString(escape(s))
			return
		case c >= 0x80:
			wide = true
		}
	}
	if wide && commands.Neutralise(s) != s {
		b.WriteString(escape(s))
		return
	}
	b.WriteString(s)
}

// effectText is the mrkdwn of an effect: its Text rendered, or the text an
// earlier version wrote to the outbox, already mrkdwn, as it is.
func effectText(e commands.Effect) string {
	if len(e.Text) == 0 && e.Legacy != "" {
		return e.Legacy
	}
	return mrkdwnText(e.Text)
}
