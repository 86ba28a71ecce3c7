package commands_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// These benchmarks run under make bench (cmd/dobrobench prints the figures
// next to raw bbolt's); with -cpuprofile they show where the time goes.

// readyTracker finds every ticket, ready for release.
type readyTracker struct{}

func (readyTracker) Ticket(_ context.Context, key string) (commands.Ticket, error) {
	return commands.Ticket{Key: key, Summary: "Benchmark " + key, Status: "Ready", Assignee: "ann@example.com",
		FixVersions: []string{"1.0"}, Components: []string{"backend"}}, nil
}

func benchService(b *testing.B) (*commands.Service, *storage.DB) {
	db, err := storage.Open(filepath.Join(b.TempDir(), "dobrobot.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return commands.NewService(commands.Config{
		Store: db, Tracker: readyTracker{}, Now: time.Now, Log: zerolog.Nop(),
		Policy: commands.Policy{Approvers: []string{"U0APPROVER"}, Admins: []string{"U0ADMIN"},
			Components: []string{"backend"}, Channel: "C0RELEASE"},
	}), db
}

// BenchmarkTransition is one durable state change through the Service: the
// four commands of a release (dobro, accept, dep start, dep finish) in turn,
// each one transaction with its audit entry, fsync on.
func BenchmarkTransition(b *testing.B) {
	svc, _ := benchService(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; {
		ticket, user := fmt.Sprintf("REL-%d", i), fmt.Sprintf("U0REQ%04d", i%1000)
		for _, c := range [][2]string{{user, "dobro " + ticket + " no_need_admin"}, {"U0APPROVER", "accept " + ticket},
			{user, "dep start " + ticket}, {user, "dep finish " + ticket}} {
			if i == b.N {
				break
			}
			m := commands.Message{EventID: fmt.Sprintf("Ev%09d", i), User: c[0], Channel: "C0RELEASE", Text: c[1], Via: commands.ViaMention}
			if err := svc.Handle(ctx, m); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
}

// BenchmarkQueue is a read command through the Service: the queue of 20
// open releases, answered through the outbox (one transaction).
func BenchmarkQueue(b *testing.B) {
	svc, _ := benchService(b)
	ctx := context.Background()
	for i := range 20 {
		m := commands.Message{EventID: fmt.Sprintf("EvSEED%03d", i), User: "U0ANN", Channel: "C0RELEASE", Text: fmt.Sprintf("dobro REL-%d", i), Via: commands.ViaMention}
		if err := svc.Handle(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		m := commands.Message{EventID: fmt.Sprintf("Ev%09d", i), User: "U0BOB", Channel: "C0RELEASE", Text: "queue", Via: commands.ViaMention}
		if err := svc.Handle(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}
