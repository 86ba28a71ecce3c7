package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// BenchmarkReport times `report last 90d` (commands.ComputeReport, what the
// verb and dobrobot report run) over the history make bench uses: 1,000,000
// audit entries of 100,000 releases, ten minutes apart (about 23 months),
// reported at its last entry. It reports the time per report and the peak
// of the heap in use above what it was before (sampled every millisecond),
// the CPU time per report (user and system, of the whole process: on a
// loaded machine less noisy than the wall time), and the releases done in
// the period. Issue 18's target: under 1 s, and
// memory bounded by the period, not the log.
func BenchmarkReport(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "history.db")
	if dir := os.Getenv("DOBROBENCH_CACHE"); dir != "" {
		path = filepath.Join(dir, "history-100000-1000000.db") // the file dobrobench -cache keeps
	}
	if _, err := os.Stat(path); err != nil {
		db, err := storage.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := generateHistory(ctx, db, 100_000, 1_000_000); err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	db, err := storage.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var last time.Time
	err = db.View(ctx, func(tx commands.Tx) error {
		seq, _, err := tx.AuditHead()
		if err != nil {
			return err
		}
		// The last entry's time, as generateHistory writes it.
		rel := (seq + 9) / 10
		last = historyStart.Add(time.Duration(rel)*10*time.Minute + 9*7*time.Minute)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	c, err := commands.Parse("report last 90d")
	if err != nil {
		b.Fatal(err)
	}
	p, err := commands.ReportPeriod(c, last)
	if err != nil {
		b.Fatal(err)
	}

	var peak atomic.Uint64
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&m)
				if m.HeapInuse > base && m.HeapInuse-base > peak.Load() {
					peak.Store(m.HeapInuse - base)
				}
			}
		}
	}()
	var rep commands.Report
	cpu0 := cpuNow()
	b.ResetTimer()
	for b.Loop() {
		if rep, err = commands.ComputeReport(ctx, db, p, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := cpuNow() - cpu0
	close(stop)
	<-sampled
	if len(rep.Envs) != 1 || rep.Envs[0].Current.Deploys == 0 {
		b.Fatalf("the report of the history is empty: %+v", rep)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/report")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/report")
	b.ReportMetric(float64(peak.Load())/(1<<20), "MB-peak-heap")
	b.ReportMetric(float64(rep.Envs[0].Current.Deploys), "deploys")
}

// cpuNow returns the CPU time this process has used so far.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
