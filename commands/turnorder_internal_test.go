package commands

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTurnOrder pins turnOrder: by ID, a release whose turn passed right
// behind the one that took it (several in ID order), Behind naming a
// release no longer open ignored, and a cycle (an edited store) losing no
// release.
func TestTurnOrder(t *testing.T) {
	rel := func(id, behind uint64) Release { return Release{ID: id, Behind: behind} }
	tests := []struct {
		name string
		open []Release
		want []uint64
	}{
		{"none passed", []Release{rel(1, 0), rel(2, 0), rel(3, 0)}, []uint64{1, 2, 3}},
		{"one behind the next", []Release{rel(1, 2), rel(2, 0), rel(3, 0)}, []uint64{2, 1, 3}},
		{"two behind one, ID order", []Release{rel(1, 3), rel(2, 3), rel(3, 0), rel(4, 0)}, []uint64{3, 1, 2, 4}},
		{"chain", []Release{rel(1, 2), rel(2, 3), rel(3, 0)}, []uint64{3, 2, 1}},
		{"behind one gone", []Release{rel(1, 9), rel(2, 0)}, []uint64{1, 2}},
		{"cycle", []Release{rel(1, 2), rel(2, 1), rel(3, 0)}, []uint64{3, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			for _, o := range turnOrder(tt.open) {
				got = append(got, o.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
}
