package commands_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

func TestParseAudit(t *testing.T) {
	dec1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	nine := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	x := func(format string, since, until time.Time, ticket string) commands.Command {
		return commands.Command{Verb: commands.VerbAudit, Export: &commands.AuditExport{Format: format, Since: since, Until: until, Ticket: ticket}}
	}
	var zero time.Time
	tests := []struct {
		in   string
		want commands.Command
		err  string // a part of the refusal
	}{
		{in: "audit", want: x("csv", zero, zero, "")},
		{in: "AUDIT --format JSONL", want: x("jsonl", zero, zero, "")},
		{in: "audit --format=csv pay-7", want: x("csv", zero, zero, "PAY-7")},
		{in: "audit since 2026-12-01 until 2026-12-01T11:30:00+02:00", want: x("csv", dec1, nine, "")},
		{in: "audit --since=2026-12-01 --ticket #PAY-7 —format jsonl", want: x("jsonl", dec1, zero, "PAY-7")},
		{in: "audit PAY-7 until 2026-12-01T09:30:00Z", want: x("csv", zero, nine, "PAY-7")},
		{in: "audit --format xml", err: `"xml" is not an export format`},
		{in: "audit since yesterday", err: `"yesterday" is not a time`},
		{in: "audit since", err: "since needs a value"},
		{in: "audit PAY-1 PAY-2", err: "audit takes ticket once"},
		{in: "audit --ticket PAY-1;rm", err: `"PAY-1;rm" is not a ticket key`},
		{in: "audit everything", err: `"everything" is not part of an audit command`},
		{in: "audit since 2026-12-02 until 2026-12-01", err: "since must come before until"},
	}
	for _, tt := range tests {
		got, err := commands.Parse(tt.in)
		if tt.err != "" {
			if err == nil || commands.ErrorCode(err) != commands.EINVALID || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) = %+v, %v; want a refusal saying %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
		again, err := commands.Parse(got.String())
		if diff := cmp.Diff(got, again); err != nil || diff != "" {
			t.Errorf("%q renders as %q, which parses as %v (-first +again):\n%s", tt.in, got.String(), err, diff)
		}
	}
}

// TestAuditCommand: only an admin gets the audit log, and only in a DM or
// the console, as an EffectFile naming the export; anywhere else, and to
// anyone else, it is refused with a reason and sends nothing.
func TestAuditCommand(t *testing.T) {
	h := newHarness(t)
	h.say(ann, "dobro PAY-1")
	n := 0
	send := func(user string, via commands.Via, channel, text string) []commands.Effect {
		n++
		return h.deliver(commands.Message{EventID: fmt.Sprintf("audit-%d", n), User: user, Channel: channel, Text: text, Via: via, Time: h.now})
	}
	type outcome struct {
		Kinds  []commands.EffectKind
		Export *commands.AuditExport
		Reply  string
	}
	summary := func(effects []commands.Effect) outcome {
		var o outcome
		for _, e := range effects {
			o.Kinds = append(o.Kinds, e.Kind)
			switch e.Kind {
			case commands.EffectFile:
				o.Export = e.Export
				if e.User != admin {
					t.Errorf("the file goes to %s", e.User)
				}
			case commands.EffectReply:
				o.Reply = render(e.Text)
			}
		}
		return o
	}
	jsonl := &commands.AuditExport{Format: "jsonl", Ticket: "PAY-1"}
	for _, c := range []struct {
		name          string
		user          string
		via           commands.Via
		channel, text string
		want          outcome
	}{
		{"an admin in a DM", admin, commands.ViaDM, "D0ADMIN", "audit --format jsonl PAY-1",
			outcome{Kinds: []commands.EffectKind{commands.EffectFile}, Export: jsonl}},
		{"an admin in the console", admin, commands.ViaConsole, "console", "audit",
			outcome{Kinds: []commands.EffectKind{commands.EffectFile}, Export: &commands.AuditExport{Format: "csv"}}},
		{"an admin in the release channel", admin, commands.ViaMention, "C0REL", "audit --format jsonl PAY-1",
			outcome{Kinds: []commands.EffectKind{commands.EffectReply}, Reply: "I send the audit log only in a direct message: write audit --format jsonl PAY-1 to me in a DM."}},
		{"an admin's slash command in a channel", admin, commands.ViaSlash, "C0ELSE", "audit",
			outcome{Kinds: []commands.EffectKind{commands.EffectReply}, Reply: "I send the audit log only in a direct message: write audit to me in a DM."}},
		{"an approver in a DM", approver, commands.ViaDM, "D0APPROVER", "audit",
			outcome{Kinds: []commands.EffectKind{commands.EffectReply}, Reply: "Only admins can export the audit log: ask one of them."}},
		{"a requester in the channel", ann, commands.ViaMention, "C0REL", "audit",
			outcome{Kinds: []commands.EffectKind{commands.EffectReply}, Reply: "Only admins can export the audit log: ask one of them."}},
	} {
		var before uint64
		_ = h.db.View(t.Context(), func(tx commands.Tx) error { before, _, _ = tx.AuditHead(); return nil })
		got := summary(send(c.user, c.via, c.channel, c.text))
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
		var after uint64
		_ = h.db.View(t.Context(), func(tx commands.Tx) error { after, _, _ = tx.AuditHead(); return nil })
		if after != before {
			t.Errorf("%s: %d audit entries written; reading the log changes nothing", c.name, after-before)
		}
	}
}
