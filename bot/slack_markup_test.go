package bot

import (
	"strings"
	"testing"
)

// TestWriteEscaped: writeEscaped writes exactly escape(s), whether s needs
// nothing (ASCII, or multi-byte runes such as "—"), an entity, or
// neutralising (a control or bidirectional character, even in a span built
// without a constructor).
func TestWriteEscaped(t *testing.T) {
	for _, s := range []string{
		"", "plain words", "PAY-1 — queued — waiting 3 min", "naïve café ✓",
		"<@U01> & <!channel>", "a\u202eb — c", "tab\tand\nline", "bell\a", "del\x7f", "c1\u0085",
		"isolate\u2066x\u2069", "invalid \xff byte", "—<—",
	} {
		var b strings.Builder
		writeEscaped(&b, s)
		if got, want := b.String(), escape(s); got != want {
			t.Errorf("writeEscaped(%q) = %q, want escape's %q", s, got, want)
		}
	}
}

// FuzzWriteEscaped: for any string, writeEscaped writes what escape
// returns (its fast path may skip work, never change the result).
func FuzzWriteEscaped(f *testing.F) {
	for _, s := range []string{"PAY-1 — queued", "<@U01>", "a\u202eb", "c1\u0085", "\xff", "—&—"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b strings.Builder
		writeEscaped(&b, s)
		if got, want := b.String(), escape(s); got != want {
			t.Errorf("writeEscaped(%q) = %q, want escape's %q", s, got, want)
		}
	})
}
