package commands

import "time"

// RealClock returns the Clock of the time package, which production uses.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// funcClock is the fallback for a Config that sets Now and no Clock: its
// time is Now's, its timers the time package's. It keeps the tests written
// before the Clock port working unchanged; a test that needs timers sets
// Clock.
type funcClock func() time.Time

func (f funcClock) Now() time.Time { return f() }

func (funcClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	return realClock{}.Timer(d)
}

// clockOf returns the Clock c asks for: Clock, else Now wrapped, else the
// real one.
func clockOf(c Config) Clock {
	switch {
	case c.Clock != nil:
		return c.Clock
	case c.Now != nil:
		return funcClock(c.Now)
	}
	return RealClock()
}
