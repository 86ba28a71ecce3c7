package commands_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// BenchmarkRollingAdd is the cost of one entry fed to the /metrics window
// with n releases done in the last 7 days: it should not grow with the
// log, only (a sorted insert) with the window.
func BenchmarkRollingAdd(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("window=%d", n), func(b *testing.B) {
			r := commands.NewRollingFigures(7 * 24 * time.Hour)
			t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			step := 7 * 24 * time.Hour / time.Duration(n)
			seq := uint64(0)
			feed := func(i int) {
				at := t0.Add(time.Duration(i) * step)
				ticket := fmt.Sprintf("P-%d", i)
				for _, e := range []commands.AuditEntry{
					{Time: at, Action: commands.ActionRequest, Ticket: ticket, To: commands.StateRequested, Detail: "components: backend"},
					{Time: at.Add(time.Minute), Action: commands.ActionStart, Ticket: ticket, From: commands.StateAccepted, To: commands.StateDeploying},
					{Time: at.Add(time.Duration(i%97) * time.Minute), Action: commands.ActionFinish, Ticket: ticket, From: commands.StateDeploying, To: commands.StateDone},
				} {
					seq++
					e.Seq = seq
					r.Add(e)
				}
			}
			for i := range n {
				feed(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				feed(n + i)
				if i%n == 0 {
					r.Figures(t0.Add(time.Duration(n+i) * step))
				}
			}
		})
	}
}
