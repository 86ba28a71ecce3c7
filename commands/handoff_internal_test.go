package commands

import (
	"testing"
	"time"
)

// TestTypicalDeploy: the median from dep start to done of the finished
// releases only; none finished, no estimate.
func TestTypicalDeploy(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	rel := func(state State, started, minutes int) Release {
		r := Release{State: state, Updated: t0.Add(time.Duration(started+minutes) * time.Minute)}
		if started >= 0 {
			r.Started = t0.Add(time.Duration(started) * time.Minute)
		}
		return r
	}
	tests := []struct {
		name   string
		recent []Release
		want   time.Duration
		ok     bool
	}{
		{"none", nil, 0, false},
		{"only open and cancelled ones", []Release{rel(StateDeploying, 0, 5), rel(StateCancelled, 0, 9)}, 0, false},
		{"never started (done without a dep start)", []Release{rel(StateDone, -1, 5)}, 0, false},
		{"one", []Release{rel(StateDone, 0, 12)}, 12 * time.Minute, true},
		{"the median of three, whatever the order", []Release{rel(StateDone, 0, 30), rel(StateDone, 5, 8), rel(StateDone, 1, 10), rel(StateRejected, 0, 1)}, 10 * time.Minute, true},
	}
	for _, tt := range tests {
		got, ok := typicalDeploy(tt.recent)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: typicalDeploy = %v, %t; want %v, %t", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestJoinTickets(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{nil, ""}, {[]string{"PAY-1"}, "PAY-1"}, {[]string{"PAY-1", "PAY-2"}, "PAY-1 and PAY-2"},
		{[]string{"PAY-1", "PAY-2", "PAY-3"}, "PAY-1, PAY-2 and PAY-3"},
	} {
		if got := joinTickets(tt.in); got != tt.want {
			t.Errorf("joinTickets(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
