package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// TestOpensSchema1Fixture opens a database written by the release before
// schema 2 (testdata/schema1-demo.db: the README's console demo, with a
// release done, one deploying, one rejected, a component
// frozen and unfrozen and one release waiting; made with `dobrobot backup`
// of that version). It upgrades in place, passes bbolt's page check, its
// audit chain verifies and replays to the stored state, and what it holds
// reads back as that version wrote it. A later schema change keeps this
// test and adds a fixture of its own predecessor.
func TestOpensSchema1Fixture(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "schema1-demo.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(path)
	if err != nil {
		t.Fatalf("Open of the schema 1 fixture: %v", err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Errorf("Check after the upgrade: %v", err)
	}
	ctx := context.Background()
	head, err := commands.VerifyStore(ctx, db, nil)
	if err != nil {
		t.Fatalf("the fixture's audit chain or state does not verify after the upgrade: %v", err)
	}
	type row struct{ Ticket, State string }
	var (
		open   []row
		locks  []string
		recent []row
	)
	err = db.View(ctx, func(tx commands.Tx) error {
		rels, err := tx.Open()
		for _, r := range rels {
			open = append(open, row{r.Ticket, string(r.State)})
		}
		if err != nil {
			return err
		}
		ls, err := tx.Locks()
		for _, l := range ls {
			locks = append(locks, l.Component)
		}
		if err != nil {
			return err
		}
		rels, err = tx.Recent(10)
		for _, r := range rels {
			recent = append(recent, row{r.Ticket, string(r.State)})
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{"open": open, "locks": locks, "recent": recent, "audit entries": head.Seq}
	want := map[string]any{
		"open":          []row{{"DEMO-2", "deploying"}, {"DEMO-1", "requested"}},
		"locks":         []string{"backend"},
		"recent":        []row{{"DEMO-1", "requested"}, {"DEMO-5", "rejected"}, {"DEMO-2", "deploying"}, {"DEMO-1", "done"}},
		"audit entries": uint64(17),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the fixture after the upgrade (-want +got):\n%s", diff)
	}
}
