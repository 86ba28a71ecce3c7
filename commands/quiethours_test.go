package commands

import (
	"testing"
	"time"
)

// TestQuietHoursHold: the end of the quiet hours is the wall-clock "to"
// of Zone on its own day, so across a DST change it moves in UTC with the
// clocks (Berlin), and not where the zone keeps one offset (Moscow).
func TestQuietHoursHold(t *testing.T) {
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	moscow, berlin := load("Europe/Moscow"), load("Europe/Berlin")
	night := func(zone *time.Location, weekends bool) QuietHours {
		return QuietHours{From: 20 * time.Hour, To: 9 * time.Hour, Zone: zone, Weekends: weekends}
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name     string
		q        QuietHours
		due      string
		want     string
		wantHeld bool
	}{
		{"Moscow, day: sent", night(moscow, false), "2026-03-27T12:00:00Z", "2026-03-27T12:00:00Z", false},
		{"Moscow, just before from: sent", night(moscow, false), "2026-03-27T16:59:59Z", "2026-03-27T16:59:59Z", false},
		{"Moscow, at from: held", night(moscow, false), "2026-03-27T17:00:00Z", "2026-03-28T06:00:00Z", true},
		{"Moscow, after midnight: held", night(moscow, false), "2026-03-27T23:00:00Z", "2026-03-28T06:00:00Z", true},
		{"Moscow, at to: sent", night(moscow, false), "2026-03-28T06:00:00Z", "2026-03-28T06:00:00Z", false},
		{"Moscow, Berlin's spring night: no change", night(moscow, false), "2026-03-28T22:00:00Z", "2026-03-29T06:00:00Z", true},
		{"Moscow, Berlin's autumn night: no change", night(moscow, false), "2026-10-24T22:00:00Z", "2026-10-25T06:00:00Z", true},
		// 2026-03-29 02:00 CET becomes 03:00 CEST: 09:00 that morning is 07:00 UTC, not 08:00.
		{"Berlin, spring forward night", night(berlin, false), "2026-03-28T22:00:00Z", "2026-03-29T07:00:00Z", true},
		{"Berlin, night before spring forward", night(berlin, false), "2026-03-27T22:00:00Z", "2026-03-28T08:00:00Z", true},
		// 2026-10-25 03:00 CEST becomes 02:00 CET: 09:00 that morning is 08:00 UTC, not 07:00.
		{"Berlin, fall back night", night(berlin, false), "2026-10-24T22:00:00Z", "2026-10-25T08:00:00Z", true},
		{"Berlin, in the repeated hour", night(berlin, false), "2026-10-25T00:30:00Z", "2026-10-25T08:00:00Z", true},
		{"Berlin, 20:00 CEST on the fall back eve", night(berlin, false), "2026-10-24T18:00:00Z", "2026-10-25T08:00:00Z", true},
		{"Berlin, 19:59 CEST: sent", night(berlin, false), "2026-10-24T17:59:00Z", "2026-10-24T17:59:00Z", false},
		// Weekends: Friday night runs into Saturday, Sunday, and Monday's early hours.
		{"weekends, Friday night: Monday 09:00", night(moscow, true), "2026-03-27T18:00:00Z", "2026-03-30T06:00:00Z", true},
		{"weekends, Saturday noon: Monday 09:00", night(moscow, true), "2026-03-28T09:00:00Z", "2026-03-30T06:00:00Z", true},
		{"weekends, Berlin Sunday of the change", night(berlin, true), "2026-03-29T12:00:00Z", "2026-03-30T07:00:00Z", true},
		{"no weekends, Saturday noon: sent", night(moscow, false), "2026-03-28T09:00:00Z", "2026-03-28T09:00:00Z", false},
		{"daytime window", QuietHours{From: 12 * time.Hour, To: 14 * time.Hour}, "2026-03-27T13:00:00Z", "2026-03-27T14:00:00Z", true},
		{"daytime window, outside", QuietHours{From: 12 * time.Hour, To: 14 * time.Hour}, "2026-03-27T14:00:00Z", "2026-03-27T14:00:00Z", false},
		{"none configured", QuietHours{}, "2026-03-28T03:00:00Z", "2026-03-28T03:00:00Z", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, held := tt.q.hold(utc(tt.due))
			if !got.Equal(utc(tt.want)) || held != tt.wantHeld {
				t.Errorf("hold(%s) = %s, %v; want %s, %v", tt.due, got.UTC().Format(time.RFC3339), held, tt.want, tt.wantHeld)
			}
		})
	}
}
