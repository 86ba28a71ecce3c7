// Package clocktest is a fake commands.Clock for tests: time stands still
// until the test moves it, and timers fire as it passes their deadlines, so
// that a test drives days of the scheduler in milliseconds without sleeping.
package clocktest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// settleTimeout bounds how long Step and WaitTimers wait for a sleeper that
// should be quick: past it the code under test is stuck, and the test fails
// rather than hangs.
const settleTimeout = 10 * time.Second

// Clock is a fake commands.Clock. The zero value is not usable: use New.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer
	created int           // timers ever created, see Created
	changed chan struct{} // closed and replaced whenever timers change
}

type timer struct {
	at time.Time
	ch chan time.Time
}

// New returns a Clock that reads start until it is moved.
func New(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Timer returns a channel that receives the deadline once the clock has
// been moved to or past now+d (at once when d <= 0), and a stop func that
// reports whether it stopped the timer before it fired.
func (c *Clock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{at: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.created++
	if d <= 0 {
		t.ch <- t.at
	} else {
		c.timers = append(c.timers, t)
	}
	c.signal()
	stop := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.timers, t)
		if i < 0 {
			return false
		}
		c.timers = slices.Delete(c.timers, i, i+1)
		c.signal()
		return true
	}
	return t.ch, stop
}

// signal wakes the waiters of WaitTimers; c.mu is held.
func (c *Clock) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves the clock forward by d at once and fires every timer whose
// deadline it passed, oldest first. It returns how many fired. A sleeper
// that sleeps again from inside a jump sees only the new time: use Step to
// let it act at each deadline on the way.
func (c *Clock) Advance(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.fire()
}

// fire fires the timers due at c.now; c.mu is held.
func (c *Clock) fire() int {
	slices.SortStableFunc(c.timers, func(a, b *timer) int { return a.at.Compare(b.at) })
	n := 0
	for n < len(c.timers) && !c.timers[n].at.After(c.now) {
		c.timers[n].ch <- c.timers[n].at
		n++
	}
	if n > 0 {
		c.timers = slices.Delete(c.timers, 0, n)
		c.signal()
	}
	return n
}

// Step moves the clock forward by d one deadline at a time: it moves to the
// earliest pending timer within d, fires it, and waits until its sleeper
// has created a new timer before it looks for the next, then moves to the
// end of d. It is made for loops that always sleep again on a timer after
// waking, as commands.Service.Schedule does: each deadline on the way is
// then acted on at its own time. It fails when such a sleeper does not
// sleep again within a few seconds, or when ctx ends.
func (c *Clock) Step(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		slices.SortStableFunc(c.timers, func(a, b *timer) int { return a.at.Compare(b.at) })
		if len(c.timers) == 0 || c.timers[0].at.After(end) {
			break
		}
		if c.timers[0].at.After(c.now) {
			c.now = c.timers[0].at
		}
		created := c.created
		n := c.fire()
		c.mu.Unlock()
		if err := c.waitFor(ctx, func() bool { return c.created >= created+n }); err != nil {
			return fmt.Errorf("clocktest: Step at %s: the %d timer(s) fired were not followed by new ones: %w", c.Now().Format(time.RFC3339Nano), n, err)
		}
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
	return nil
}

// Created returns how many timers were ever created. A test reads it
// before an action that makes a sleeper sleep again (a wake-up) and waits
// with WaitCreated until the count has grown.
func (c *Clock) Created() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}

// WaitCreated waits until more than before timers were ever created: a
// sleeper woken by something else than the clock has gone back to sleep.
func (c *Clock) WaitCreated(ctx context.Context, before int) error {
	return c.waitFor(ctx, func() bool { return c.created > before })
}

// Pending returns the deadlines of the timers waiting to fire, earliest first.
func (c *Clock) Pending() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for _, t := range c.timers {
		out = append(out, t.at)
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// WaitTimers waits until at least n timers are pending: the sleepers are
// blocked on the clock.
func (c *Clock) WaitTimers(ctx context.Context, n int) error {
	return c.waitFor(ctx, func() bool { return len(c.timers) >= n })
}

// waitFor waits until cond, read under c.mu, holds.
func (c *Clock) waitFor(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	for {
		c.mu.Lock()
		ok, changed := cond(), c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
