package commands

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Escape makes user or tracker text safe in Slack mrkdwn: &, < and > become
// entities, so the text can never form a link, a mention or <!channel>; and
// it neutralises control and bidirectional characters (see Neutralise).
func Escape(s string) string { return escaper.Replace(Neutralise(s)) }

// Unescape reverses Escape's entities, for adapters that show plain text:
// Unescape(Escape(s)) == Neutralise(s).
func Unescape(s string) string { return unescaper.Replace(s) }

// Neutralise makes text safe to show in a reply or a terminal: a control
// character (C0, DEL, C1) or a bidirectional embedding, override or isolate
// (U+202A–U+202E, U+2066–U+2069) becomes U+FFFD, so that it can neither
// hide nor reorder what is shown. Line breaks and tabs stay (hook output
// has them); a carriage return is dropped, so "\r\n" reads as "\n".
// Text a user types never holds one (Parse refuses it); the tracker's text
// and a hook's output may.
func Neutralise(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r != '\n' && r != '\t' && unsafeRune(r) }) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return -1
		case unsafeRune(r):
			return '\uFFFD'
		}
		return r
	}, s)
}

// unsafeRune reports whether r is a C0 or C1 control character, DEL, or a
// bidirectional embedding, override or isolate.
func unsafeRune(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f) || isBidiControl(r)
}

// isBidiControl reports whether r is one of the bidirectional embeddings,
// overrides (U+202A–U+202E) or isolates (U+2066–U+2069) that change the
// order in which the text around them is shown.
func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

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
		!strings.ContainsAny(r.URL, "<>|& \t\n") && strings.IndexFunc(r.URL, unsafeRune) < 0 {
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
	if f := ComponentsFlag(r); f != "" {
		fmt.Fprintf(&b, "\n%s", f)
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

// ComponentsDiffer reports whether the requester chose components other than
// the ticket's (as a set, ignoring case).
func ComponentsDiffer(r Release) bool {
	if !r.ComponentsChosen {
		return false
	}
	if len(r.Components) != len(r.TicketComponents) {
		return true
	}
	for _, c := range r.Components {
		if !containsFold(r.TicketComponents, c) {
			return true
		}
	}
	return false
}

// ComponentsFlag says how the components the requester chose differ from
// the ticket's ("requester chose ios; the ticket says backend"), escaped, or
// returns "" when they do not.
func ComponentsFlag(r Release) string {
	if !ComponentsDiffer(r) {
		return ""
	}
	s := "requester chose " + Escape(strings.Join(r.Components, ", ")) + "; "
	if len(r.TicketComponents) == 0 {
		return s + "the ticket names no component"
	}
	return s + "the ticket says " + Escape(strings.Join(r.TicketComponents, ", "))
}

// approvalFacts is what an approver must see to approve what will actually
// happen: the components (and which are locked), whether an admin must
// claim the release, and any difference from the ticket's components.
func approvalFacts(r Release) string {
	comps := "none"
	if len(r.Components) > 0 {
		comps = componentsText(r)
	}
	admin := "needs an admin"
	if !r.NeedAdmin {
		admin = "no admin needed (" + NoNeedAdmin + ")"
	}
	s := "Components: " + comps + " · " + admin
	if f := ComponentsFlag(r); f != "" {
		s += "\n:warning: " + f + "."
	}
	return s
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
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}
