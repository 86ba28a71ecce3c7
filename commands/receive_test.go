package commands_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// gatedStore counts the inbox commits of Receive and holds the first one
// until gate is closed, so that the calls behind it pile up.
type gatedStore struct {
	commands.Store
	db      *storage.DB
	gate    chan struct{}
	commits atomic.Int64
	first   atomic.Int64 // commits made through UpdateFirst
}

func (s *gatedStore) UpdateFirst(ctx context.Context, fn func(commands.Tx) error) error {
	if s.commits.Add(1) == 1 {
		<-s.gate
	}
	s.first.Add(1)
	return s.db.UpdateFirst(ctx, fn)
}

// TestReceiveGroupCommit: concurrent Receive calls share inbox commits
// (made with UpdateFirst), and each event is new exactly once, copies in
// the same commit included.
func TestReceiveGroupCommit(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "dobrobot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := &gatedStore{Store: db, db: db, gate: make(chan struct{})}
	svc := commands.NewService(commands.Config{Store: store, Now: time.Now})
	ctx := context.Background()

	const events, copies = 60, 2
	fresh := make(map[string]int)
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for i := range events * copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("Ev%03d", i%events)
			ok, err := svc.Receive(ctx, commands.Message{EventID: id, User: "U0ANN", Text: "queue"})
			if err != nil {
				t.Errorf("Receive(%s): %v", id, err)
			}
			mu.Lock()
			if ok {
				fresh[id]++
			} else if _, seen := fresh[id]; !seen {
				fresh[id] = 0
			}
			mu.Unlock()
		}()
	}
	time.Sleep(200 * time.Millisecond) // the calls pile up behind the first commit
	close(store.gate)
	wg.Wait()

	want := make(map[string]int)
	for i := range events {
		want[fmt.Sprintf("Ev%03d", i)] = 1
	}
	if diff := cmp.Diff(want, fresh); diff != "" {
		t.Errorf("times each event was new (-want +got):\n%s", diff)
	}
	if n := store.commits.Load(); n > events*copies/2 {
		t.Errorf("%d commits for %d calls: they were not grouped", n, events*copies)
	}
	if store.first.Load() != store.commits.Load() {
		t.Errorf("%d of %d commits went through UpdateFirst, want all", store.first.Load(), store.commits.Load())
	}
	// A redelivery after the commits is not new.
	if ok, err := svc.Receive(ctx, commands.Message{EventID: "Ev007"}); ok || err != nil {
		t.Errorf("Receive of a recorded event: %t, %v; want false, nil", ok, err)
	}
}

// TestReceiveGivesUp: a caller whose context ends while its message waits
// gets the context's error.
func TestReceiveGivesUp(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "dobrobot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := &gatedStore{Store: db, db: db, gate: make(chan struct{})}
	defer close(store.gate)
	svc := commands.NewService(commands.Config{Store: store, Now: time.Now})
	go svc.Receive(context.Background(), commands.Message{EventID: "EvHELD"}) // holds the first commit
	for store.commits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if ok, err := svc.Receive(ctx, commands.Message{EventID: "EvLATE"}); ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Receive that timed out waiting: %t, %v; want false, context.DeadlineExceeded", ok, err)
	}
}

// TestReceiveAllGiveUp: when every caller of a batch has given up (a
// shutdown), its commit is given up too instead of waiting for the store.
func TestReceiveAllGiveUp(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "dobrobot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	held := make(chan struct{})
	release := make(chan struct{})
	go db.Update(context.Background(), func(commands.Tx) error { close(held); <-release; return nil })
	<-held
	defer close(release)
	svc := commands.NewService(commands.Config{Store: db, Now: time.Now})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := svc.Receive(ctx, commands.Message{EventID: "EvGONE"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive: %v, want context.DeadlineExceeded", err)
	}
	// The abandoned batch did not keep the next one waiting behind it.
	done := make(chan error, 1)
	go func() {
		_, err := svc.Receive(context.Background(), commands.Message{EventID: "EvNEXT"})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	release <- struct{}{}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the next Receive: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the next Receive waited behind an abandoned batch")
	}
	var ev commands.InboxEvent
	_ = db.View(context.Background(), func(tx commands.Tx) error { ev, _, _ = tx.Event("EvGONE"); return nil })
	if ev.ID != "" {
		t.Errorf("the abandoned event was recorded: %+v", ev)
	}
}
