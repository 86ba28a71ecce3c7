package commands_test

import (
	"strings"
	"testing"
)

// TestHistoryInEnv: history TICKET in ENV lists only that environment's
// releases of the ticket; without in, every environment's.
func TestHistoryInEnv(t *testing.T) {
	h, _ := envHarness(t)
	h.script([]step{
		{ann, "dobro PAY-1 to qa version 2.4.0", []string{"accepted"}},
		{ann, "dep start PAY-1", []string{"started"}},
		{ann, "dep finish PAY-1", []string{"done"}},
		{ann, "promote PAY-1", []string{"Promoted"}},
	})
	tests := []struct {
		text       string
		has, lacks []string
	}{
		{"history PAY-1 in qa", []string{"Releases of PAY-1 in qa, newest first:", "PAY-1> in qa, version 2.4.0 — done"}, []string{"in production"}},
		{"history PAY-1 in production", []string{"Releases of PAY-1 in production, newest first:", "PAY-1> in production, version 2.4.0 — requested"}, []string{"in qa"}},
		{"history PAY-1", []string{"in qa, version 2.4.0 — done", "in production, version 2.4.0 — requested"}, nil},
		{"history PAY-2 in qa", []string{"PAY-2 has never been requested in qa."}, nil},
	}
	for _, tt := range tests {
		got := reply(h.say(guest, tt.text))
		for _, w := range tt.has {
			if !strings.Contains(got, w) {
				t.Errorf("%s: reply %q lacks %q", tt.text, got, w)
			}
		}
		for _, w := range tt.lacks {
			if strings.Contains(got, w) {
				t.Errorf("%s: reply %q says %q", tt.text, got, w)
			}
		}
	}
}
