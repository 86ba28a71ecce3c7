package main

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// TestEnvHistory generates a small three-environment history as figure 3
// does and checks that it has the core's shape: it verifies and replays,
// every release names its environment and version, the audit entries carry
// them, and "what is where" holds each environment's last release.
func TestEnvHistory(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	tpl, err := recordTemplate(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(filepath.Join(dir, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const releases = 3*5 + 1 // five tickets through production, one in dev
	entries, err := generateEnvHistory(ctx, db, tpl, releases)
	if err != nil {
		t.Fatal(err)
	}
	if err := seedOpenEnvs(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := commands.VerifyStore(ctx, db, nil); err != nil {
		t.Fatalf("the generated history does not verify: %v", err)
	}

	perEnv := map[string]int{}
	var deployed []commands.Deployed
	var open []commands.Release
	err = db.View(ctx, func(tx commands.Tx) error {
		for _, ticket := range []string{"PAY-1", "PAY-5", "PAY-6"} {
			rels, err := tx.Releases(ticket, 0)
			if err != nil {
				return err
			}
			for _, r := range rels {
				if r.State != commands.StateDone || r.Build == "" {
					t.Errorf("%s in %s: state %s, build %q; want done with a build", r.Ticket, r.Env, r.State, r.Build)
				}
				perEnv[r.Env]++
			}
		}
		if deployed, err = tx.Deployed(); err != nil {
			return err
		}
		open, err = tx.Open()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"dev": 3, "qa": 2, "production": 2}; !cmp.Equal(perEnv, want) {
		t.Errorf("releases of PAY-1, PAY-5, PAY-6 per environment = %v, want %v", perEnv, want)
	}
	type where struct{ Env, Component, Ticket, Build string }
	var gotWhere []where
	for _, d := range deployed {
		gotWhere = append(gotWhere, where{d.Env, d.Component, d.Ticket, d.Build})
	}
	wantWhere := []where{
		{"dev", "backend", "PAY-6", "1.0.6"}, {"production", "backend", "PAY-5", "1.0.5"}, {"qa", "backend", "PAY-5", "1.0.5"},
	}
	if diff := cmp.Diff(wantWhere, gotWhere); diff != "" {
		t.Errorf("what is where (-want +got):\n%s", diff)
	}
	openPerEnv := map[string]int{}
	for _, r := range open {
		openPerEnv[r.Env]++
	}
	if want := map[string]int{"dev": 10, "qa": 10, "production": 10}; !cmp.Equal(openPerEnv, want) {
		t.Errorf("open releases per environment = %v, want %v", openPerEnv, want)
	}

	// PAY-5's trail is the template's, with its own ticket and version.
	type shape struct {
		Action            commands.Action
		From, To          commands.State
		Env, Version, Via string
	}
	var got, want []shape
	for _, e := range tpl.audit {
		v := e.Version
		if v != "" {
			v = "1.0.5"
		}
		want = append(want, shape{e.Action, e.From, e.To, e.Env, v, e.Via})
	}
	err = db.Audit(ctx, commands.AuditFilter{Ticket: "PAY-5"}, func(e commands.AuditEntry) error {
		got = append(got, shape{e.Action, e.From, e.To, e.Env, e.Version, e.Via})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PAY-5's audit trail (-want +got):\n%s", diff)
	}
	for _, s := range want {
		if s.Action != commands.ActionRefused && (s.Env == "" || s.Version == "") {
			t.Errorf("template entry %+v names no environment or version", s)
		}
	}
	if want := 5*len(tpl.audit) + 4; entries != want {
		t.Errorf("generateEnvHistory wrote %d audit entries, want %d (five pipelines and dev's four)", entries, want)
	}
}

// TestEnvBenchRuns runs figure 3's pipeline rounds on two small files, so
// that a change in the grammar or the policy that breaks the pipeline
// fails here rather than in make bench.
func TestEnvBenchRuns(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	tpl, err := recordTemplate(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{filepath.Join(dir, "empty.db"), filepath.Join(dir, "full.db")}
	for i, p := range paths {
		db, err := storage.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if _, err := generateEnvHistory(ctx, db, tpl, 30); err != nil {
				t.Fatal(err)
			}
		}
		err = seedOpenEnvs(ctx, db)
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := benchEnvHistory(ctx, paths[0], paths[1], 3)
	if err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]latency{"queue": res.queueFull, "where": res.whereEmpty, "dep start": res.startFull} {
		if l.n != 3 {
			t.Errorf("%s: %d samples, want 3", name, l.n)
		}
	}
}
