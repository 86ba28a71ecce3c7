package commands

import (
	"fmt"
	"strings"
	"time"
)

// Escape makes user or tracker text safe in Slack mrkdwn: &, < and > become
// entities, so the text can never form a link, a mention or <!channel>.
func Escape(s string) string { return escaper.Replace(s) }

// Unescape reverses Escape, for adapters that show plain text.
func Unescape(s string) string { return unescaper.Replace(s) }

// Built once: a Replacer builds its tables at its first use, which cost more
// than the replacing itself when it was made at every call.
var (
	escaper   = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
)

// UserRef renders a reference to a user by ID, as Slack shows a mention.
func UserRef(id string) string {
	if id == "" {
		return "nobody"
	}
	return "<@" + Escape(id) + ">"
}

// TicketRef renders the ticket of r, linked to the tracker when its URL is known.
func TicketRef(r Release) string {
	if r.URL != "" && (strings.HasPrefix(r.URL, "https://") || strings.HasPrefix(r.URL, "http://")) &&
		!strings.ContainsAny(r.URL, "<>|& \t\n") {
		return "<" + r.URL + "|" + r.Ticket + ">"
	}
	return r.Ticket
}

// Ago renders a duration the way people say it: "just now", "12 min",
// "3 h 5 min", "2 d 4 h".
func Ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	default:
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return fmt.Sprintf("%d d", days)
		}
		return fmt.Sprintf("%d d %d h", days, h)
	}
}

func since(now, t time.Time) string {
	a := Ago(now.Sub(t))
	if a == "just now" {
		return a
	}
	return a + " ago"
}

// CardText renders a release's card as text: what the console shows and what
// a chat adapter may use as its notification fallback.
func CardText(r Release, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s — %s", TicketRef(r), strings.ToUpper(string(r.State)))
	if r.Summary != "" {
		fmt.Fprintf(&b, " — %s", Escape(r.Summary))
	}
	fmt.Fprintf(&b, "\nrequested by %s %s", UserRef(r.Requester), since(now, r.Created))
	if r.Approver != "" {
		verb := "accepted"
		if r.State == StateRejected {
			verb = "rejected"
		}
		fmt.Fprintf(&b, " · %s by %s", verb, UserRef(r.Approver))
	}
	if r.Admin != "" {
		fmt.Fprintf(&b, " · admin %s", UserRef(r.Admin))
	} else if r.NeedAdmin {
		b.WriteString(" · needs an admin")
	} else {
		b.WriteString(" · no admin needed")
	}
	if len(r.Components) > 0 {
		fmt.Fprintf(&b, "\ncomponents: %s", componentsText(r))
	}
	if r.Note != "" {
		fmt.Fprintf(&b, "\nnote: %s", Escape(r.Note))
	}
	if r.Reason != "" {
		fmt.Fprintf(&b, "\nreason: %s", Escape(r.Reason))
	}
	if r.Running != nil {
		fmt.Fprintf(&b, "\n%s hook running since %s", r.Running.Phase, since(now, r.Running.Since))
	}
	return b.String()
}

// componentsText lists the components, marking those the release locks.
func componentsText(r Release) string {
	parts := make([]string, 0, len(r.Components))
	for _, c := range r.Components {
		if containsFold(r.Locks, c) {
			parts = append(parts, Escape(c))
		} else {
			parts = append(parts, Escape(c)+" (not locked)")
		}
	}
	return strings.Join(parts, ", ")
}

// queueText renders the queue reply: open releases in order, then the locks.
// closing holds the releases that are no longer open but still hold a lock
// (their cancel hook runs), by ID.
func queueText(open []Release, locks []Lock, closing map[uint64]Release, now time.Time) string {
	var b strings.Builder
	if len(open) == 0 {
		b.WriteString("The queue is empty.")
	} else {
		fmt.Fprintf(&b, "Queue (%d open):", len(open))
		for i, r := range open {
			fmt.Fprintf(&b, "\n%d. %s — %s — requester %s", i+1, TicketRef(r), r.State, UserRef(r.Requester))
			if r.Approver != "" {
				fmt.Fprintf(&b, ", approver %s", UserRef(r.Approver))
			}
			if r.Admin != "" {
				fmt.Fprintf(&b, ", admin %s", UserRef(r.Admin))
			} else if r.NeedAdmin {
				b.WriteString(", admin: needed")
			}
			if len(r.Components) > 0 {
				fmt.Fprintf(&b, ", components %s", componentsText(r))
			}
			fmt.Fprintf(&b, " — waiting %s", Ago(now.Sub(r.Created)))
		}
	}
	if len(locks) == 0 {
		b.WriteString("\nLocks: none.")
		return b.String()
	}
	b.WriteString("\nLocks:")
	for _, l := range locks {
		b.WriteString("\n• " + lockText(l, now))
		if rel, ok := closing[l.Release]; ok && !l.Frozen() {
			b.WriteString(", " + closingText(rel, l.Component, now))
		}
	}
	return b.String()
}

// lockText says who holds a lock, since when, and why.
func lockText(l Lock, now time.Time) string {
	if l.Frozen() {
		s := fmt.Sprintf("%s is frozen by %s %s", Escape(l.Component), UserRef(l.By), since(now, l.Since))
		if l.Component == AllComponents {
			s = fmt.Sprintf("all components are frozen by %s %s", UserRef(l.By), since(now, l.Since))
		}
		if l.Reason != "" {
			s += ": " + Escape(l.Reason)
		}
		return s
	}
	return fmt.Sprintf("%s is locked by %s (dep start %s by %s)", Escape(l.Component), Escape(l.Ticket), since(now, l.Since), UserRef(l.By))
}

func helpText() string {
	var b strings.Builder
	b.WriteString("Commands (mention me in the release channel or write to me directly):")
	for _, u := range Help {
		fmt.Fprintf(&b, "\n• %s — %s (%s)", u.Syntax, u.Describe, u.Who)
	}
	b.WriteString("\nA ticket may be written PAY-123, #PAY-123 or as a tracker link.")
	return b.String()
}

func hookText(h HookResult) string {
	if h.OK {
		return fmt.Sprintf("%s hook succeeded in %s", h.Phase, h.Duration.Round(time.Millisecond))
	}
	s := fmt.Sprintf("%s hook failed: %s", h.Phase, Escape(h.Error))
	if h.Output != "" {
		s += "\n```\n" + Escape(tail(h.Output, 1500)) + "\n```"
	}
	return s
}

// tail returns at most n bytes from the end of s, cut at a line or rune start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < 200 {
		return "…" + s[i:]
	}
	for len(s) > 0 && !utf8RuneStart(s[0]) {
		s = s[1:]
	}
	return "…" + s
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
