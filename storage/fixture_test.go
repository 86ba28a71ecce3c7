package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

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

// TestOpensSchema2Fixture opens a database written by the release before
// schema 3 (testdata/schema2-demo.db: the README's console walkthrough piped
// into that version's dobrobot console, then copied with its dobrobot backup:
// DEMO-1 done, DEMO-2 deploying and holding backend, DEMO-5 rejected,
// payments frozen and unfrozen, ios left frozen, DEMO-1 requested again). It
// upgrades in place to schema 3 in one transaction, passes bbolt's page
// check, its audit chain verifies and replays to the stored state, its
// releases read back through OpenReleases with no environment (the default
// one), and the freeze it holds is the freeze of every environment: a
// freeze of another environment is another key, and deleting it by ("", 0)
// removes the old one.
func TestOpensSchema2Fixture(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "schema2-demo.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(path)
	if err != nil {
		t.Fatalf("Open of the schema 2 fixture: %v", err)
	}
	defer db.Close()
	var schema string
	if err := db.Bolt().View(func(tx *bolt.Tx) error {
		schema = string(tx.Bucket([]byte("meta")).Get([]byte("schema")))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(storage.SchemaVersion); schema != want {
		t.Errorf("schema after the upgrade = %q, want %q", schema, want)
	}
	if err := db.Check(); err != nil {
		t.Errorf("Check after the upgrade: %v", err)
	}
	ctx := context.Background()
	head, err := commands.VerifyStore(ctx, db, nil)
	if err != nil {
		t.Fatalf("the fixture's audit chain or state does not verify after the upgrade: %v", err)
	}

	type row struct{ Ticket, State, Env string }
	type lock struct {
		Component, Ticket, Env string
		Frozen                 bool
	}
	rows := func(rels []commands.Release) []row {
		var out []row
		for _, r := range rels {
			out = append(out, row{r.Ticket, string(r.State), r.EnvName()})
		}
		return out
	}
	read := func(tx commands.Tx) (map[string]any, error) {
		got := map[string]any{}
		for _, ticket := range []string{"DEMO-1", "DEMO-2", "DEMO-5"} {
			open, err := tx.OpenReleases(ticket)
			if err != nil {
				return nil, err
			}
			got["open "+ticket] = rows(open)
		}
		ls, err := tx.Locks()
		if err != nil {
			return nil, err
		}
		var locks []lock
		for _, l := range ls {
			locks = append(locks, lock{l.Component, l.Ticket, l.Env, l.Frozen()})
		}
		got["locks"] = locks
		recent, err := tx.Recent(10)
		if err != nil {
			return nil, err
		}
		got["recent"] = rows(recent)
		deployed, err := tx.Deployed()
		got["deployed"] = len(deployed)
		return got, err
	}
	var got map[string]any
	if err := db.View(ctx, func(tx commands.Tx) (err error) { got, err = read(tx); return err }); err != nil {
		t.Fatal(err)
	}
	got["audit entries"] = head.Seq
	want := map[string]any{
		"open DEMO-1": []row{{"DEMO-1", "requested", commands.DefaultEnv}},
		"open DEMO-2": []row{{"DEMO-2", "deploying", commands.DefaultEnv}},
		"open DEMO-5": []row(nil),
		"locks":       []lock{{Component: "backend", Ticket: "DEMO-2"}, {Component: "ios", Frozen: true}},
		"recent": []row{{"DEMO-1", "requested", commands.DefaultEnv}, {"DEMO-5", "rejected", commands.DefaultEnv},
			{"DEMO-2", "deploying", commands.DefaultEnv}, {"DEMO-1", "done", commands.DefaultEnv}},
		"deployed":      0, // nothing is backfilled
		"audit entries": uint64(16),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the fixture after the upgrade (-want +got):\n%s", diff)
	}

	// The old freeze is the freeze of every environment: ios frozen in qa
	// is another, and deleting ("ios", 0, "qa") leaves the old one.
	var frozen []string
	err = db.Update(ctx, func(tx commands.Tx) error {
		if err := tx.PutLock(commands.Lock{Component: "ios", Env: "qa", By: "U0ADMIN"}); err != nil {
			return err
		}
		for _, env := range []string{"qa", ""} {
			ls, err := tx.Locks()
			if err != nil {
				return err
			}
			var names []string
			for _, l := range ls {
				if l.Frozen() {
					names = append(names, l.Component+" in "+strconv.Quote(l.Env))
				}
			}
			frozen = append(frozen, strings.Join(names, ", "))
			if err := tx.DeleteLock("ios", 0, env); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{`ios in "", ios in "qa"`, `ios in ""`}, frozen); diff != "" {
		t.Errorf("freezes before each delete (-want +got):\n%s", diff)
	}
	var left []commands.Lock
	if err := db.View(ctx, func(tx commands.Tx) (err error) { left, err = tx.Locks(); return err }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Frozen() {
		t.Errorf("locks after deleting both freezes: %+v, want backend's lock only", left)
	}
}
