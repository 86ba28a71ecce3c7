package commands

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

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
func CardText(r Release, now time.Time) Text {
	b := say("%v%s — %s", TicketRef(r), envVersion(r), strings.ToUpper(string(r.State)))
	if r.Summary != "" {
		b = b.say(" — %s", r.Summary)
	}
	b = b.say("\nrequested by %v %s", Person(r.Requester), since(now, r.Created))
	if r.Approver != "" {
		verb := "accepted"
		if r.State == StateRejected {
			verb = "rejected"
		}
		b = b.say(" · %s by %v", verb, Person(r.Approver))
	}
	if len(r.Approvals) > 0 && (r.State == StateRequested || len(r.Approvals) > 1) {
		// Several approvals: who approved so far.
		b = b.say(" · approved by %v", peopleText(r.Approvals))
	}
	if r.Admin != "" {
		b = b.say(" · admin %v", Person(r.Admin))
	} else if r.NeedAdmin {
		b = b.plain(" · needs an admin")
	} else {
		b = b.plain(" · no admin needed")
	}
	if len(r.Components) > 0 {
		b = b.say("\ncomponents: %v", componentsText(r))
	}
	if f := ComponentsFlag(r); f != nil {
		b = b.say("\n%v", f)
	}
	if h := hotfixText(r); h != nil {
		b = b.say("\n%v", h)
	}
	if ci := BuildText(r); ci != nil {
		b = b.say("\n%v", ci)
	}
	if r.Note != "" {
		b = b.say("\nnote: %s", r.Note)
	}
	if r.Reason != "" {
		b = b.say("\nreason: %s", r.Reason)
	}
	if r.Running != nil {
		b = b.say("\n%s hook running since %s", r.Running.Phase, since(now, r.Running.Since))
	}
	return b
}

// componentsText lists the components, marking those the release locks.
func componentsText(r Release) Text {
	var w textWriter
	writeComponents(&w, r)
	return w.text()
}

// writeComponents writes componentsText(r) to w.
func writeComponents(w *textWriter, r Release) {
	for i, c := range r.Components {
		if i > 0 {
			w.words(", ")
		}
		w.add(Component(c))
		if !containsFold(r.Locks, c) {
			w.words(" (not locked)")
		}
	}
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
// the ticket's ("requester chose ios; the ticket says backend"), or returns
// nil when they do not.
func ComponentsFlag(r Release) Text {
	if !ComponentsDiffer(r) {
		return nil
	}
	t := say("requester chose %s; ", strings.Join(r.Components, ", "))
	if len(r.TicketComponents) == 0 {
		return t.plain("the ticket names no component")
	}
	return t.say("the ticket says %s", strings.Join(r.TicketComponents, ", "))
}

// approvalFacts is what an approver must see to approve what will actually
// happen: the components (and which are locked), whether an admin must
// claim the release, and any difference from the ticket's components.
func approvalFacts(r Release) Text {
	comps := Text{Plain("none")}
	if len(r.Components) > 0 {
		comps = componentsText(r)
	}
	admin := "needs an admin"
	if !r.NeedAdmin {
		admin = "no admin needed (" + NoNeedAdmin + ")"
	}
	t := say("Components: %v · %s", comps, admin)
	if f := ComponentsFlag(r); f != nil {
		t = t.say("\n%v %v.", Icon("warning"), f)
	}
	if h := hotfixText(r); h != nil {
		t = t.say("\n%v", h)
	}
	return t
}

// queueText renders the queue reply: open releases in queue order
// (queueOrder), then the locks.
// closing holds the releases that are no longer open but still hold a lock
// (their cancel hook runs), by ID.
func queueText(open []Release, locks []Lock, closing map[uint64]Release, turns map[uint64]handoff, now time.Time, envs bool, zone *time.Location) Text {
	// About eight spans a release and four a lock: sized once, the text
	// does not grow its array a line at a time.
	w := textWriter{t: make(Text, 0, 2+8*len(open)+4*len(locks))}
	if len(open) == 0 {
		w.words("The queue is empty.")
	} else {
		w.say("Queue (%d open):", len(open))
		for i, r := range open {
			// "\n%d. %v%s — %s — requester %v", written a piece at a time:
			// say's arguments, boxed, were an allocation each, per line.
			w.words("\n")
			w.int(i + 1)
			w.words(". ")
			w.add(TicketRef(r))
			w.plain(envVersion(r))
			w.words(" — ")
			w.plain(string(r.State))
			w.words(" — requester ")
			w.add(Person(r.Requester))
			if r.Approver != "" {
				w.words(", approver ")
				w.add(Person(r.Approver))
			}
			if r.Admin != "" {
				w.words(", admin ")
				w.add(Person(r.Admin))
			} else if r.NeedAdmin {
				w.words(", admin: needed")
			}
			if len(r.Components) > 0 {
				w.words(", components ")
				writeComponents(&w, r)
			}
			w.words(" — waiting ")
			w.words(Ago(now.Sub(r.Created)))
			if hasTurn(r, now) && ready(r) {
				w.say(" — %s's turn until %s", r.Ticket, clockIn(r.Turn, zone, layoutClock))
			}
			if h, ok := turns[r.ID]; ok {
				w.words(" — ")
				h.writeTo(&w)
			}
		}
	}
	if len(locks) == 0 {
		w.words("\nLocks: none.")
		return w.text()
	}
	w.words("\nLocks:")
	for _, l := range locks {
		w.say("\n• %v", lockText(l, now, envs))
		if rel, ok := closing[l.Release]; ok && !l.Frozen() {
			w.say(", %v", closingText(rel, l.Component, now))
		}
	}
	return w.text()
}

// lockText says who holds a lock, since when, and why; with envs (the
// configuration has environments), in which environment.
func lockText(l Lock, now time.Time, envs bool) Text {
	where := ""
	switch {
	case envs && l.Env != "":
		where = " in " + l.Env
	case envs && l.Frozen():
		where = " in every environment"
	}
	if l.Frozen() {
		t := say("%v is frozen%s by %v %s", Component(l.Component), where, Person(l.By), since(now, l.Since))
		if l.Component == AllComponents {
			t = say("all components are frozen%s by %v %s", where, Person(l.By), since(now, l.Since))
		}
		if l.Reason != "" {
			t = t.say(": %s", l.Reason)
		}
		return t
	}
	return say("%v is locked%s by %s (dep start %s by %v)", Component(l.Component), where, l.Ticket, since(now, l.Since), Person(l.By))
}

func helpText() Text {
	b := say("Commands (mention me in the release channel or write to me directly):")
	for _, u := range Help {
		b = b.say("\n• %s — %s (%s)", u.Syntax, u.Describe, u.Who)
	}
	return b.plain("\nA ticket may be written PAY-123, #PAY-123 or as a tracker link.")
}

func hookText(h HookResult) Text {
	if h.OK {
		return say("%s hook succeeded in %s", h.Phase, h.Duration.Round(time.Millisecond))
	}
	t := say("%s hook failed: %s", h.Phase, h.Error)
	if h.Output != "" {
		t = t.add(Output(tail(h.Output, 1500)))
	}
	return t
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
