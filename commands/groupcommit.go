package commands

import (
	"context"
	"sync"
	"time"
)

// GroupCommit gathers the items of concurrent callers and commits them in
// batches: the first caller starts a goroutine that commits what is
// waiting, batch after batch, while the next batch fills. One transaction
// (one fsync) then serves every caller that arrived during the previous
// one, and no caller waits for more than about two commits. The inbox
// (Service.Receive) and the Slack bot's delivery marks use it.
//
// Set Commit before the first Add; the zero GroupCommit has no batch.
type GroupCommit[T, R any] struct {
	// Commit commits one batch: items[i] was added with ctxs[i], and
	// results[i] is its caller's answer. An error fails the whole batch.
	// A caller may have given up (its ctx ended) by the time its batch is
	// committed; Commit decides what that means for its item.
	Commit func(items []T, ctxs []context.Context) (results []R, err error)

	mu   sync.Mutex
	next *commitBatch[T, R] // waiting for the next commit
	busy bool               // a goroutine is committing
}

// commitBatch is the items of one commit and its outcome.
type commitBatch[T, R any] struct {
	items   []T
	ctxs    []context.Context
	done    chan struct{} // closed when results and err are set
	results []R
	err     error
}

// Add queues item for the next commit and waits for it. If ctx ends first
// it returns ctx's error; the item may still be committed.
func (g *GroupCommit[T, R]) Add(ctx context.Context, item T) (R, error) {
	g.mu.Lock()
	b := g.next
	if b == nil {
		b = &commitBatch[T, R]{done: make(chan struct{})}
		g.next = b
	}
	i := len(b.items)
	b.items = append(b.items, item)
	b.ctxs = append(b.ctxs, ctx)
	if !g.busy {
		g.busy = true
		go g.loop()
	}
	g.mu.Unlock()
	var zero R
	select {
	case <-b.done:
		if b.err != nil {
			return zero, b.err
		}
		return b.results[i], nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// loop commits the waiting batches until none are left.
func (g *GroupCommit[T, R]) loop() {
	for {
		g.mu.Lock()
		b := g.next
		g.next = nil
		if b == nil {
			g.busy = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		b.results, b.err = g.Commit(b.items, b.ctxs)
		if b.err == nil && len(b.results) != len(b.items) {
			// A commit must answer every caller; a short answer would
			// index out of range in Add.
			b.results = append(b.results, make([]R, len(b.items)-len(b.results))...)
		}
		close(b.done)
	}
}

// Sleep waits d or until ctx ends, and reports whether d passed. It is the
// one pause of the adapters' loops (retries, polls, reconnects), so that
// none of them outlives a shutdown.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
