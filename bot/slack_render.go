package bot

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/dobrobot/dobrobot/commands"
)

// Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
const (
	maxSectionText = 3000
	maxFieldText   = 2000
	maxButtonText  = 75
	maxButtonValue = 2000
	maxButtons     = 25
)

// stateEmoji marks each state on the card, so the channel reads at a glance.
var stateEmoji = map[commands.State]string{
	commands.StateRequested: ":hourglass_flowing_sand:",
	commands.StateAccepted:  ":white_check_mark:",
	commands.StateClaimed:   ":raising_hand:",
	commands.StateDeploying: ":rocket:",
	commands.StateDone:      ":checkered_flag:",
	commands.StateRejected:  ":no_entry:",
	commands.StateCancelled: ":heavy_multiplication_x:",
	commands.StateFailed:    ":x:",
}

// cardMessage renders the card of release r as of now: the Block Kit blocks
// and the plain fallback text Slack shows in notifications. Everything that
// came from a user or the tracker is escaped.
func cardMessage(r commands.Release, now time.Time) (string, []slack.Block) {
	title := "*" + mrkdwnText(commands.Text{commands.TicketRef(r)}) + "*"
	if r.Summary != "" {
		title += " — " + escape(clipText(r.Summary, 300))
	}

	field := func(name, value string) *slack.TextBlockObject {
		return mrkdwn(clipMarkup("*"+name+"*\n"+value, maxFieldText))
	}
	approver := "Approver"
	if r.State == commands.StateRejected {
		approver = "Rejected by"
	}
	admin := "not needed"
	switch {
	case r.Admin != "":
		admin = userRef(r.Admin)
	case r.NeedAdmin && r.State.Open():
		admin = "needed, not claimed yet"
	case r.NeedAdmin:
		admin = "nobody claimed it"
	}
	components := "none"
	if len(r.Components) > 0 {
		parts := make([]string, 0, len(r.Components))
		for _, c := range r.Components {
			p := escape(c)
			if !hasFold(r.Locks, c) {
				p += " (not locked)"
			}
			parts = append(parts, p)
		}
		components = strings.Join(parts, ", ")
	}
	if f := commands.ComponentsFlag(r); f != nil {
		// The requester chose other components than the ticket's: the
		// approver must see what will actually be locked.
		components += "\n:warning: " + mrkdwnText(f)
	}
	var when *slack.TextBlockObject
	if r.State.Open() {
		when = field("Waiting", commands.Ago(now.Sub(r.Created)))
	} else {
		when = field("Took", commands.Ago(r.Updated.Sub(r.Created)))
	}
	fields := []*slack.TextBlockObject{
		field("State", stateEmoji[r.State]+" "+string(r.State)),
		field("Requester", userRef(r.Requester)),
		field(approver, userOrDash(r.Approver)),
		field("Admin", admin),
		field("Components", components),
		when,
	}
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(clipMarkup(title, maxSectionText)), nil, nil),
		slack.NewSectionBlock(nil, fields, nil),
	}

	var details []string
	if ci := r.CI; ci != nil {
		details = append(details, ciLine(ci))
	}
	if r.Note != "" {
		details = append(details, "*Note:* "+escape(r.Note))
	}
	if r.Reason != "" {
		details = append(details, "*Reason:* "+escape(r.Reason))
	}
	if r.Running != nil {
		details = append(details, fmt.Sprintf(":gear: %s hook running since %s", r.Running.Phase, slackDate(r.Running.Since)))
	} else if h := r.LastHook; h != nil && !h.OK {
		details = append(details, fmt.Sprintf(":warning: last %s hook failed: %s (details in the thread)", h.Phase, escape(clipText(h.Error, 300))))
	}
	if len(details) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(clipMarkup(strings.Join(details, "\n"), maxSectionText)), nil, nil))
	}
	ctx := fmt.Sprintf("Release #%d · requested %s · updated %s", r.ID, slackDate(r.Created), slackDate(r.Updated))
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(ctx)))
	return mrkdwnText(commands.CardText(r, now)), blocks
}

// textBlocks renders a message with buttons: its text in sections, then one
// actions block. Each button's value is its command; its action_id starts
// with buttonPrefix.
func textBlocks(text string, buttons []commands.Button) []slack.Block {
	var blocks []slack.Block
	for _, chunk := range splitText(text, maxSectionText) {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(chunk), nil, nil))
	}
	var elems []slack.BlockElement
	for i, b := range buttons {
		if i == maxButtons {
			continue
		}
		if el, ok := buttonElement(buttonPrefix+strconv.Itoa(i), b); ok {
			elems = append(elems, el)
		}
	}
	if len(elems) > 0 {
		blocks = append(blocks, slack.NewActionBlock("dobrobot.actions", elems...))
	}
	return blocks
}

// mrkdwn returns a verbatim mrkdwn text object. Verbatim, Slack still
// renders the formatting and the bot's own markup (<@U…>, links, dates) but
// does not parse the plain text: a literal @here, #channel or URL a user
// wrote stays text (issue 12, item 14; docs/slack.md).
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, true)
}

func userOrDash(user string) string {
	if user == "" {
		return "—"
	}
	return userRef(user)
}

// slackDate renders t so that each reader sees it in their own time zone.
func slackDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// clipText cuts s to at most max bytes at a rune boundary, marking the cut.
func clipText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// clipMarkup is clipText for mrkdwn whose user text is escaped: it never
// cuts an entity (&amp;) or the bot's markup (<@U1>, <!date…>) in two, whose
// half would show as a stray & or break the rest of the message.
func clipMarkup(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = clipText(s, max)
	cut := len(s) - len("…")
	if amp := strings.LastIndexByte(s[:cut], '&'); amp >= 0 && !strings.Contains(s[amp:cut], ";") {
		cut = amp
	}
	if lt := strings.LastIndexByte(s[:cut], '<'); lt >= 0 && !strings.Contains(s[lt:cut], ">") {
		cut = lt
	}
	return s[:cut] + "…"
}

// splitText splits s into pieces of at most max bytes, at line breaks when it
// can, never inside a rune or an entity such as &amp;.
func splitText(s string, max int) []string {
	var out []string
	for len(s) > max {
		cut := strings.LastIndexByte(s[:max], '\n')
		if cut <= 0 {
			cut = max
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			if amp := strings.LastIndexByte(s[:cut], '&'); amp >= 0 && !strings.Contains(s[amp:cut], ";") {
				cut = amp
			}
			if cut == 0 {
				cut = max
			}
		}
		out = append(out, s[:cut])
		s = strings.TrimPrefix(s[cut:], "\n")
	}
	if s != "" || len(out) == 0 {
		out = append(out, s)
	}
	return out
}

func hasFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

// buttonElement is the Block Kit button of b, whose value is its command;
// false for a command Slack could not carry (empty, or over
// maxButtonValue), which is left out rather than cut.
func buttonElement(actionID string, b commands.Button) (*slack.ButtonBlockElement, bool) {
	if len(b.Command) > maxButtonValue || b.Command == "" {
		return nil, false
	}
	el := slack.NewButtonBlockElement(actionID, b.Command,
		slack.NewTextBlockObject(slack.PlainTextType, clipText(b.Label, maxButtonText), false, false))
	switch b.Style {
	case "primary":
		el = el.WithStyle(slack.StylePrimary)
	case "danger":
		el = el.WithStyle(slack.StyleDanger)
	}
	return el, true
}

// ciLine is the card's line for the build CI last reported: what the
// core's BuildText says, with the run linked.
func ciLine(ci *commands.CIStatus) string {
	icon := map[commands.BuildStatus]string{commands.BuildSuccess: ":white_check_mark:", commands.BuildFailure: ":x:", commands.BuildPending: ":hourglass:"}[ci.Status]
	b := fmt.Sprintf("%s *CI build %s:* %s", icon, escape(ci.Build), escape(string(ci.Status)))
	if ci.Version != "" {
		b += " · version " + escape(ci.Version)
	}
	if ci.Commit != "" {
		c := ci.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		b += " · commit `" + escape(c) + "`"
	}
	if commands.SafeURL(ci.URL) {
		b += " · <" + ci.URL + "|CI run>"
	}
	return b
}
