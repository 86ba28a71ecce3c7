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
// It writes into t directly, and formats a string or an int without fmt:
// a queue reply of 20 releases calls it about a hundred times, and the
// intermediate Text and fmt's strings were most of its cost.
func (t Text) say(format string, args ...any) Text {
	// lit is the plain run being written: it goes on from the plain span t
	// ends with, so that a run is one string built once rather than joined
	// (copied again) at every call. Everything written into it is neutral
	// already: the format is the core's own words, and each argument is
	// neutralised as it is written.
	var lit strings.Builder
	t = t.continuePlain(&lit)
	// grow sizes an empty run for the rest of the format and an argument or
	// two: one allocation for most runs instead of one per doubling.
	grow := func(rest int) {
		if lit.Len() == 0 && rest > 0 {
			lit.Grow(rest + 32)
		}
	}
	grow(len(format))
	flush := func() {
		if lit.Len() > 0 {
			t = append(t, Span{Text: lit.String()})
			lit = strings.Builder{}
		}
	}
	next := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 == len(format) {
			lit.WriteByte(c)
			continue
		}
		if format[i+1] == '%' {
			lit.WriteByte('%')
			i++
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("+-# 0123456789.", format[j]) >= 0 {
			j++
		}
		if j == len(format) {
			lit.WriteString(format[i:])
			break
		}
		verb := format[i : j+1]
		i = j
		if next >= len(args) {
			lit.WriteString(verb) // no argument: the verb stays, visible
			continue
		}
		arg := args[next]
		next++
		switch a := arg.(type) {
		case Span:
			flush()
			t = t.add(a).continuePlain(&lit)
			grow(len(format) - i - 1)
		case Text:
			flush()
			t = t.add(a...).continuePlain(&lit)
			grow(len(format) - i - 1)
		case string:
			if verb == "%s" || verb == "%v" {
				lit.WriteString(Neutralise(a))
			} else {
				lit.WriteString(Neutralise(fmt.Sprintf(verb, a)))
			}
		case State:
			if verb == "%s" || verb == "%v" {
				lit.WriteString(Neutralise(string(a)))
			} else {
				lit.WriteString(Neutralise(fmt.Sprintf(verb, a)))
			}
		case int:
			if verb == "%d" || verb == "%v" {
				var buf [20]byte
				lit.Write(strconv.AppendInt(buf[:0], int64(a), 10))
			} else {
				lit.WriteString(Neutralise(fmt.Sprintf(verb, a)))
			}
		default:
			lit.WriteString(Neutralise(fmt.Sprintf(verb, a)))
		}
	}
	flush()
	return t
}

// continuePlain moves the plain span t ends with, if any, into lit (empty),
// so that the text say writes next joins it; a plain argument of say ends
// that way.
func (t Text) continuePlain(lit *strings.Builder) Text {
	if n := len(t); n > 0 && t[n-1].Kind == SpanPlain {
		lit.Grow(len(t[n-1].Text) + 48)
		lit.WriteString(t[n-1].Text)
		return t[:n-1]
	}
	return t
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
