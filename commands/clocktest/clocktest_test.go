package clocktest_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands/clocktest"
)

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// fired drains ch without waiting and returns what it held.
func fired(ch <-chan time.Time) []time.Time {
	var out []time.Time
	for {
		select {
		case v := <-ch:
			out = append(out, v)
		default:
			return out
		}
	}
}

func TestAdvanceFiresDueTimersOnly(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		want    int // timers fired
		wantA   []time.Time
		wantB   []time.Time
	}{
		{"before either", time.Minute, 0, nil, nil},
		{"exactly the first", time.Hour, 1, []time.Time{t0.Add(time.Hour)}, nil},
		{"past both", 3 * time.Hour, 2, []time.Time{t0.Add(time.Hour)}, []time.Time{t0.Add(2 * time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clocktest.New(t0)
			a, _ := c.Timer(time.Hour)
			b, _ := c.Timer(2 * time.Hour)
			if got := c.Advance(tt.advance); got != tt.want {
				t.Errorf("Advance(%v) fired %d, want %d", tt.advance, got, tt.want)
			}
			if diff := cmp.Diff(tt.wantA, fired(a)); diff != "" {
				t.Errorf("timer a (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantB, fired(b)); diff != "" {
				t.Errorf("timer b (-want +got):\n%s", diff)
			}
			if got, want := c.Now(), t0.Add(tt.advance); !got.Equal(want) {
				t.Errorf("Now() = %v, want %v", got, want)
			}
		})
	}
}

func TestStoppedTimerNeverFires(t *testing.T) {
	c := clocktest.New(t0)
	ch, stop := c.Timer(time.Minute)
	if !stop() {
		t.Fatal("stop() of a pending timer = false, want true")
	}
	if stop() {
		t.Error("second stop() = true, want false")
	}
	c.Advance(time.Hour)
	if got := fired(ch); len(got) != 0 {
		t.Errorf("a stopped timer fired: %v", got)
	}
	if got := c.Pending(); len(got) != 0 {
		t.Errorf("Pending() = %v, want none", got)
	}
}

// TestStepLetsASleeperActAtEachDeadline runs a sleeper that wakes every
// 10 minutes and records the time it woke at: Step over an hour sees six
// wake-ups, each at its own time, where Advance would have seen one.
func TestStepLetsASleeperActAtEachDeadline(t *testing.T) {
	c := clocktest.New(t0)
	ctx, cancel := context.WithCancel(context.Background())
	woke := make(chan time.Time, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ch, stop := c.Timer(10 * time.Minute)
			select {
			case <-ctx.Done():
				stop()
				return
			case <-ch:
				woke <- c.Now()
			}
		}
	}()
	if err := c.WaitTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(ctx, time.Hour+5*time.Minute); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	close(woke)
	var got []time.Time
	for w := range woke {
		got = append(got, w)
	}
	var want []time.Time
	for i := 1; i <= 6; i++ {
		want = append(want, t0.Add(time.Duration(i)*10*time.Minute))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wake-ups (-want +got):\n%s", diff)
	}
	if got, want := c.Now(), t0.Add(time.Hour+5*time.Minute); !got.Equal(want) {
		t.Errorf("Now() after Step = %v, want %v", got, want)
	}
}

func TestNonPositiveTimerFiresAtOnce(t *testing.T) {
	c := clocktest.New(t0)
	ch, _ := c.Timer(0)
	if diff := cmp.Diff([]time.Time{t0}, fired(ch)); diff != "" {
		t.Errorf("Timer(0) (-want +got):\n%s", diff)
	}
}
