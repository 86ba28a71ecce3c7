package commands

import (
	"context"
	"sync/atomic"
)

// Receive records m in the inbox and reports whether it is new. A chat adapter
// calls it before acknowledging an event and calls Handle only when it is new;
// a redelivered event (same EventID) reports false and has no further effect.
//
// Concurrent calls share one transaction (GroupCommit): a call that finds
// no inbox commit running starts one for its message at once, and the calls
// that arrive meanwhile are committed together by the next, so a burst of
// events costs a few fsyncs, not one each, and no ack waits for more than
// about two commits. They use the Store's UpdateFirst, so that they go
// before the commands waiting for the write lock. A call whose ctx ends
// before its message was committed returns ctx's error; its message may
// still be recorded (an unacked event is redelivered, and Recover handles
// recorded events that were never processed).
func (s *Service) Receive(ctx context.Context, m Message) (bool, error) {
	if m.EventID == "" {
		return false, Errorf(EINVALID, "message without an event ID")
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	r, err := s.inbox.Add(ctx, m)
	if err != nil {
		return false, err
	}
	if r.skipped {
		return false, ctx.Err()
	}
	return r.fresh, nil
}

// received is Receive's answer for one message of an inbox commit.
type received struct {
	fresh   bool // recorded now: the caller handles it
	skipped bool // the caller had given up before the commit began
}

// receive records the new messages of one batch (Service.inbox) in one
// transaction.
func (s *Service) receive(msgs []Message, ctxs []context.Context) ([]received, error) {
	out := make([]received, len(msgs))
	live := false
	for i, ctx := range ctxs {
		out[i].skipped = ctx.Err() != nil
		live = live || !out[i].skipped
	}
	if !live {
		return out, nil
	}
	// The callers wait with their own contexts; the commit is given up only
	// when all of them have given up (a shutdown), not when one of them has.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waiting atomic.Int64
	for i, c := range ctxs {
		if !out[i].skipped {
			waiting.Add(1)
			stop := context.AfterFunc(c, func() {
				if waiting.Add(-1) == 0 {
					cancel()
				}
			})
			defer stop()
		}
	}
	err := s.cfg.Store.UpdateFirst(ctx, func(tx Tx) error {
		recorded := make(map[string]bool, len(msgs))
		now := s.now()
		for i, m := range msgs {
			out[i].fresh = false
			if out[i].skipped || recorded[m.EventID] {
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
			out[i].fresh, recorded[m.EventID] = true, true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
