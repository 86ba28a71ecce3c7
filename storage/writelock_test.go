package storage

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// waitQueued waits until the lock has first and others waiters.
func waitQueued(t *testing.T, l *writeLock, first, others int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		f, o := len(l.first), len(l.others)
		l.mu.Unlock()
		if f == first && o == others {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiters: %d first, %d others; want %d and %d", f, o, first, others)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriteLockOrder: UpdateFirst callers go before the Update callers
// waiting, each kind in its order of arrival.
func TestWriteLockOrder(t *testing.T) {
	var l writeLock
	ctx := context.Background()
	if err := l.lock(ctx, false); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		got []string
		wg  sync.WaitGroup
	)
	for i, w := range []struct {
		name  string
		first bool
	}{{"update 1", false}, {"update 2", false}, {"first 1", true}, {"first 2", true}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.lock(ctx, w.first); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got = append(got, w.name)
			mu.Unlock()
			l.unlock()
		}()
		f, o := 0, min(i+1, 2)
		if i >= 2 {
			f = i - 1
		}
		waitQueued(t, &l, f, o)
	}
	l.unlock()
	wg.Wait()
	if diff := cmp.Diff([]string{"first 1", "first 2", "update 1", "update 2"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if l.held {
		t.Error("the lock is still held after everyone unlocked")
	}
}

// TestWriteLockCancel: a waiter whose context ends gives up without the
// lock, and the lock goes to the next.
func TestWriteLockCancel(t *testing.T) {
	var l writeLock
	if err := l.lock(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- l.lock(ctx, true) }()
	waitQueued(t, &l, 1, 0)
	next := make(chan error, 1)
	go func() { next <- l.lock(context.Background(), false) }()
	waitQueued(t, &l, 1, 1)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled waiter: %v, want context.Canceled", err)
	}
	l.unlock()
	select {
	case err := <-next:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the lock did not pass to the waiter behind the cancelled one")
	}
	l.unlock()
}

// TestWriteLockExclusive: however the waiters arrive, one holds it at a time.
func TestWriteLockExclusive(t *testing.T) {
	var (
		l       writeLock
		inside  int
		maxSeen int
		mu      sync.Mutex
		wg      sync.WaitGroup
	)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%7)*time.Millisecond)
			defer cancel()
			if i%3 != 0 {
				ctx = context.Background()
			}
			if l.lock(ctx, i%2 == 0) != nil {
				return
			}
			mu.Lock()
			inside++
			maxSeen = max(maxSeen, inside)
			mu.Unlock()
			time.Sleep(50 * time.Microsecond)
			mu.Lock()
			inside--
			mu.Unlock()
			l.unlock()
		}()
	}
	wg.Wait()
	if maxSeen != 1 || l.held {
		t.Errorf("at most %d holders at once, held at the end: %t; want 1 and false", maxSeen, l.held)
	}
}
