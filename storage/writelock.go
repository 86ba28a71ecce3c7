package storage

import (
	"context"
	"slices"
	"sync"
)

// writeLock serialises writers before they reach bbolt, so that a writer
// waiting behind another can give up when its context ends, and so that a
// writer that asks to go first (UpdateFirst) is let in before the ordinary
// ones waiting. The zero value is unlocked.
type writeLock struct {
	mu     sync.Mutex
	held   bool
	first  []chan struct{} // waiting UpdateFirst callers, in order
	others []chan struct{} // waiting Update callers, in order
}

// lock waits for the lock until ctx ends.
func (l *writeLock) lock(ctx context.Context, first bool) error {
	l.mu.Lock()
	if !l.held {
		l.held = true
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	if first {
		l.first = append(l.first, ch)
	} else {
		l.others = append(l.others, ch)
	}
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		if i := slices.Index(l.first, ch); i >= 0 {
			l.first = slices.Delete(l.first, i, i+1)
		} else if i := slices.Index(l.others, ch); i >= 0 {
			l.others = slices.Delete(l.others, i, i+1)
		} else {
			// Handed the lock just as ctx ended: pass it on.
			l.mu.Unlock()
			l.unlock()
			return ctx.Err()
		}
		l.mu.Unlock()
		return ctx.Err()
	}
}

// unlock hands the lock to the first waiting UpdateFirst caller, else to the
// first waiting Update caller, else releases it.
func (l *writeLock) unlock() {
	l.mu.Lock()
	defer l.mu.Unlock()
	var next chan struct{}
	switch {
	case len(l.first) > 0:
		next, l.first = l.first[0], l.first[1:]
	case len(l.others) > 0:
		next, l.others = l.others[0], l.others[1:]
	default:
		l.held = false
		return
	}
	close(next)
}
