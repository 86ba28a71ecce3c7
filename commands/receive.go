package commands

import (
	"context"
	"sync/atomic"
)

// Receive records m in the inbox and reports whether it is new. A chat adapter
// calls it before acknowledging an event and calls Handle only when it is new;
// a redelivered event (same EventID) reports false and has no further effect.
//
// Concurrent calls share one transaction (group commit): a call that finds
// no inbox commit running starts one for its message at once, and the calls
// that arrive meanwhile are committed together by the next, so a burst of
// events costs a few fsyncs, not one each, and no ack waits for more than
// about two commits. They use the Store's UpdateFirst, so that they go
// before the commands waiting for the write lock. A call whose ctx ends
// before its message was committed returns ctx's error; its message may
// still be recorded (an unacked event is redelivered, and
// Recover handles recorded events that were never processed).
func (s *Service) Receive(ctx context.Context, m Message) (bool, error) {
	if m.EventID == "" {
		return false, Errorf(EINVALID, "message without an event ID")
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.recvMu.Lock()
	b := s.recvNext
	if b == nil {
		b = &receiveBatch{done: make(chan struct{})}
		s.recvNext = b
	}
	i := len(b.msgs)
	b.msgs = append(b.msgs, m)
	b.ctxs = append(b.ctxs, ctx)
	if !s.recvBusy {
		s.recvBusy = true
		go s.receiveLoop()
	}
	s.recvMu.Unlock()
	select {
	case <-b.done:
		if b.err != nil {
			return false, b.err
		}
		if b.skipped[i] {
			return false, ctx.Err()
		}
		return b.fresh[i], nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// receiveBatch is the messages of one inbox commit and its outcome.
type receiveBatch struct {
	msgs    []Message
	ctxs    []context.Context
	done    chan struct{} // closed when fresh, skipped and err are set
	fresh   []bool
	skipped []bool // the caller had given up before the commit began
	err     error
}

// receiveLoop commits the waiting messages, batch after batch, until none
// are left.
func (s *Service) receiveLoop() {
	for {
		s.recvMu.Lock()
		b := s.recvNext
		s.recvNext = nil
		if b == nil {
			s.recvBusy = false
			s.recvMu.Unlock()
			return
		}
		s.recvMu.Unlock()
		s.receive(b)
		close(b.done)
	}
}

// receive records the new messages of b in one transaction.
func (s *Service) receive(b *receiveBatch) {
	n := len(b.msgs)
	b.skipped = make([]bool, n)
	live := false
	for i, ctx := range b.ctxs {
		b.skipped[i] = ctx.Err() != nil
		live = live || !b.skipped[i]
	}
	if !live {
		b.fresh = make([]bool, n)
		return
	}
	var fresh []bool
	// The callers wait with their own contexts; the commit is given up only
	// when all of them have given up (a shutdown), not when one of them has.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waiting atomic.Int64
	for i, c := range b.ctxs {
		if !b.skipped[i] {
			waiting.Add(1)
			stop := context.AfterFunc(c, func() {
				if waiting.Add(-1) == 0 {
					cancel()
				}
			})
			defer stop()
		}
	}
	b.err = s.Store.UpdateFirst(ctx, func(tx Tx) error {
		fresh = make([]bool, n)
		recorded := make(map[string]bool, n)
		now := s.now()
		for i, m := range b.msgs {
			if b.skipped[i] || recorded[m.EventID] {
				continue // a copy of an event earlier in the batch is not new
			}
			if _, ok, err := tx.Event(m.EventID); err != nil {
				return err
			} else if ok {
				continue
			}
			if err := tx.PutEvent(InboxEvent{ID: m.EventID, Message: m, Received: now}); err != nil {
				return err
			}
			fresh[i], recorded[m.EventID] = true, true
		}
		return nil
	})
	if b.err != nil {
		fresh = make([]bool, n)
	}
	b.fresh = fresh
}
