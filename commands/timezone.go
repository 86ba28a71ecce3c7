package commands

import "time"

// The layouts of the times the core shows to people. Each names the zone
// (MST is the time package's placeholder for the zone's abbreviation), so
// that "until 09:00" is never read in the reader's own zone by mistake.
const (
	// layoutClock is a time of today or tomorrow: "15:30 CET".
	layoutClock = "15:04 MST"
	// layoutClockSeconds is layoutClock for a moment within a minute.
	layoutClockSeconds = "15:04:05 MST"
	// layoutWeekday is a time within the coming week: "Mon 09:00 CET".
	layoutWeekday = "Mon 15:04 MST"
	// layoutDate is a time further away or in the past: "2026-12-24 18:00 CET".
	layoutDate = "2006-01-02 15:04 MST"
)

// zone returns the configured timezone (Config.Timezone), UTC by default.
func (s *Service) zone() *time.Location {
	if s.cfg.Timezone != nil {
		return s.cfg.Timezone
	}
	return time.UTC
}

// clockAt renders t for people, in the configured timezone with the zone
// named, in layout (one of the layout constants). Every clock time the core
// shows goes through here; stored and audited times stay UTC.
func (s *Service) clockAt(t time.Time, layout string) string {
	return clockIn(t, s.zone(), layout)
}

// clockIn is clockAt for code that is given the zone rather than the
// Service (queueText).
func clockIn(t time.Time, zone *time.Location, layout string) string {
	if zone == nil {
		zone = time.UTC
	}
	return t.In(zone).Format(layout)
}

// whenText renders t, a time near now, as briefly as is still clear: the
// clock within 20 hours, the weekday and clock within six days, else the
// date.
func (s *Service) whenText(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d > -20*time.Hour && d < 20*time.Hour:
		return s.clockAt(t, layoutClock)
	case d > 0 && d < 6*24*time.Hour:
		return s.clockAt(t, layoutWeekday)
	}
	return s.clockAt(t, layoutDate)
}
