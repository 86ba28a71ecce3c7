package commands

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSay: the format's words become plain spans, joined; a Span or Text
// argument is inserted as it is, any other formatted with its verb.
func TestSay(t *testing.T) {
	rel := Release{Ticket: "PAY-1", URL: "https://jira.example.com/browse/PAY-1"}
	got := say("%v asks for dobro: %v — %s (#%d, 100%%).%v", Person("U1"), TicketRef(rel), "<b>", 2, Text{Plain(" x"), Icon("warning")})
	want := Text{
		{Kind: SpanPerson, ID: "U1"},
		{Text: " asks for dobro: "},
		{Kind: SpanTicket, Text: "PAY-1", URL: "https://jira.example.com/browse/PAY-1"},
		{Text: " — <b> (#2, 100%). x"},
		{Kind: SpanIcon, Text: "warning"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("say (-want +got):\n%s", diff)
	}
	if s := got.String(); s != "@U1 asks for dobro: PAY-1 — <b> (#2, 100%). x:warning:" {
		t.Errorf("String() = %q", s)
	}
}

func TestTextLines(t *testing.T) {
	h := say("start hook failed: %s", "exit 1\nmore").add(Output("log"))
	if got := h.firstLine().String(); got != "start hook failed: exit 1" {
		t.Errorf("firstLine = %q", got)
	}
	if got := h.withFirstLine(say("; freed %s.", "backend")).String(); got != "start hook failed: exit 1; freed backend.\nmore\n```\nlog\n```" {
		t.Errorf("withFirstLine = %q", got)
	}
	if got := say("%v is locked", Component("backend")).capitalize().String(); got != "Backend is locked" {
		t.Errorf("capitalize = %q", got)
	}
	if got := (Text{Plain("a\x00b\u202e")}).String(); got != "a\uFFFDb\uFFFD" {
		t.Errorf("Plain does not neutralise: %q", got)
	}
}

// FuzzSay: with string, int and Span arguments, say's text reads as fmt
// formats it, each argument neutralised (the format is the core's own
// words, taken as they are), a second say joins the first's last run, and
// no two plain spans stand next to each other.
func FuzzSay(f *testing.F) {
	f.Add("PAY-1 — ", " waits ", 3)
	f.Add("100%", "\u202e<b>", -1)
	f.Add("", "", 0)
	f.Fuzz(func(t *testing.T, a, b string, n int) {
		esc := func(s string) string { return strings.ReplaceAll(s, "%", "%%") }
		format := esc(a) + "%s" + esc(b) + "%d%% %v"
		got := say(format, b, n, Person("U1")).say(" and %s", a)
		want := a + Neutralise(b) + b + fmt.Sprint(n) + "% @U1 and " + Neutralise(a)
		if got.String() != want {
			t.Errorf("say(%q) = %q, want %q", format, got.String(), want)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Kind == SpanPlain && got[i-1].Kind == SpanPlain {
				t.Errorf("plain spans %d and %d stand apart: %#v", i-1, i, got)
			}
		}
	})
}
