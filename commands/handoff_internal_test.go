package commands

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// recentTx is a Tx that only answers Recent, counting the reads.
type recentTx struct {
	Tx
	reads int
	rels  []Release
}

func (t *recentTx) Recent(int) ([]Release, error) {
	t.reads++
	return t.rels, nil
}

// TestDeployEstimateIsKept: queue reads the recent releases at most every
// estimateFor, and again at once after a finish in this Service.
func TestDeployEstimateIsKept(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	done := func(minutes int) Release {
		return Release{State: StateDone, Started: t0, Updated: t0.Add(time.Duration(minutes) * time.Minute)}
	}
	s := &Service{}
	tx := &recentTx{rels: []Release{done(10)}}
	type read struct {
		typical time.Duration
		reads   int
	}
	at := func(now time.Time) read {
		t.Helper()
		d, ok, err := s.typicalDeploy(tx, now)
		if err != nil || !ok {
			t.Fatalf("typicalDeploy: %v, %t, %v", d, ok, err)
		}
		return read{d, tx.reads}
	}
	var got []read
	got = append(got, at(t0))                     // read
	tx.rels = []Release{done(20)}                 // another instance finished one
	got = append(got, at(t0.Add(59*time.Second))) // kept
	got = append(got, at(t0.Add(time.Minute)))    // read again
	tx.rels = []Release{done(30)}
	s.forgetDeploys() // a finish here
	got = append(got, at(t0.Add(61*time.Second)))
	want := []read{{10 * time.Minute, 1}, {10 * time.Minute, 1}, {20 * time.Minute, 2}, {30 * time.Minute, 3}}
	if !slices.Equal(got, want) {
		t.Errorf("typical, reads = %v, want %v", got, want)
	}
}

// TestHandoffsLongLine: in a long line for one component, a release is
// told its place, the first releases ahead and how many more, and a wait of
// the holder's time left plus a deploy for each release between.
func TestHandoffsLongLine(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	var open []Release
	for i := 1; i <= 5; i++ {
		open = append(open, Release{ID: uint64(i), Ticket: fmt.Sprintf("PAY-%d", i), State: StateAccepted, Locks: []string{"backend"}})
	}
	open[0].State, open[0].Started = StateDeploying, t0 // PAY-1 deploys since 9:00
	locks := []Lock{{Component: "backend", Release: 1, Ticket: "PAY-1"}}
	got := map[string]string{}
	for id, h := range handoffs(open, locks, nil, t0.Add(4*time.Minute), 10*time.Minute, true) {
		got[open[id-1].Ticket] = words(h.text())
	}
	want := map[string]string{
		"PAY-2": "#2 for backend (after PAY-1), its turn in about 6 min",
		"PAY-3": "#3 for backend (after PAY-1 and PAY-2), its turn in about 16 min",
		"PAY-4": "#4 for backend (after PAY-1, PAY-2 and 1 more), its turn in about 26 min",
		"PAY-5": "#5 for backend (after PAY-1, PAY-2 and 2 more), its turn in about 36 min",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hand-offs (-want +got):\n%s", diff)
	}
}

// words is t as plain words: each span's text, or its ID.
func words(t Text) string {
	var b strings.Builder
	for _, s := range t {
		if s.Text != "" {
			b.WriteString(s.Text)
		} else {
			b.WriteString(s.ID)
		}
	}
	return b.String()
}
