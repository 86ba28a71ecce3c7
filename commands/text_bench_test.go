package commands

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// benchQueue is a queue of n open releases holding a lock each, as in
// make bench's figure 2.
func benchQueue(n int) ([]Release, []Lock, time.Time) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var open []Release
	var locks []Lock
	for i := range n {
		r := Release{
			ID: uint64(i + 1), Ticket: fmt.Sprintf("PAY-%d", i+1), URL: fmt.Sprintf("https://jira.example/browse/PAY-%d", i+1),
			State: StateAccepted, Requester: "U0REQ", Approver: "U0APP", NeedAdmin: true,
			Components: []string{fmt.Sprintf("comp%d", i)}, Locks: []string{fmt.Sprintf("comp%d", i)},
			Created: now.Add(-time.Duration(i) * time.Minute),
		}
		open = append(open, r)
		locks = append(locks, Lock{Component: r.Components[0], Release: r.ID, Ticket: r.Ticket, By: "U0REQ", Since: r.Created})
	}
	return open, locks, now
}

func BenchmarkSay(b *testing.B) {
	r := Release{Ticket: "PAY-1", State: StateAccepted, Requester: "U0REQ"}
	b.ReportAllocs()
	for b.Loop() {
		_ = say("\n%d. %v — %s — requester %v", 3, TicketRef(r), r.State, Person(r.Requester))
	}
}

func BenchmarkQueueText(b *testing.B) {
	open, locks, now := benchQueue(20)
	b.ReportAllocs()
	for b.Loop() {
		_ = queueText(open, locks, nil, nil, now, false, time.UTC)
	}
}

// BenchmarkEffectJSON is the outbox's round trip of a queue reply: encoded
// once, decoded by each read of the outbox.
func BenchmarkEffectJSON(b *testing.B) {
	open, locks, now := benchQueue(20)
	e := Effect{ID: 7, Kind: EffectReply, Channel: "C1", User: "U1", Thread: "1.2", Text: queueText(open, locks, nil, nil, now, false, time.UTC)}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	data, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got Effect
			if err := json.Unmarshal(data, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHandoffs is queue's hand-off lines for 100 releases waiting for
// one component, as a busy queue in make bench's burst is.
func BenchmarkHandoffs(b *testing.B) {
	open, _, now := benchQueue(100)
	for i := range open {
		open[i].Locks = []string{"backend"}
	}
	locks := []Lock{{Component: "backend", Release: 1, Ticket: "PAY-1", By: "U0REQ", Since: now.Add(-time.Minute)}}
	b.ReportAllocs()
	for b.Loop() {
		if len(handoffs(open, locks, nil, now, 10*time.Minute, true)) != 99 {
			b.Fatal("not every waiting release has its place")
		}
	}
}

// BenchmarkQueueTextBusy is the queue reply of make bench's burst: 120
// releases waiting for one component, each with its hand-off line.
func BenchmarkQueueTextBusy(b *testing.B) {
	open, _, now := benchQueue(120)
	for i := range open {
		open[i].Components, open[i].Locks = []string{"backend"}, nil
	}
	locks := []Lock{{Component: "backend", Release: 1, Ticket: "PAY-1", By: "U0REQ", Since: now.Add(-time.Minute)}}
	open[0].Locks = []string{"backend"}
	turns := handoffs(open, locks, nil, now, 10*time.Minute, true)
	b.ReportAllocs()
	for b.Loop() {
		_ = queueText(open, locks, nil, turns, now, false, time.UTC)
	}
}
