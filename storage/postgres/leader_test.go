package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
)

// candidate is one Leader campaigning in a test, with what its terms saw.
type candidate struct {
	*Leader
	store  *DB
	terms  chan int64 // the epoch of each term begun
	ended  chan error // each term's context cause
	stop   context.CancelFunc
	done   chan struct{} // closed when Run returned
	runErr error         // what Run returned
	freeze sync.Mutex    // held: the heartbeat blocks, as in a frozen process
}

const testTimeout = time.Second

func newCandidate(t *testing.T, dsn, schema, id string) *candidate {
	t.Helper()
	l, err := NewLeader(dsn, LeaderOptions{Schema: schema, ID: id, Timeout: testTimeout, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	c := &candidate{Leader: l, terms: make(chan int64, 10), ended: make(chan error, 10), done: make(chan struct{})}
	l.beforeBeat = func() { c.freeze.Lock(); c.freeze.Unlock() } // waits while a test holds freeze
	c.store = openStore(t, dsn, Options{Schema: schema, Fence: l.Epoch, IdleInTransaction: testTimeout})
	ctx, stop := context.WithCancel(context.Background())
	c.stop = stop
	go func() {
		defer close(c.done)
		c.runErr = l.Run(ctx, func(ctx context.Context, epoch int64) error {
			c.terms <- epoch
			<-ctx.Done()
			c.ended <- context.Cause(ctx)
			return nil
		})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-c.done:
			if c.runErr != nil {
				t.Errorf("%s: Run: %v", id, c.runErr)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not return after its context ended", id)
		}
	})
	return c
}

// wait returns what ch yields within d.
func wait[T any](t *testing.T, ch chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("waited %v for %s", d, what)
		panic("unreachable")
	}
}

func quiet[T any](t *testing.T, ch chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s: got %v", what, v)
	case <-time.After(d):
	}
}

// write appends one audit entry through c's fenced store.
func (c *candidate) write(detail string) error {
	return c.store.Update(context.Background(), func(tx commands.Tx) error {
		_, err := tx.AppendAudit(commands.AuditEntry{Time: time.Now(), Actor: c.ID(), Action: commands.ActionLock, Detail: detail})
		return err
	})
}

// epochsOf returns the epoch of each audit entry, in seq order.
func epochsOf(t *testing.T, dsn, schema string) []int64 {
	t.Helper()
	db := openStore(t, dsn, Options{Schema: schema})
	rows, err := db.pool.Query(context.Background(), "SELECT epoch FROM "+schema+".audit ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for rows.Next() {
		var e int64
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func nonDecreasing(es []int64) bool {
	for i := 1; i < len(es); i++ {
		if es[i] < es[i-1] {
			return false
		}
	}
	return true
}

// TestLeadership walks one schema through the ways a leader goes: a clean
// stop, a crash (its session killed), and a freeze inside a transaction.
// Exactly one candidate leads at a time, a standby takes over within the
// timeout, the old leader's writes are refused, and the audit's epochs never
// interleave.
func TestLeadership(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	a := newCandidate(t, dsn, schema, "a")
	first := wait(t, a.terms, 5*time.Second, "a's first term")
	b := newCandidate(t, dsn, schema, "b")
	quiet(t, b.terms, 2*testTimeout, "b led while a held the lock")
	if e, ok := a.Epoch(); !ok || e != first {
		t.Fatalf("a.Epoch() = %d, %t; want %d, true", e, ok, first)
	}
	if p := a.Predecessor(); p != "" {
		t.Errorf("a.Predecessor() in the first term = %q, want none", p)
	}
	if _, ok := b.Epoch(); ok {
		t.Fatalf("b.Epoch() says b leads too")
	}
	if err := a.write("a, term 1"); err != nil {
		t.Fatalf("the leader's write: %v", err)
	}
	err := b.write("b, standing by")
	if !errors.Is(err, ErrFenced) || commands.ErrorCode(err) != commands.EUNAVAILABLE {
		t.Fatalf("a standby's write: %v, want ErrFenced (EUNAVAILABLE)", err)
	}
	term, err := a.store.Term(context.Background())
	if err != nil || term.Epoch != first || term.Holder != "a" || !term.Held {
		t.Errorf("Term() = %+v, %v; want epoch %d held by a", term, err, first)
	}

	// A clean stop: a steps down and b takes over within a poll.
	start := time.Now()
	a.stop()
	wait(t, a.ended, 5*time.Second, "a's term to end")
	wait(t, a.done, 5*time.Second, "a's Run to return")
	second := wait(t, b.terms, 2*testTimeout, "b to take over after a stopped")
	t.Logf("failover after a clean stop: %v", time.Since(start).Round(time.Millisecond))
	if second != first+1 {
		t.Errorf("b's epoch %d, want %d", second, first+1)
	}
	if p := b.Predecessor(); p != "a" {
		t.Errorf("b.Predecessor() = %q, want a", p)
	}
	if err := b.write("b, term 2"); err != nil {
		t.Fatalf("the new leader's write: %v", err)
	}

	// A crash: b's session dies. b notices at its next heartbeat and
	// stands by; c takes over.
	c := newCandidate(t, dsn, schema, "c")
	quiet(t, c.terms, testTimeout, "c led while b held the lock")
	start = time.Now()
	if err := exec(t, dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'dobrobot leader b'"); err != nil {
		t.Fatal(err)
	}
	if cause := wait(t, b.ended, 2*testTimeout, "b to notice it lost the lock"); !errors.Is(cause, ErrLost) {
		t.Errorf("b's term ended with %v, want ErrLost", cause)
	}
	third := wait(t, c.terms, 2*testTimeout, "c to take over after b's session died")
	t.Logf("failover after a killed session: %v", time.Since(start).Round(time.Millisecond))
	if err := b.write("b, lost"); !errors.Is(err, ErrFenced) {
		t.Errorf("b's write after losing the lock: %v, want ErrFenced", err)
	}

	// A freeze inside a transaction: c stops heartbeating while its
	// transaction holds the writer lock. The server ends both sessions
	// within the timeouts; b takes over, and c's commit is refused.
	inTx, release := make(chan struct{}), make(chan struct{})
	txErr := make(chan error, 1)
	c.freeze.Lock()
	go func() {
		txErr <- c.store.Update(context.Background(), func(tx commands.Tx) error {
			if _, err := tx.AppendAudit(commands.AuditEntry{Time: time.Now(), Actor: "c", Action: commands.ActionLock, Detail: "c, frozen"}); err != nil {
				return err
			}
			close(inTx)
			<-release
			return nil
		})
	}()
	wait(t, inTx, 5*time.Second, "c's transaction to begin")
	start = time.Now()
	fourth := wait(t, b.terms, 4*testTimeout, "b to take over from frozen c")
	t.Logf("failover after a freeze inside a transaction: %v", time.Since(start).Round(time.Millisecond))
	if fourth != third+1 {
		t.Errorf("b's new epoch %d, want %d", fourth, third+1)
	}
	if p := b.Predecessor(); p != "c" {
		t.Errorf("b.Predecessor() after frozen c = %q, want c", p)
	}
	if _, ok := c.Epoch(); ok {
		t.Errorf("frozen c still believes it leads")
	}
	close(release)
	if err := wait(t, txErr, 5*time.Second, "c's frozen transaction to end"); err == nil {
		t.Errorf("c's transaction, frozen past the takeover, committed")
	}
	c.freeze.Unlock()
	if cause := wait(t, c.ended, 2*testTimeout, "c to notice, once thawed, that it lost"); !errors.Is(cause, ErrLost) {
		t.Errorf("c's term ended with %v, want ErrLost", cause)
	}
	if err := c.write("c, thawed"); !errors.Is(err, ErrFenced) {
		t.Errorf("c's write after thawing: %v, want ErrFenced", err)
	}
	if err := b.write(fmt.Sprintf("b, term %d", fourth)); err != nil {
		t.Errorf("b's write: %v", err)
	}

	epochs := epochsOf(t, dsn, schema)
	if want := []int64{first, second, fourth}; fmt.Sprint(epochs) != fmt.Sprint(want) || !nonDecreasing(epochs) {
		t.Errorf("audit epochs %v, want %v: one entry per term that led, none from fenced writers", epochs, want)
	}
}
