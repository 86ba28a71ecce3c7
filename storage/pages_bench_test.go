package storage_test

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

// readyTracker finds every ticket, ready for release.
type readyTracker struct{}

func (readyTracker) Ticket(_ context.Context, key string) (commands.Ticket, error) {
	return commands.Ticket{Key: key, Summary: "Benchmark " + key, Status: "Ready", Assignee: "ann@example.com",
		FixVersions: []string{"1.0"}, Components: []string{"backend"}}, nil
}

// BenchmarkTransitionPages counts the pages a durable transition writes
// (bbolt's TxStats.Write: every page of the commit, the meta page
// included), the figure that bounds make bench's figure 1: each page is a
// write the fsync waits for. The release's four commands go through the
// Service in turn, as in figure 1, after a warm-up of 4,000 so that the
// B+trees have their working depth.
func BenchmarkTransitionPages(b *testing.B) {
	db, err := storage.Open(filepath.Join(b.TempDir(), "pages.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	svc := commands.NewService(commands.Config{Store: db, Tracker: readyTracker{}, Now: time.Now, Log: zerolog.Nop(),
		Policy: commands.Policy{Approvers: []string{"U0APPROVER"}, Admins: []string{"U0ADMIN"}, Components: []string{"backend"}, Channel: "C0RELEASE"}})
	ctx := context.Background()
	writes := func() int64 { s := db.Bolt().Stats(); return s.TxStats.GetWrite() }
	seq := 0
	transition := func() {
		ticket, user := fmt.Sprintf("REL-%d", seq/4), fmt.Sprintf("U0REQ%04d", seq/4%1000)
		c := [][2]string{{user, "dobro " + ticket + " no_need_admin"}, {"U0APPROVER", "accept " + ticket},
			{user, "dep start " + ticket}, {user, "dep finish " + ticket}}[seq%4]
		m := commands.Message{EventID: fmt.Sprintf("Ev%09d", seq), User: c[0], Channel: "C0RELEASE", Text: c[1], Via: commands.ViaMention}
		if err := svc.Handle(ctx, m); err != nil {
			b.Fatal(err)
		}
		seq++
	}
	for range 4000 {
		transition()
	}
	before := writes()
	b.ResetTimer()
	for range b.N {
		transition()
	}
	b.ReportMetric(float64(writes()-before)/float64(b.N), "pages/op")
}
