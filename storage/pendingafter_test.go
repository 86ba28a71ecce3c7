package storage_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestPendingAfter: the effects after a given ID, oldest first, at most max,
// as Pending lists them.
func TestPendingAfter(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "dobrobot.db"))
	defer db.Close()
	ctx := context.Background()
	err := db.Update(ctx, func(tx commands.Tx) error {
		for i := range 10 {
			if _, err := tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U01ANN", Text: commands.Text{commands.Plain(fmt.Sprint("message ", i+1))}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Delivered(ctx, 5, 8); err != nil {
		t.Fatal(err)
	}
	ids := func(es []commands.Effect) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	all, err := db.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after uint64
		max   int
		want  []uint64
	}{
		{0, 0, []uint64{1, 2, 3, 4, 6, 7, 9, 10}},
		{4, 0, []uint64{6, 7, 9, 10}},
		{5, 2, []uint64{6, 7}},
		{10, 0, nil},
		{1 << 40, 5, nil},
	} {
		got, err := db.PendingAfter(ctx, tc.after, tc.max)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
			t.Errorf("PendingAfter(%d, %d) (-want +got):\n%s", tc.after, tc.max, diff)
		}
		var want []commands.Effect
		for _, e := range all {
			if e.ID > tc.after && (tc.max <= 0 || len(want) < tc.max) {
				want = append(want, e)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("PendingAfter(%d, %d) differs from Pending (-Pending +PendingAfter):\n%s", tc.after, tc.max, diff)
		}
	}
}
