package commands

import "time"

// QuietHours are the hours in which no reminder is sent (reminders.
// quiet_hours): one that falls due inside them is held and sent when they
// end. From and To are wall-clock times of day in Zone (nil: UTC), as
// offsets from midnight; From after To spans midnight (20:00 to 09:00).
// Equal From and To and no Weekends: never quiet.
type QuietHours struct {
	From, To time.Duration
	Zone     *time.Location
	// Weekends makes the whole of Saturday and Sunday in Zone quiet too.
	Weekends bool
}

// quietMaxHops bounds the jumps of hold: a night, a weekend, the night
// after it, with room to spare; a configuration cannot make it loop.
const quietMaxHops = 8

// hold returns when a reminder due at t may be sent: t itself (held
// false) outside the quiet hours, else their end. Each end is computed on
// the wall clock of Zone for its own day, so a DST change in the night
// moves the end in UTC as the clocks move (09:00 is 09:00 on both sides).
func (q QuietHours) hold(t time.Time) (time.Time, bool) {
	zone := q.Zone
	if zone == nil {
		zone = time.UTC
	}
	held := false
	for range quietMaxHops {
		end, ok := q.endOf(t.In(zone), zone)
		if !ok {
			break
		}
		t, held = end, true
	}
	return t, held
}

// endOf returns the end of the quiet period local is in, if it is in one.
func (q QuietHours) endOf(local time.Time, zone *time.Location) (time.Time, bool) {
	y, m, d := local.Date()
	at := func(day int, clock time.Duration) time.Time {
		return time.Date(y, m, d+day, int(clock/time.Hour), int(clock%time.Hour/time.Minute), 0, 0, zone)
	}
	if q.Weekends {
		switch local.Weekday() {
		case time.Saturday:
			return at(2, 0), true
		case time.Sunday:
			return at(1, 0), true
		}
	}
	clock := time.Duration(local.Hour())*time.Hour + time.Duration(local.Minute())*time.Minute + time.Duration(local.Second())*time.Second + time.Duration(local.Nanosecond())
	switch {
	case q.From == q.To:
		return time.Time{}, false
	case q.From < q.To && clock >= q.From && clock < q.To:
		return at(0, q.To), true
	case q.From > q.To && clock >= q.From:
		return at(1, q.To), true
	case q.From > q.To && clock < q.To:
		return at(0, q.To), true
	}
	return time.Time{}, false
}

// quietly wraps a reminder kind's fire: inside the quiet hours the
// reminder is not sent but moved, with its count, to their end; firing it
// then sends it (and counts the next repeat from then).
func quietly(fire func(*firing, Release, Due) (*Due, error)) func(*firing, Release, Due) (*Due, error) {
	return func(f *firing, rel Release, d Due) (*Due, error) {
		if at, held := f.s.cfg.Reminders.Quiet.hold(f.now); held {
			f.s.cfg.Log.Debug().Str("kind", string(d.Kind)).Str("ticket", rel.Ticket).Time("until", at).Msg("a reminder in the quiet hours: held")
			return &Due{At: at, Guard: d.Guard, Repeat: d.Repeat}, nil
		}
		return fire(f, rel, d)
	}
}
