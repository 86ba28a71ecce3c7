package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// anyTicket is a tracker that finds every ticket, ready for release: the
// benchmarks measure the bot, not Jira.
type anyTicket struct{}

func (anyTicket) Ticket(_ context.Context, key string) (commands.Ticket, error) {
	return commands.Ticket{Key: key, Project: commands.ProjectOf(key), Summary: "Benchmark release " + key,
		Status: "Ready for Release", Assignee: "ann@example.com", FixVersions: []string{"1.0"},
		Components: []string{component}, URL: "https://jira.example.com/browse/" + key}, nil
}

// countingStore counts the read-write transactions a Service commits.
type countingStore struct {
	commands.Store
	updates atomic.Int64
}

func (s *countingStore) Update(ctx context.Context, fn func(commands.Tx) error) error {
	s.updates.Add(1)
	return s.Store.Update(ctx, fn)
}

// UpdateFirst counts as Update does: it is a read-write transaction too.
func (s *countingStore) UpdateFirst(ctx context.Context, fn func(commands.Tx) error) error {
	s.updates.Add(1)
	return s.Store.UpdateFirst(ctx, fn)
}

// newService is the core as dobrobot run wires it, minus Slack, with no
// hooks (a phase without a hook succeeds at once).
func newService(store commands.Store) *commands.Service {
	return commands.NewService(commands.Config{
		Store: store, Tracker: anyTicket{}, Now: time.Now, Log: zerolog.Nop(),
		Policy: commands.Policy{Approvers: []string{approver}, Admins: []string{admin},
			Components: []string{component, "payments"}, Channel: channel},
	})
}

// driver sends commands to a Service as mentions with fresh event IDs.
type driver struct {
	svc *commands.Service
	seq int
}

func (d *driver) do(ctx context.Context, user, text string) error {
	d.seq++
	m := commands.Message{EventID: fmt.Sprintf("EvBENCH%09d", d.seq), User: user, Channel: channel, Text: text,
		Via: commands.ViaMention, Time: time.Now()}
	return d.svc.Handle(ctx, m)
}

// lifecycle is one release from request to done: four durable transitions.
func lifecycle(ticket, requester string) [][2]string {
	return [][2]string{
		{requester, "dobro " + ticket + " no_need_admin"},
		{approver, "accept " + ticket},
		{requester, "dep start " + ticket},
		{requester, "dep finish " + ticket},
	}
}

// durableResult is figure 1.
type durableResult struct {
	rawPerSec, svcPerSec float64
	commitsPerTransition float64
}

// benchDurable measures, with Go benchmarks in one run, raw bbolt
// single-key Update transactions per second (fsync on) and durable
// transitions per second through commands.Service on real bbolt, each on a
// new file in dir. The two alternate three times, so that a change in the
// disk's speed during the run hits both.
func benchDurable(ctx context.Context, dir string) (durableResult, error) {
	var res durableResult
	var raw, svc []float64
	var commits, transitions int64
	for round := range 3 {
		r := testing.Benchmark(func(b *testing.B) {
			db, err := bolt.Open(filepath.Join(dir, fmt.Sprintf("raw-%d-%d.db", round, b.N)), 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			name := []byte("k")
			if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(name); return err }); err != nil {
				b.Fatal(err)
			}
			val := make([]byte, 100)
			b.ResetTimer()
			for i := range b.N {
				if err := db.Update(func(tx *bolt.Tx) error {
					return tx.Bucket(name).Put(binary.BigEndian.AppendUint64(nil, uint64(i)), val)
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
		if r.N == 0 {
			return res, fmt.Errorf("raw bbolt benchmark failed")
		}
		raw = append(raw, float64(r.N)/r.T.Seconds())

		var failed error
		r = testing.Benchmark(func(b *testing.B) {
			db, err := storage.Open(filepath.Join(dir, fmt.Sprintf("svc-%d-%d.db", round, b.N)))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := seedOpen(ctx, db, 10, "QUEUED"); err != nil {
				b.Fatal(err)
			}
			cs := &countingStore{Store: db}
			d := &driver{svc: newService(cs)}
			b.ResetTimer()
			for i := 0; i < b.N; {
				for _, c := range lifecycle(fmt.Sprintf("REL-%d", i), fmt.Sprintf("U0REQ%04d", i%1000)) {
					if i == b.N {
						break
					}
					if err := d.do(ctx, c[0], c[1]); err != nil {
						failed = err
						b.Fatal(err)
					}
					i++
				}
			}
			b.StopTimer()
			if b.N >= 100 {
				commits, transitions = cs.updates.Load(), int64(b.N)
			}
		})
		if failed != nil || r.N == 0 {
			return res, fmt.Errorf("service benchmark failed: %v", failed)
		}
		svc = append(svc, float64(r.N)/r.T.Seconds())
	}
	res.rawPerSec, res.svcPerSec = median(raw), median(svc)
	if transitions > 0 {
		res.commitsPerTransition = float64(commits) / float64(transitions)
	}
	return res, nil
}

// historyResult is figure 3: command latencies on a database without
// history and on one with years of it.
type historyResult struct {
	queueEmpty, queueFull, startEmpty, startFull latency
}

// benchHistory runs queue and dep start through the Service on two
// databases with the same open queue, one with no history and one with
// full's history, alternating between them command by command.
func benchHistory(ctx context.Context, emptyPath, fullPath string, rounds int) (historyResult, error) {
	var res historyResult
	type side struct {
		db          *storage.DB
		d           *driver
		queue, strt []time.Duration
	}
	var sides [2]*side
	for i, path := range []string{emptyPath, fullPath} {
		db, err := storage.Open(path)
		if err != nil {
			return res, err
		}
		defer db.Close()
		sides[i] = &side{db: db, d: &driver{svc: newService(db)}}
	}
	for round := range rounds {
		for _, s := range sides {
			ticket := fmt.Sprintf("HIST-%d", round+1)
			user := fmt.Sprintf("U0HIST%04d", round%100)
			lc := lifecycle(ticket, user)
			for _, c := range lc[:2] {
				if err := s.d.do(ctx, c[0], c[1]); err != nil {
					return res, err
				}
			}
			t0 := time.Now()
			if err := s.d.do(ctx, user, "queue"); err != nil {
				return res, err
			}
			s.queue = append(s.queue, time.Since(t0))
			t0 = time.Now()
			if err := s.d.do(ctx, lc[2][0], lc[2][1]); err != nil {
				return res, err
			}
			s.strt = append(s.strt, time.Since(t0))
			if err := s.d.do(ctx, lc[3][0], lc[3][1]); err != nil {
				return res, err
			}
			// Nothing delivers the outbox here: empty it, as the sender would.
			pending, err := s.db.Pending(ctx, 0)
			if err != nil {
				return res, err
			}
			var ids []uint64
			for _, e := range pending {
				ids = append(ids, e.ID)
			}
			if err := s.db.Delivered(ctx, ids...); err != nil {
				return res, err
			}
		}
	}
	res.queueEmpty, res.startEmpty = summarize(sides[0].queue), summarize(sides[0].strt)
	res.queueFull, res.startFull = summarize(sides[1].queue), summarize(sides[1].strt)
	return res, nil
}

// latency summarises a set of durations.
type latency struct {
	n             int
	p50, p99, max time.Duration
}

func summarize(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.5) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return latency{n: len(s), p50: at(0.50), p99: at(0.99), max: s[len(s)-1]}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
