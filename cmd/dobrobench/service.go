package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync/atomic"
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
	// ratio is the median over the pairs of the Service's rate over raw
	// bbolt's, each pair measured back to back; ratioLow and ratioHigh are
	// the pairs' first and third quartiles.
	ratio, ratioLow, ratioHigh float64
	pairs                      int
}

// Figure 1's pairs: durablePairs pairs of durableBatch raw commits and
// durableBatch transitions, back to back, after durableWarmup of each.
const (
	durablePairs  = 15
	durableBatch  = 200
	durableWarmup = 2000
)

// benchDurable measures raw bbolt single-key Update transactions (fsync
// on) and durable transitions through commands.Service on real bbolt (a
// release's four commands in turn), each on one file in dir, in pairs of
// batches run back to back: the disk this runs on changes speed from one
// second to the next, by more than any change to the code, and a pair
// sees the same disk. Which of the two goes first alternates. Both files
// are warmed up first, so that their B+trees have the depth they work at.
// The figure is the median of the pairs' ratios.
func benchDurable(ctx context.Context, dir string) (durableResult, error) {
	var res durableResult
	raw, err := bolt.Open(filepath.Join(dir, "raw.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return res, err
	}
	defer raw.Close()
	name := []byte("k")
	if err := raw.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(name); return err }); err != nil {
		return res, err
	}
	val := make([]byte, 100)
	rawN := 0
	rawBatch := func(n int) error {
		for range n {
			rawN++
			if err := raw.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(name).Put(binary.BigEndian.AppendUint64(nil, uint64(rawN)), val)
			}); err != nil {
				return err
			}
		}
		return nil
	}

	db, err := storage.Open(filepath.Join(dir, "svc.db"))
	if err != nil {
		return res, err
	}
	defer db.Close()
	if _, err := seedOpen(ctx, db, 10, "QUEUED"); err != nil {
		return res, err
	}
	cs := &countingStore{Store: db}
	d := &driver{svc: newService(cs)}
	svcN := 0
	svcBatch := func(n int) error {
		for range n {
			i := svcN
			c := lifecycle(fmt.Sprintf("REL-%d", i/4), fmt.Sprintf("U0REQ%04d", i/4%1000))[i%4]
			if err := d.do(ctx, c[0], c[1]); err != nil {
				return err
			}
			svcN++
		}
		return nil
	}

	if err := rawBatch(durableWarmup); err != nil {
		return res, err
	}
	if err := svcBatch(durableWarmup); err != nil {
		return res, err
	}
	commits0, transitions0 := cs.updates.Load(), svcN
	var rawTime, svcTime time.Duration
	var ratios []float64
	for p := range durablePairs {
		var r, s time.Duration
		timed := func(f func(int) error, into *time.Duration) error {
			began := time.Now()
			err := f(durableBatch)
			*into = time.Since(began)
			return err
		}
		first, second := func() error { return timed(rawBatch, &r) }, func() error { return timed(svcBatch, &s) }
		if p%2 == 1 {
			first, second = second, first
		}
		if err := first(); err != nil {
			return res, err
		}
		if err := second(); err != nil {
			return res, err
		}
		rawTime, svcTime = rawTime+r, svcTime+s
		ratios = append(ratios, r.Seconds()/s.Seconds()) // same count: the rates' ratio
	}
	slices.Sort(ratios)
	n := float64(durablePairs * durableBatch)
	res.rawPerSec, res.svcPerSec = n/rawTime.Seconds(), n/svcTime.Seconds()
	res.ratio, res.ratioLow, res.ratioHigh = median(ratios), ratios[len(ratios)/4], ratios[len(ratios)*3/4]
	res.pairs = durablePairs
	res.commitsPerTransition = float64(cs.updates.Load()-commits0) / float64(svcN-transitions0)
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
