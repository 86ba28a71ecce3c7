package commands

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestGroupCommitBatches: concurrent callers each get their own item's
// answer, and callers that arrive while a commit runs share the next one.
func TestGroupCommitBatches(t *testing.T) {
	var commits atomic.Int64
	release := make(chan struct{})
	var g GroupCommit[int, int]
	g.Commit = func(items []int, _ []context.Context) ([]int, error) {
		if commits.Add(1) == 1 {
			<-release // hold the first commit so the others queue behind it
		}
		out := make([]int, len(items))
		for i, v := range items {
			out[i] = v * 10
		}
		return out, nil
	}
	first := make(chan int)
	go func() {
		got, _ := g.Add(context.Background(), 1)
		first <- got
	}()
	// Wait until the first commit has started, so every later add queues.
	for {
		g.mu.Lock()
		busy := g.busy && g.next == nil
		g.mu.Unlock()
		if busy && commits.Load() == 1 {
			break
		}
		runtime.Gosched()
	}
	var wg sync.WaitGroup
	for i := 2; i <= 20; i++ {
		wg.Go(func() {
			if got, err := g.Add(context.Background(), i); err != nil || got != i*10 {
				t.Errorf("add(%d) = %d, %v; want %d", i, got, err, i*10)
			}
		})
	}
	for {
		g.mu.Lock()
		n := 0
		if g.next != nil {
			n = len(g.next.items)
		}
		g.mu.Unlock()
		if n == 19 {
			break
		}
		runtime.Gosched()
	}
	close(release)
	if got := <-first; got != 10 {
		t.Errorf("add(1) = %d, want 10", got)
	}
	wg.Wait()
	if n := commits.Load(); n != 2 {
		t.Errorf("%d commits, want 2 (the held one and one for the 19 waiting)", n)
	}
}
