package commands

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestQueueOrder: hotfixes an admin let go first lead the waiting
// releases, in the order they were let go; one only asked for, or let go
// but not accepted yet, keeps its place; a release that holds its locks
// keeps its place whatever jumps.
func TestQueueOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	rel := func(id uint64, state State, hotfix bool, firstBy string, minute int) Release {
		r := Release{ID: id, State: state, Hotfix: hotfix, FirstBy: firstBy}
		if firstBy != "" {
			r.FirstSince = t0.Add(time.Duration(minute) * time.Minute)
		}
		return r
	}
	tests := []struct {
		name string
		open []Release
		want []uint64
	}{
		{"no hotfix", []Release{rel(1, StateClaimed, false, "", 0), rel(2, StateAccepted, false, "", 0)}, []uint64{1, 2}},
		{"asked, not let go", []Release{rel(1, StateClaimed, false, "", 0), rel(2, StateClaimed, true, "", 0)}, []uint64{1, 2}},
		{"let go, not accepted yet", []Release{rel(1, StateClaimed, false, "", 0), rel(2, StateRequested, true, "U0ADMIN", 0)}, []uint64{1, 2}},
		{"let go: ahead of the waiting", []Release{rel(1, StateClaimed, false, "", 0), rel(2, StateAccepted, false, "", 0), rel(3, StateClaimed, true, "U0ADMIN", 0)}, []uint64{3, 1, 2}},
		{"a deploy keeps its place", []Release{rel(1, StateDeploying, false, "", 0), rel(2, StateClaimed, false, "", 0), rel(3, StateFailed, false, "", 0), rel(4, StateClaimed, false, "", 0), rel(5, StateAccepted, true, "U0ADMIN", 0)}, []uint64{1, 5, 3, 2, 4}},
		{"two hotfixes: the first let go leads", []Release{rel(1, StateClaimed, false, "", 0), rel(2, StateClaimed, true, "U0ADMIN", 5), rel(3, StateClaimed, true, "U0ADMIN", 2)}, []uint64{3, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			for _, r := range queueOrder(tt.open) {
				got = append(got, r.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("queue order (-want +got):\n%s", diff)
			}
		})
	}
}
