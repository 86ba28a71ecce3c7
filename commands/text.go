package commands

import (
	"fmt"
	"strconv"
	"strings"
)

// SpanKind says what a Span of a Text is, so that each chat adapter can
// render it in its own markup.
type SpanKind string

// The kinds of span.
const (
	SpanPlain     SpanKind = ""          // Text, shown as it is: an adapter escapes it for its markup
	SpanPerson    SpanKind = "person"    // a user, by ID
	SpanChannel   SpanKind = "channel"   // a channel, by ID
	SpanTicket    SpanKind = "ticket"    // a ticket key (Text), linked to URL when URL is set
	SpanComponent SpanKind = "component" // a component's name (Text)
	SpanCode      SpanKind = "code"      // Text quoted inline as code, e.g. a command someone wrote
	SpanOutput    SpanKind = "output"    // a block of a program's output (Text), on lines of its own
	SpanIcon      SpanKind = "icon"      // an icon by name (Text), e.g. "warning"
)

// Span is a run of a Text. Only a plain, code or output span holds text that
// came from a user, the tracker or a hook, and the constructors neutralise it
// (see Neutralise); an adapter escapes it for its markup.
type Span struct {
	Kind SpanKind `json:"kind,omitempty"`
	Text string   `json:"text,omitempty"`
	ID   string   `json:"id,omitempty"`
	URL  string   `json:"url,omitempty"`
}

// Text is what the core tells someone, as a sequence of spans; a chat
// adapter renders it in its own markup (the console as plain text). Times
// are rendered by the core ("12 min ago"): they are words of the moment the
// text was decided, not of the moment it is shown.
type Text []Span

// Plain is a span of text shown as it is.
func Plain(s string) Span { return Span{Text: Neutralise(s)} }

// Person is a span naming a user by ID, or "nobody" for no ID.
func Person(id string) Span {
	switch id {
	case "":
		return Plain("nobody")
	case ActorCI:
		return Plain("CI") // the intake's actor is no chat user to mention
	}
	return Span{Kind: SpanPerson, ID: Neutralise(id)}
}

// ChannelRef is a span naming a channel by ID, or "the release channel" for
// no ID.
func ChannelRef(id string) Span {
	if id == "" {
		return Plain("the release channel")
	}
	return Span{Kind: SpanChannel, ID: Neutralise(id)}
}

// TicketRef is a span naming the ticket of r, linked to the tracker when its
// URL is an http(s) link with nothing that could break out of a link.
func TicketRef(r Release) Span {
	s := Span{Kind: SpanTicket, Text: Neutralise(r.Ticket)}
	if (strings.HasPrefix(r.URL, "https://") || strings.HasPrefix(r.URL, "http://")) &&
		!strings.ContainsAny(r.URL, "<>|& \t\n") && strings.IndexFunc(r.URL, unsafeRune) < 0 {
		s.URL = r.URL
	}
	return s
}

// Component is a span naming a component.
func Component(name string) Span { return Span{Kind: SpanComponent, Text: Neutralise(name)} }

// Code is a span quoting s inline as code.
func Code(s string) Span { return Span{Kind: SpanCode, Text: Neutralise(s)} }

// Output is a span showing s, a program's output, as a block of its own lines.
func Output(s string) Span { return Span{Kind: SpanOutput, Text: Neutralise(s)} }

// Icon is a span showing the icon of that name ("warning", "rotating_light").
func Icon(name string) Span { return Span{Kind: SpanIcon, Text: name} }

// say builds a Text from a format of the core's own words: the format's
// literal text becomes plain spans; an argument that is a Span or a Text is
// inserted as it is, any other is formatted with its verb into a plain span.
// The format is never user text; user text is always an argument.
func say(format string, args ...any) Text { return Text(nil).say(format, args...) }

// say appends say(format, args...) to t. Like add, it may reuse t's array.
func (t Text) say(format string, args ...any) Text {
	w := textWriter{t: t}
	w.continuePlain()
	w.say(format, args...)
	return w.text()
}

// A textWriter builds a Text a piece at a time. It writes a plain run into
// one buffer however many pieces make it, and makes it a span only when a
// span of another kind follows or the text is done: a queue reply of a
// hundred releases is a few hundred runs of a dozen pieces each, and
// building each piece as a Text of its own and joining them was most of the
// queue command's CPU.
type textWriter struct {
	t   Text
	run strings.Builder // the plain run being written: neutral already
}

// text returns what w wrote. w is not used after.
func (w *textWriter) text() Text {
	w.flush()
	return w.t
}

// flush ends the plain run being written.
func (w *textWriter) flush() {
	if w.run.Len() > 0 {
		w.t = append(w.t, Span{Text: w.run.String()})
		w.run = strings.Builder{}
	}
}

// continuePlain moves the plain span w's text ends with, if any, into the
// run, so that what w writes next joins it.
func (w *textWriter) continuePlain() {
	if n := len(w.t); n > 0 && w.t[n-1].Kind == SpanPlain && w.run.Len() == 0 {
		w.run.Grow(len(w.t[n-1].Text) + 48)
		w.run.WriteString(w.t[n-1].Text)
		w.t = w.t[:n-1]
	}
}

// words writes the core's own words (neutral: no user text) to the run.
func (w *textWriter) words(s string) {
	if s != "" {
		w.grow(len(s))
		w.run.WriteString(s)
	}
}

// grow sizes an empty run for n bytes and what usually follows: one
// allocation for most runs, not one per doubling.
func (w *textWriter) grow(n int) {
	if w.run.Len() == 0 {
		w.run.Grow(n + 48)
	}
}

// int writes n in decimal to the run.
func (w *textWriter) int(n int) {
	var buf [20]byte
	w.grow(len(buf))
	w.run.Write(strconv.AppendInt(buf[:0], int64(n), 10))
}

// plain writes s, any text, to the run, neutralised.
func (w *textWriter) plain(s string) { w.words(Neutralise(s)) }

// add writes spans: a plain one joins the run.
func (w *textWriter) add(spans ...Span) {
	for _, s := range spans {
		switch {
		case s.Kind != SpanPlain:
			w.flush()
			w.t = append(w.t, s)
		case s.Text != "":
			w.words(s.Text) // neutralised by its constructor
		}
	}
}

// say writes say(format, args...): the format's literal text, and each
// argument (a Span or Text as it is, a string, State or int without fmt,
// anything else with fmt and its verb) neutralised.
func (w *textWriter) say(format string, args ...any) {
	next := 0
	lit := 0 // the start of the format's literal text not written yet
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			continue
		}
		w.words(format[lit:i])
		if format[i+1] == '%' {
			w.words("%")
			i++
			lit = i + 1
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("+-# 0123456789.", format[j]) >= 0 {
			j++
		}
		if j == len(format) {
			lit = i
			break
		}
		verb := format[i : j+1]
		i = j
		lit = j + 1
		if next >= len(args) {
			w.words(verb) // no argument: the verb stays, visible
			continue
		}
		arg := args[next]
		next++
		plainVerb := verb == "%s" || verb == "%v"
		switch a := arg.(type) {
		case Span:
			w.add(a)
		case Text:
			w.add(a...)
		case string:
			if plainVerb {
				w.plain(a)
			} else {
				w.plain(fmt.Sprintf(verb, a))
			}
		case State:
			if plainVerb {
				w.plain(string(a))
			} else {
				w.plain(fmt.Sprintf(verb, a))
			}
		case int:
			if verb == "%d" || verb == "%v" {
				w.int(a)
			} else {
				w.plain(fmt.Sprintf(verb, a))
			}
		default:
			w.plain(fmt.Sprintf(verb, a))
		}
	}
	if lit < len(format) {
		w.words(format[lit:])
	}
}

// plain appends s as a plain span, joined to a plain span before it.
func (t Text) plain(s string) Text {
	if s == "" {
		return t
	}
	return t.add(Plain(s))
}

// add appends spans, joining adjacent plain spans so that a Text has one
// span per run. Like append, it may reuse t's array (a joined run changes
// t's last span in place): use its result, never t again. Copying t on
// every join instead made building a long text quadratic (the queue of
// 1,000 open releases took 26% of the bot's CPU in BenchmarkMentions).
func (t Text) add(spans ...Span) Text {
	for _, s := range spans {
		if s.Kind == SpanPlain && s.Text == "" {
			continue
		}
		if n := len(t); n > 0 && s.Kind == SpanPlain && t[n-1].Kind == SpanPlain {
			t[n-1].Text += s.Text
			continue
		}
		t = append(t, s)
	}
	return t
}

// String renders t as plain text without any markup: a person as @ID, a
// channel as #ID, a ticket as its key, code in backticks. It is for logs,
// error messages and the audit log, never for a chat.
func (t Text) String() string {
	var b strings.Builder
	for _, s := range t {
		switch s.Kind {
		case SpanPerson:
			b.WriteString("@" + s.ID)
		case SpanChannel:
			b.WriteString("#" + s.ID)
		case SpanCode:
			b.WriteString("`" + s.Text + "`")
		case SpanOutput:
			b.WriteString("\n```\n" + s.Text + "\n```")
		case SpanIcon:
			b.WriteString(":" + s.Text + ":")
		default:
			b.WriteString(s.Text)
		}
	}
	return b.String()
}

// firstLine is t up to its first line break; an output block starts one.
func (t Text) firstLine() Text {
	var out Text
	for _, s := range t {
		if s.Kind == SpanOutput {
			return out
		}
		if s.Kind == SpanPlain {
			if line, _, cut := strings.Cut(s.Text, "\n"); cut {
				return out.plain(line)
			}
		}
		out = out.add(s)
	}
	return out
}

// capitalize upper-cases the first letter of t when it is a-z in plain text
// or a component's name, which starts a sentence there.
func (t Text) capitalize() Text {
	if len(t) == 0 || (t[0].Kind != SpanPlain && t[0].Kind != SpanComponent) {
		return t
	}
	first := t[0]
	first.Text = capitalize(first.Text)
	return append(Text{first}, t[1:]...)
}

// withFirstLine is t with more inserted at the end of its first line.
func (t Text) withFirstLine(more Text) Text {
	var out Text
	for i, s := range t {
		if s.Kind == SpanOutput {
			return out.add(more...).add(t[i:]...)
		}
		if s.Kind == SpanPlain {
			if line, rest, cut := strings.Cut(s.Text, "\n"); cut {
				return out.plain(line).add(more...).plain("\n" + rest).add(t[i+1:]...)
			}
		}
		out = out.add(s)
	}
	return out.add(more...)
}
