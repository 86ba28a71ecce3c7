package storagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

func testReopen(t *testing.T, s commands.Store, reopen func() commands.Store) {
	events := fill(t, s)
	rs := put(t, s, release("PAY-3", commands.StateAccepted, 3))
	before := snap(t, s, events...)
	s = reopen()
	if diff := cmp.Diff(before, snap(t, s, events...), opts); diff != "" {
		t.Errorf("reopen changed the store (-before +after):\n%s", diff)
	}
	// Counters survive too.
	r := put(t, s, release("PAY-4", commands.StateRequested, 4))[0]
	if r.ID <= rs[0].ID {
		t.Errorf("after a reopen, a new release got ID %d, not above %d", r.ID, rs[0].ID)
	}
	e := write(t, s, func(tx commands.Tx) (commands.Effect, error) {
		return tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U01ANN", Text: commands.Text{commands.Plain("hello again")}})
	})
	if e.ID <= before.Outbox[len(before.Outbox)-1].ID {
		t.Errorf("after a reopen, a new effect got ID %d, not above %d", e.ID, before.Outbox[len(before.Outbox)-1].ID)
	}
}

func testConcurrent(t *testing.T, s commands.Store, _ func() commands.Store) {
	const writers, each = 20, 5
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		released = map[uint64]bool{}
		stop     = make(chan struct{})
		readers  sync.WaitGroup
	)
	// Readers run alongside; each snapshot they see must verify.
	for range 3 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := commands.NewVerifier()
				if err := s.Audit(context.Background(), commands.AuditFilter{}, v.Add); err != nil {
					t.Errorf("a reader during concurrent writes: %v", err)
					return
				}
				if err := s.View(context.Background(), func(tx commands.Tx) error { _, err := tx.Open(); return err }); err != nil {
					t.Errorf("a reader during concurrent writes: Open: %v", err)
					return
				}
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				err := s.Update(context.Background(), func(tx commands.Tx) error {
					ticket := fmt.Sprintf("PAY-%d", w*each+i+1)
					r, err := tx.PutRelease(release(ticket, commands.StateRequested, i))
					if err != nil {
						return err
					}
					mu.Lock()
					dup := released[r.ID]
					released[r.ID] = true
					mu.Unlock()
					if dup {
						return fmt.Errorf("release ID %d handed out twice", r.ID)
					}
					if _, err := tx.AppendAudit(entry(fmt.Sprintf("U%02d", w), ticket, commands.ActionRequest, commands.StateNone, commands.StateRequested, i)); err != nil {
						return err
					}
					_, err = tx.Emit(commands.Effect{Kind: commands.EffectReply, User: fmt.Sprintf("U%02d", w), Text: commands.Text{commands.Plain("queued " + ticket)}})
					return err
				})
				if err != nil {
					t.Errorf("writer %d, update %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	entries := verified(t, s)
	if len(entries) != writers*each {
		t.Errorf("after %d concurrent updates, the audit log has %d entries", writers*each, len(entries))
	}
	if got := auditHead(t, s); got.Seq != writers*each {
		t.Errorf("AuditHead() seq = %d, want %d", got.Seq, writers*each)
	}
	if open := read(t, s, func(tx commands.Tx) ([]commands.Release, error) { return tx.Open() }); len(open) != writers*each {
		t.Errorf("Open() has %d releases, want %d", len(open), writers*each)
	}
	if es, err := s.Pending(context.Background(), 1000); err != nil || len(es) != writers*each {
		t.Errorf("the outbox has %d effects (error %v), want %d", len(es), err, writers*each)
	}
}
