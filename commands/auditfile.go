package commands

import (
	"strings"
	"time"
)

// The audit command: an admin asks for the audit log as a file, which the
// chat adapter writes out (Slack uploads it into the admin's DM with the
// bot; the console writes it to a file). The core decides who may and
// where; the adapter streams the entries, so a long log never sits in
// memory or in the outbox.

// EffectFile sends User the export of the audit log that Export describes,
// as a file, with Text as its comment: in Slack, uploaded into the bot's DM
// with User.
const EffectFile EffectKind = "file"

// The formats an audit export is written in, as `dobrobot audit export`
// writes them.
const (
	AuditCSV   = "csv"
	AuditJSONL = "jsonl"
)

// AuditExport is what an audit command asks for: the entries Filter
// selects, written in Format.
type AuditExport struct {
	Format string    `json:"format"` // AuditCSV or AuditJSONL
	Since  time.Time `json:"since,omitzero"`
	Until  time.Time `json:"until,omitzero"`
	Ticket string    `json:"ticket,omitempty"`
}

// Filter returns the entries the export selects.
func (x AuditExport) Filter() AuditFilter {
	return AuditFilter{Since: x.Since, Until: x.Until, Ticket: x.Ticket}
}

// FileName is the export's file name: dobrobot-audit-<date>.<format>, the
// date (UTC) of now.
func (x AuditExport) FileName(now time.Time) string {
	return "dobrobot-audit-" + now.UTC().Format(time.DateOnly) + "." + x.Format
}

// auditSyntax is the audit command's grammar, for help and refusals.
const auditSyntax = "audit [--format FORMAT] [since TIME] [until TIME] [TICKET]"

// parseAudit reads the words after audit: format F, since T, until T and
// ticket K, each written with or without a leading "--" and with a space or
// = before its value, and a bare ticket key for ticket K; each at most
// once, in any order. A time is RFC
// 3339 (2026-12-01T09:00:00Z) or a date (2026-12-01, midnight UTC). A
// dash that a chat client turned "--" into (— or –) counts as "--".
func parseAudit(args []string) (Command, error) {
	x := AuditExport{Format: AuditCSV}
	seen := map[string]bool{}
	for i := 0; i < len(args); i++ {
		word := args[i]
		for _, d := range []string{"—", "–"} {
			if rest, ok := strings.CutPrefix(word, d); ok {
				word = "--" + rest
			}
		}
		key, val, hasVal := strings.Cut(word, "=")
		flag := strings.HasPrefix(key, "--")
		name := strings.ToLower(strings.TrimPrefix(key, "--"))
		if !flag && !hasVal {
			if t, ok := TicketKey(word); ok {
				name, val, hasVal = "ticket", t, true
			}
		}
		switch name {
		case "format", "since", "until", "ticket":
		default:
			return Command{}, Errorf(EINVALID, "%s is not part of an audit command: write %s.", quoteArg(args[i]), auditSyntax)
		}
		if seen[name] {
			return Command{}, Errorf(EINVALID, "audit takes %s once: write %s.", name, auditSyntax)
		}
		seen[name] = true
		if !hasVal {
			if i+1 >= len(args) {
				return Command{}, Errorf(EINVALID, "%s needs a value: write %s.", name, auditSyntax)
			}
			i++
			val = args[i]
		}
		switch name {
		case "format":
			f := strings.ToLower(val)
			if f != AuditCSV && f != AuditJSONL {
				return Command{}, Errorf(EINVALID, "%s is not an export format: csv or jsonl.", quoteArg(val))
			}
			x.Format = f
		case "ticket":
			t, ok := TicketKey(val)
			if !ok {
				return Command{}, Errorf(EINVALID, "%s is not a ticket key: write it like PAY-123.", quoteArg(val))
			}
			x.Ticket = t
		default:
			at, ok := auditTime(val)
			if !ok {
				return Command{}, Errorf(EINVALID, "%s is not a time: write it like 2026-12-01 or 2026-12-01T09:00:00Z.", quoteArg(val))
			}
			if name == "since" {
				x.Since = at
			} else {
				x.Until = at
			}
		}
	}
	if !x.Since.IsZero() && !x.Until.IsZero() && !x.Since.Before(x.Until) {
		return Command{}, Errorf(EINVALID, "since must come before until: nothing is at or after %s and before %s.",
			x.Since.Format(time.RFC3339Nano), x.Until.Format(time.RFC3339Nano))
	}
	return Command{Verb: VerbAudit, Export: &x}, nil
}

// auditTime reads an RFC 3339 time or a date (midnight UTC), in UTC.
func auditTime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// auditString renders an audit command as text that parses back to it.
func auditString(x *AuditExport) string {
	parts := []string{string(VerbAudit)}
	if x == nil {
		return parts[0]
	}
	if x.Format != AuditCSV {
		parts = append(parts, "--format", x.Format)
	}
	if !x.Since.IsZero() {
		parts = append(parts, "since", x.Since.UTC().Format(time.RFC3339Nano))
	}
	if !x.Until.IsZero() {
		parts = append(parts, "until", x.Until.UTC().Format(time.RFC3339Nano))
	}
	if x.Ticket != "" {
		parts = append(parts, x.Ticket)
	}
	return strings.Join(parts, " ")
}

// auditExport sends an admin the audit log as a file. Only by DM (or in the
// console): the file goes to the admin alone, and a channel is no place to
// ask for it.
func (r *cmdRun) auditExport() error {
	if err := r.authorize(nil); err != nil {
		return err
	}
	if r.m.Via != ViaDM && r.m.Via != ViaConsole {
		return Errorf(EFORBIDDEN, "I send the audit log only in a direct message: write %s to me in a DM.", auditString(r.cmd.Export))
	}
	x := AuditExport{Format: AuditCSV}
	if r.cmd.Export != nil {
		x = *r.cmd.Export
	}
	text := say("The audit log as %s", strings.ToUpper(x.Format))
	if x.Ticket != "" {
		text = text.say(", entries of %s", x.Ticket)
	}
	if !x.Since.IsZero() {
		text = text.say(", since %s", x.Since.Format(time.RFC3339Nano))
	}
	if !x.Until.IsZero() {
		text = text.say(", before %s", x.Until.Format(time.RFC3339Nano))
	}
	text = text.say(".")
	r.effects = append(r.effects, Effect{Kind: EffectFile, User: r.m.User, Channel: r.m.Channel, Via: r.m.Via, Text: text, Export: &x})
	return nil
}
