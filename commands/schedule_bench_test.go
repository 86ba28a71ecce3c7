//go:build unix

package commands_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// idleFor is how long BenchmarkScheduleIdle leaves the scheduler idle.
const idleFor = 3 * time.Second

// BenchmarkScheduleIdle is issue 16's "no CPU while idle": the process's
// CPU time while Schedule runs for idleFor of real time with nothing due
// soon, with no due time pending and with 10,000 (a day ahead and later).
// It reports CPU milliseconds per idle second (cpu-ms/s); the two should be
// equal within noise, because the idle scheduler holds one timer and reads
// nothing. Run it with -benchtime 1x.
func BenchmarkScheduleIdle(b *testing.B) {
	for _, pending := range []int{0, 10_000} {
		b.Run(fmt.Sprintf("pending=%d", pending), func(b *testing.B) {
			svc, db := benchService(b)
			ctx := context.Background()
			start := time.Now()
			err := db.Update(ctx, func(tx commands.Tx) error {
				for i := range pending {
					d := commands.Due{At: start.Add(24*time.Hour + time.Duration(i)*time.Second), Kind: commands.DueRemindApproval, Release: uint64(i + 1)}
					if err := tx.PutDue(d); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			var cpu time.Duration
			for range b.N {
				run, stop := context.WithCancel(ctx)
				done := make(chan struct{})
				before := cpuTime(b)
				go func() { defer close(done); svc.Schedule(run) }()
				time.Sleep(idleFor) // measuring idleness takes real time
				stop()
				<-done
				cpu += cpuTime(b) - before
			}
			b.ReportMetric(float64(cpu.Microseconds())/1000/(idleFor.Seconds()*float64(b.N)), "cpu-ms/s")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
