package commands_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// unsafeChars are the characters issue 12 (item 11) names: C0 and C1
// controls, DEL, and the bidirectional embeddings, overrides and isolates,
// which can hide or reorder text in the audit log, a terminal or a reply.
var unsafeChars = []rune{
	0x00, 0x01, 0x07, 0x08, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f, 0x80, 0x85, 0x9b, 0x9f,
	0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069,
}

// hasUnsafe returns the first character of s that must not be stored or
// echoed as is (line breaks and tabs may stand in hook output).
func hasUnsafe(s string) (rune, bool) {
	for _, r := range s {
		if r == '\n' || r == '\t' {
			continue
		}
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return r, true
		}
	}
	return 0, false
}

// TestControlCharactersRefusedOrNeutralised (issue 12, item 11): in every
// free-text field a user writes (dobro's note, reject's, cancel's and lock's
// reason) each of these characters is refused with a message naming it as
// U+XXXX, and nothing changes; from the tracker (a ticket's summary, status
// or component) they are neutralised: neither the release, the audit log nor
// any reply or card carries them.
func TestControlCharactersRefusedOrNeutralised(t *testing.T) {
	h := newHarness(t)
	h.script([]step{
		{bob, "dobro PAY-4", []string{"in the queue"}},
		{ann, "dobro PAY-2 no_need_admin", []string{"in the queue"}},
	})
	before := h.audit()
	beforeLocks := h.locks()
	refused := 0
	var effects []commands.Effect
	for _, c := range unsafeChars {
		x := "a" + string(c) + "b"
		code := fmt.Sprintf("U+%04X", c)
		// Each by someone allowed to run it, so that only the character
		// stops it.
		for _, cmd := range []struct{ user, text string }{
			{ann, "dobro PAY-1 note " + x},
			{approver, "reject PAY-4 reason " + x},
			{ann, "cancel PAY-2 reason " + x},
			{admin, "lock backend reason " + x},
		} {
			text := cmd.text
			got := h.say(cmd.user, text)
			effects = append(effects, got...)
			if r := reply(got); !strings.Contains(r, code) {
				t.Errorf("%q: reply %q does not name %s", text, r, code)
			}
			refused++
		}
	}
	after := h.audit()
	if diff := cmp.Diff(before, after[:len(before)]); diff != "" {
		t.Errorf("audit rewritten (-before +after):\n%s", diff)
	}
	for _, line := range after[len(before):] {
		if !strings.Contains(line, " refused ") {
			t.Errorf("a refused command left %q in the audit log", line)
		}
	}
	if diff := cmp.Diff(beforeLocks, h.locks()); diff != "" {
		t.Errorf("locks changed (-before +after):\n%s", diff)
	}
	for ticket, want := range map[string]commands.State{"PAY-4": commands.StateRequested, "PAY-2": commands.StateRequested} {
		if rel := h.release(ticket); rel.State != want || rel.Reason != "" {
			t.Errorf("%s is %s (reason %q), want %s", ticket, rel.State, rel.Reason, want)
		}
	}

	// From the tracker: every character in the summary, status and a
	// component, through dobro, status, queue and history.
	var all strings.Builder
	for _, c := range unsafeChars {
		all.WriteString("x" + string(c))
	}
	tk := readyTicket("PAY-3", "backend", "we"+all.String()+"b")
	tk.Summary = "Summary " + all.String()
	h.tracker.tickets["PAY-3"] = tk
	bad := readyTicket("PAY-9", "backend")
	bad.Status = "Open " + all.String()
	h.tracker.tickets["PAY-9"] = bad
	for _, text := range []string{"dobro PAY-3", "dobro PAY-9", "status PAY-3", "queue", "history", "history PAY-3"} {
		effects = append(effects, h.say(ann, text)...)
	}
	rel := h.release("PAY-3")
	if rel.State != commands.StateRequested || !strings.HasPrefix(rel.Summary, "Summary x") {
		t.Fatalf("PAY-3 with a hostile summary: %+v; want it queued", rel)
	}
	for _, f := range append([]string{rel.Summary, rel.Note, rel.Reason}, rel.Components...) {
		if c, ok := hasUnsafe(f); ok {
			t.Errorf("the release stores U+%04X: %q", c, f)
		}
	}
	checked := 0
	for _, e := range effects {
		texts := []string{render(e.Text)}
		if e.Release != nil {
			texts = append(texts, render(commands.CardText(*e.Release, h.now)))
		}
		for _, text := range texts {
			checked++
			if c, ok := hasUnsafe(text); ok {
				t.Errorf("%s effect to %s carries U+%04X: %q", e.Kind, e.User, c, text)
			}
		}
	}
	entries := 0
	if err := h.db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		entries++
		for _, f := range e.Record() {
			if c, ok := hasUnsafe(f); ok {
				t.Errorf("audit entry %d carries U+%04X: %q", e.Seq, c, f)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURE controls: %d characters × 4 free-text fields = %d commands refused naming the character, 0 state changes; tracker text with all of them: %d effect texts and %d audit entries checked, 0 carry one",
		len(unsafeChars), refused, checked, entries)
}

// TestNeutraliseControls: Clean (audit log, stored text) and Plain
// (replies) neutralise the characters whatever their source; Plain keeps
// line breaks and tabs, which hook output needs.
func TestNeutraliseControls(t *testing.T) {
	for _, c := range unsafeChars {
		in := "a" + string(c) + "b\nc\td"
		for name, got := range map[string]string{"Clean": commands.Clean(in), "Plain": commands.Plain(in).Text} {
			if r, ok := hasUnsafe(got); ok {
				t.Errorf("%s(%q) = %q: keeps U+%04X", name, in, got, r)
			}
			if !strings.HasPrefix(got, "a") || !strings.Contains(got, "b") {
				t.Errorf("%s(%q) = %q: lost the text around it", name, in, got)
			}
		}
		if got := commands.Plain(in).Text; !strings.HasSuffix(got, "b\nc\td") {
			t.Errorf("Plain(%q) = %q: want the line break and tab kept", in, got)
		}
	}
}
