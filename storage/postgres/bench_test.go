package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/bolttest"
)

// BenchmarkTransition measures the transaction of one state-changing
// command as the Service commits it — read the inbox record, the release,
// the queue and the locks; write the release, an audit entry, two outbox
// effects and the processed inbox record — on bbolt and on PostgreSQL, and
// reports the latency's p50 and p99 (ms) besides the mean.
func BenchmarkTransition(b *testing.B) {
	b.Run("bbolt", func(b *testing.B) { benchTransition(b, bolttest.Open(b)) })
	b.Run("postgres", func(b *testing.B) {
		dsn := testDSN(b)
		benchTransition(b, openStore(b, dsn, Options{Schema: newSchema(b, dsn)}))
	})
}

func benchTransition(b *testing.B, s commands.Store) {
	ctx := context.Background()
	var id uint64
	err := s.Update(ctx, func(tx commands.Tx) error {
		for i := range 20 { // a queue of a realistic length
			r, err := tx.PutRelease(commands.Release{Ticket: fmt.Sprintf("PAY-%d", i+1), State: commands.StateRequested,
				Requester: "U01ANN", Components: []string{"backend"}, Created: time.Now(), Updated: time.Now()})
			if err != nil {
				return err
			}
			id = r.ID
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		event := fmt.Sprintf("Ev%08d", i)
		start := time.Now()
		err := s.Update(ctx, func(tx commands.Tx) error {
			if _, _, err := tx.Event(event); err != nil {
				return err
			}
			r, err := tx.Release(id)
			if err != nil {
				return err
			}
			if _, err := tx.Open(); err != nil {
				return err
			}
			if _, err := tx.Locks(); err != nil {
				return err
			}
			from := r.State
			r.State, r.Approver, r.Updated = commands.StateAccepted, "U02BOB", time.Now()
			if i%2 == 1 {
				r.State = commands.StateRequested
			}
			if r, err = tx.PutRelease(r); err != nil {
				return err
			}
			if _, err := tx.AppendAudit(commands.AuditEntry{Time: time.Now(), Actor: "U02BOB", Action: commands.ActionAccept,
				Ticket: r.Ticket, From: from, To: r.State, Detail: "event " + event}); err != nil {
				return err
			}
			for _, e := range []commands.Effect{
				{Kind: commands.EffectCard, Event: event, Release: &r},
				{Kind: commands.EffectDM, Event: event, User: "U01ANN", Text: commands.Text{commands.Plain("accepted")}},
			} {
				if _, err := tx.Emit(e); err != nil {
					return err
				}
			}
			return tx.PutEvent(commands.InboxEvent{ID: event, Received: time.Now(), Processed: true})
		})
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// reportPercentiles adds p50 and p99 of lat, in milliseconds, to b's figures.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkFailover measures how long a standby takes to begin its term
// after the leader's session dies (kill -9: the server sees the connection
// close), after the leader freezes (it stops heartbeating; the server ends
// its session after the timeout), and after the leader freezes with a full
// pool of writes queued on the leader row (freeze-queued: one holds the row,
// idle, the others wait for it), with the default timeout of 5 s. It
// reports the failover time in ms.
func BenchmarkFailover(b *testing.B) {
	dsn := testDSN(b)
	for _, how := range []string{"kill", "freeze", "freeze-queued"} {
		b.Run(how, func(b *testing.B) {
			schema := newSchema(b, dsn)
			openStore(b, dsn, Options{Schema: schema}) // creates the schema
			var took []time.Duration
			for i := range b.N {
				if how == "freeze-queued" {
					took = append(took, queuedFreezeOnce(b, dsn, schema, i))
					continue
				}
				took = append(took, failoverOnce(b, dsn, schema, how, i))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "failover-ms")
		})
	}
}

// benchLeader starts a Leader with ID id that runs beforeBeat before each
// heartbeat (a failure blocks there), and returns it with the channel on
// which it reports each term it begins; its terms last until ctx ends.
func benchLeader(ctx context.Context, b *testing.B, dsn, schema, id string, beforeBeat func()) (*Leader, chan int64) {
	b.Helper()
	l, err := NewLeader(dsn, LeaderOptions{Schema: schema, ID: id, Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	l.beforeBeat = beforeBeat
	terms := make(chan int64, 1)
	go func() {
		_ = l.Run(ctx, func(ctx context.Context, epoch int64) error {
			terms <- epoch
			<-ctx.Done()
			return nil
		})
	}()
	return l, terms
}

// failoverOnce runs a leader and a standby and returns the time from the
// leader's failure to the standby's term. A failed leader stops
// heartbeating, as a killed or frozen process does; a killed one's session
// also ends at once.
func failoverOnce(b *testing.B, dsn, schema, how string, i int) time.Duration {
	b.Helper()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var (
		failed   atomic.Bool
		frozenAt atomic.Int64 // unix ns of the first heartbeat that did not happen
		thaw     = make(chan struct{})
	)
	defer close(thaw)
	newLeader := func(id string) (*Leader, chan int64) {
		return benchLeader(ctx, b, dsn, schema, fmt.Sprintf("%s-%d", id, i), func() {
			if failed.Load() {
				frozenAt.CompareAndSwap(0, time.Now().UnixNano())
				<-thaw
			}
		})
	}
	leader, leading := newLeader("leader")
	<-leading
	_, standby := newLeader("standby")
	time.Sleep(leader.beat * 2) // the standby polls
	failed.Store(true)
	start := time.Now()
	if how == "kill" {
		if err := exec(b, dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", "dobrobot leader "+leader.ID()); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-standby:
	case <-time.After(30 * time.Second):
		b.Fatalf("%s: the standby did not take over within 30 s", how)
	}
	if how == "freeze" {
		// The leader froze when it missed its first heartbeat.
		for frozenAt.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		start = time.Unix(0, frozenAt.Load())
	}
	return time.Since(start)
}

// queuedFreezeOnce runs a leader, whose store has a full pool of writes on
// the leader row, and a standby, freezes the leader, and returns the time
// from the freeze to the standby's term. The frozen process does nothing
// more: its heartbeat and every check of its fence block until the thaw,
// and the write that holds the row sits in its transaction, idle, as the
// server sees a frozen process's.
func queuedFreezeOnce(b *testing.B, dsn, schema string, i int) time.Duration {
	b.Helper()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var frozen atomic.Bool
	thaw := make(chan struct{})
	newLeader := func(id string) (*Leader, chan int64) {
		return benchLeader(ctx, b, dsn, schema, fmt.Sprintf("%s-%d", id, i), func() {
			if frozen.Load() {
				<-thaw
			}
		})
	}
	leader, leading := newLeader("leader")
	<-leading
	const pool = 8
	store := openStore(b, dsn, Options{Schema: schema, MaxConns: pool, IdleInTransaction: DefaultLeaderTimeout,
		Fence: func() (int64, bool) {
			if frozen.Load() {
				<-thaw
			}
			return leader.Epoch()
		}})
	writes := make(chan error, pool)
	for range pool {
		go func() {
			writes <- store.Update(ctx, func(commands.Tx) error {
				<-thaw // the process froze holding the row
				return nil
			})
		}()
	}
	for scalar[int64](b, dsn, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
		AND query LIKE '%"'||$1||'".leader WHERE id = 1 FOR UPDATE%'`, schema) < pool-1 {
		time.Sleep(time.Millisecond)
	}
	_, standby := newLeader("standby")
	time.Sleep(leader.beat * 2) // the standby polls
	start := time.Now()
	frozen.Store(true)
	select {
	case <-standby:
	case <-time.After(90 * time.Second):
		b.Fatal("freeze-queued: the standby did not take over within 90 s")
	}
	took := time.Since(start)
	close(thaw)
	for range pool {
		<-writes // the frozen writes fail or are fenced once thawed
	}
	return took
}
