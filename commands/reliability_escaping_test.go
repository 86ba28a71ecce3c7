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
// wrote, what the core tells Slack carries no unescaped <, > or &, and never
// turns into <!channel>, <!here> or a mention. The only markup in a reply is
// the bot's own: mentions of the people involved, ticket links and the
// release channel.

var (
	ticketLinkRE = regexp.MustCompile(`^<https://jira\.example\.com/browse/([A-Z][A-Z0-9]+-[0-9]+)\|([A-Z][A-Z0-9]+-[0-9]+)>$`)
	userRefRE    = regexp.MustCompile(`^<@([UW][A-Z0-9]+)>$`)
	channelRefRE = regexp.MustCompile(`^<#C[A-Z0-9]+>$`)
)

// markupProblems returns every piece of s that is neither plain text with
// &, < and > escaped nor the bot's own markup: a mention of one of users, a
// tracker link whose label is its key, or a channel reference.
func markupProblems(s string, users []string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '<':
			j := strings.IndexByte(s[i:], '>')
			if j < 0 {
				out = append(out, fmt.Sprintf("unclosed < in %q", excerpt(s, i)))
				continue
			}
			tok := s[i : i+j+1]
			if m := userRefRE.FindStringSubmatch(tok); m != nil && slices.Contains(users, m[1]) {
				i += j
				continue
			}
			if m := ticketLinkRE.FindStringSubmatch(tok); m != nil && m[1] == m[2] {
				i += j
				continue
			}
			if channelRefRE.MatchString(tok) {
				i += j
				continue
			}
			out = append(out, fmt.Sprintf("markup %q in %q", tok, excerpt(s, i)))
			i += j
		case '>':
			out = append(out, fmt.Sprintf("unescaped > in %q", excerpt(s, i)))
		case '&':
			rest := s[i:]
			if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
				out = append(out, fmt.Sprintf("unescaped & in %q", excerpt(s, i)))
			}
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
	h.svc.Hooks.Start = resultExec{failing}

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
		texts := []string{e.Text}
		if e.Release != nil {
			texts = append(texts, commands.CardText(*e.Release, h.now))
		}
		for _, b := range e.Buttons {
			texts = append(texts, b.Label)
		}
		for _, text := range texts {
			checked++
			for _, p := range markupProblems(text, users) {
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
// with nothing but the bot's own markup.
func FuzzOutputEscaping(f *testing.F) {
	for _, s := range hostileTexts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, x string) {
		r := commands.Release{ID: 1, Ticket: "PAY-1", Summary: x, Note: commands.Clean(x), Reason: x, URL: x,
			State: commands.StateFailed, Requester: ann, Approver: approver, Components: []string{x, "backend"}, Locks: []string{"backend"},
			Running: &commands.HookRun{Phase: commands.PhaseStart, Since: time.Unix(0, 0)}}
		for _, text := range []string{commands.CardText(r, time.Unix(60, 0)), commands.Escape(x), commands.Escape(commands.PlainText(x)), commands.TicketRef(r)} {
			if p := markupProblems(text, []string{ann, approver}); len(p) > 0 {
				t.Fatalf("%q: %v", x, p)
			}
		}
		// Escape also neutralises control and bidirectional characters
		// (issue 12, item 11), so its entities reverse to the neutralised
		// text, not always to x itself.
		if got := commands.Unescape(commands.Escape(x)); got != commands.Neutralise(x) {
			t.Fatalf("Unescape(Escape(%q)) = %q, want Neutralise's %q", x, got, commands.Neutralise(x))
		}
		if commands.Neutralise(commands.Neutralise(x)) != commands.Neutralise(x) {
			t.Fatalf("Neutralise(%q) is not stable", x)
		}
	})
}
