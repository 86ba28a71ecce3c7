package commands_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// Output escaping (RELIABILITY.md T53): whatever a user or the tracker
// wrote, it reaches the chat adapters only in spans they escape: plain text,
// a component's name, code or a program's output. The spans that become
// markup are the core's own: mentions of the people involved, ticket links
// to the tracker, the release channel and icons. How an adapter escapes
// (Slack's entities) is tested in bot.

var (
	ticketKeyRE = regexp.MustCompile(`^[A-Z][A-Z0-9]+-[0-9]+$`)
	channelRE   = regexp.MustCompile(`^C[A-Z0-9]+$`)
	iconRE      = regexp.MustCompile(`^[a-z_]+$`)
)

// spanProblems returns every span of t that could carry user text into
// markup: a person who is not one of users, a ticket whose key is not a key
// or whose link is not the tracker's link to that key, a channel or icon
// that is not one of the core's, or any span holding a control character.
func spanProblems(t commands.Text, users []string) []string {
	var out []string
	for _, s := range t {
		if commands.Neutralise(s.Text) != s.Text || commands.Neutralise(s.ID) != s.ID {
			out = append(out, fmt.Sprintf("control character in %+v", s))
		}
		switch s.Kind {
		case commands.SpanPlain, commands.SpanComponent, commands.SpanCode, commands.SpanOutput:
			if s.ID != "" || s.URL != "" {
				out = append(out, fmt.Sprintf("text span with an ID or URL: %+v", s))
			}
		case commands.SpanPerson:
			if !slices.Contains(users, s.ID) {
				out = append(out, fmt.Sprintf("mention of %q", s.ID))
			}
		case commands.SpanTicket:
			if !ticketKeyRE.MatchString(s.Text) || (s.URL != "" && s.URL != "https://jira.example.com/browse/"+s.Text) {
				out = append(out, fmt.Sprintf("ticket link %+v", s))
			}
		case commands.SpanChannel:
			if !channelRE.MatchString(s.ID) {
				out = append(out, fmt.Sprintf("channel %q", s.ID))
			}
		case commands.SpanIcon:
			if !iconRE.MatchString(s.Text) {
				out = append(out, fmt.Sprintf("icon %q", s.Text))
			}
		default:
			out = append(out, fmt.Sprintf("span of unknown kind %+v", s))
		}
	}
	return out
}

func excerpt(s string, i int) string {
	return s[max(0, i-30):min(len(s), i+40)]
}

// hostileTexts is what users and trackers may write to make the bot ping a
// channel, mention someone or link somewhere, raw and in Slack's escaped
// form.
var hostileTexts = []string{
	"<!channel>", "<!here>", "<!everyone>", "<!subteam^S0QA|@qa>", "<@U0EVIL>", "<@W0EVIL|admin>",
	"<#C0OTHER|general>", "<https://evil.example|click me>", "<mailto:a@evil.example>", "<tel:123>",
	"&lt;!channel&gt;", "&amp;lt;!here&amp;gt;", "&lt;@U0EVIL&gt;", "a & b", "a < b > c", "<<!channel>>",
	"<!channel", "!here>", "&", "&amp", "&#60;!channel&#62;", "<", ">", "\u202e<!here>", "<\n!channel>",
	"<<@U0EVIL>>", "<<!here>>", "*bold* _it_ `code` ```block```", "<@U0EVIL> " + strings.Repeat("&<>", 700),
}

func TestOutputEscapingEveryCommand(t *testing.T) {
	h := newHarness(t)
	users := []string{ann, bob, approver, qa, admin, guest}
	hostile := strings.Join(hostileTexts, " ")
	clip := func(s string) string { return s[:min(len(s), commands.MaxText-100)] }
	// The tracker's every field, and the hook's output and error.
	evil := readyTicket("PAY-7", "backend")
	evil.Summary, evil.Assignee, evil.Components = hostile, hostile, append(slices.Clone(hostileTexts), "backend")
	h.tracker.tickets["PAY-7"] = evil
	bad := readyTicket("PAY-8", "backend")
	bad.Status, bad.Project = hostile, "<!here>"
	h.tracker.tickets["PAY-8"] = bad
	failing := commands.HookResult{ExitCode: 1, Error: "exited <!channel> & <@U0EVIL>", Output: hostile}
	h.rebuild(func(c *commands.Config) { c.Hooks.Start = resultExec{failing} })

	var effects []commands.Effect
	say := func(user, text string) {
		effects = append(effects, h.say(user, text)...)
		h.now = h.now.Add(time.Minute)
	}
	for _, x := range hostileTexts {
		say(ann, "dobro PAY-7 "+x)
		say(ann, "cancel PAY-7 "+x)
		say(bob, "dobro PAY-2 "+x+" no_need_admin")
		say(approver, "reject PAY-2 "+x)
		say(admin, "lock ios "+x)
		say(guest, "queue")
		say(admin, "unlock ios")
		say(guest, x)
		say(guest, "dobro "+x)
	}
	say(ann, "dobro PAY-8")
	// Parse refuses a bidirectional override (issue 12, item 11): what
	// users type from here on leaves it out; the tracker and the hook
	// still carry it.
	said := strings.ReplaceAll(hostile, "\u202e", "")
	say(ann, "dobro PAY-7 "+clip(said)+" no_need_admin")
	say(approver, "accept PAY-7")
	say(ann, "dep start PAY-7")
	say(admin, "lock payments "+clip(said))
	for _, text := range []string{"queue", "status PAY-7", "log PAY-7", "history", "history PAY-7", "help"} {
		say(guest, text)
	}
	say(admin, "cancel PAY-7 "+clip(said))

	checked := 0
	for _, e := range effects {
		texts := []commands.Text{e.Text}
		if e.Release != nil {
			texts = append(texts, commands.CardText(*e.Release, h.now))
		}
		for _, b := range e.Buttons {
			texts = append(texts, commands.Text{commands.Plain(b.Label)})
		}
		for _, text := range texts {
			checked++
			for _, p := range spanProblems(text, users) {
				t.Errorf("%s effect to %s: %s", e.Kind, e.User, p)
			}
		}
	}
	if h.release("PAY-7").LastHook == nil || !strings.Contains(h.release("PAY-7").LastHook.Output, "<!channel>") {
		t.Fatal("the hook's hostile output was not recorded: the test proves nothing")
	}
	t.Logf("FIGURE escaping (core): %d hostile strings through every free-text field, the tracker and a hook: %d effect texts checked, 0 unescaped", len(hostileTexts), checked)
}

// resultExec is a hook that returns the same result every time.
type resultExec struct{ res commands.HookResult }

func (e resultExec) Run(_ context.Context, _ commands.Job) commands.HookResult { return e.res }

// FuzzOutputEscaping: any text in any field of a release renders to a card
// whose user text is only ever in spans the adapters escape.
func FuzzOutputEscaping(f *testing.F) {
	for _, s := range hostileTexts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, x string) {
		r := commands.Release{ID: 1, Ticket: "PAY-1", Summary: x, Note: commands.Clean(x), Reason: x, URL: x,
			State: commands.StateFailed, Requester: ann, Approver: approver, Components: []string{x, "backend"}, Locks: []string{"backend"},
			Running: &commands.HookRun{Phase: commands.PhaseStart, Since: time.Unix(0, 0)}}
		for _, text := range []commands.Text{commands.CardText(r, time.Unix(60, 0)), {commands.Plain(x)}, {commands.TicketRef(r)}} {
			if p := spanProblems(text, []string{ann, approver}); len(p) > 0 {
				t.Fatalf("%q: %v", x, p)
			}
		}
		if commands.Neutralise(commands.Neutralise(x)) != commands.Neutralise(x) {
			t.Fatalf("Neutralise(%q) is not stable", x)
		}
	})
}
