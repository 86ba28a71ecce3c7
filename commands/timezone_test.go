package commands_test

import (
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// TestTimesInTimezone: the times the core shows are in the configured
// timezone with the zone named, in winter and in summer; the audit log
// keeps UTC.
func TestTimesInTimezone(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"winter", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), "requested 2026-11-22 11:00 CET by"},
		{"summer", time.Date(2027, 6, 7, 10, 0, 0, 0, time.UTC), "requested 2027-06-07 12:00 CEST by"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.now = tc.at
			h.rebuild(func(c *commands.Config) { c.Timezone = berlin })
			h.script([]step{
				{ann, "dobro PAY-2", []string{"in the queue"}},
				{guest, "history PAY-2", []string{tc.want}},
			})
			var first commands.AuditEntry
			if err := h.db.Audit(t.Context(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
				if first.Seq == 0 {
					first = e
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if first.Time.Location() != time.UTC || !first.Time.Equal(tc.at) {
				t.Errorf("audit time %v; want %v in UTC", first.Time, tc.at)
			}
		})
	}
}
