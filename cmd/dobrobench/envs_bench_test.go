package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// The three-environment files of figure 3, generated once per test binary
// run for BenchmarkEnvCommands: a file with one ticket's pipeline (three
// releases) and one with DOBROBENCH_RELEASES finished releases (default
// 100,000), each with the open queue of ten releases per environment.
var envFiles struct {
	once                    sync.Once
	dir                     string
	empty, full, one, today string
	err                     error
}

func benchEnvFiles(b *testing.B) (empty, full, one, today string) {
	envFiles.once.Do(func() {
		releases := 100_000
		if s := os.Getenv("DOBROBENCH_RELEASES"); s != "" {
			if releases, envFiles.err = strconv.Atoi(s); envFiles.err != nil {
				return
			}
		}
		ctx := context.Background()
		if envFiles.dir, envFiles.err = os.MkdirTemp("", "dobrobench-envs-"); envFiles.err != nil {
			return
		}
		tpl, err := recordTemplate(ctx, envFiles.dir)
		if err != nil {
			envFiles.err = err
			return
		}
		envFiles.empty, envFiles.full = filepath.Join(envFiles.dir, "empty.db"), filepath.Join(envFiles.dir, "full.db")
		for _, p := range []string{envFiles.empty, envFiles.full} {
			db, err := storage.Open(p)
			if err != nil {
				envFiles.err = err
				return
			}
			// The file "without history" has one ticket's pipeline, so
			// that queue has the same deploy estimate on both.
			n := len(benchEnvs)
			if p == envFiles.full {
				n = releases
			}
			_, err = generateEnvHistory(ctx, db, tpl, n)
			if err == nil {
				err = seedOpenEnvs(ctx, db)
			}
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				envFiles.err = err
				return
			}
		}
		// The same 30 open releases in the one implicit environment, and
		// one release done there: what queue costs for as many releases
		// without environments; and today's figure 3 queue of ten.
		for _, f := range []struct {
			path *string
			name string
			open int
		}{{&envFiles.one, "one.db", 30}, {&envFiles.today, "today.db", 10}} {
			*f.path = filepath.Join(envFiles.dir, f.name)
			db, err := storage.Open(*f.path)
			if err != nil {
				envFiles.err = err
				return
			}
			_, err = seedOpen(ctx, db, f.open, "QUEUED")
			d := &driver{svc: newService(db), seq: benchSeq}
			for _, c := range lifecycle("DONE-1", "U0DONE") {
				if err == nil {
					err = d.do(ctx, c[0], c[1])
				}
			}
			benchSeq = d.seq
			if err == nil {
				err = emptyOutbox(ctx, db)
			}
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				envFiles.err = err
				return
			}
		}
		envFiles.err = err
	})
	if envFiles.err != nil {
		b.Fatal(envFiles.err)
	}
	return envFiles.empty, envFiles.full, envFiles.one, envFiles.today
}

// benchSeq is the last event number BenchmarkEnvCommands used.
var benchSeq = 1 << 30

// TestMain removes the files BenchmarkEnvCommands generated.
func TestMain(m *testing.M) {
	code := m.Run()
	if envFiles.dir != "" {
		os.RemoveAll(envFiles.dir)
	}
	os.Exit(code)
}

// BenchmarkEnvCommands runs queue and where through a Service with the
// three environments on a file without history and on one with 100k
// finished releases over them, and queue on a file with as many open
// releases in the one implicit environment (one-env) (figure 3's pipeline rows, in one process,
// for profiling: go test -run '^$' -bench EnvCommands -cpuprofile cpu.out
// ./cmd/dobrobench). Neither command changes a release, so the files stay
// as generated.
func BenchmarkEnvCommands(b *testing.B) {
	empty, full, one, today := benchEnvFiles(b)
	sides := []struct {
		name, path string
		texts      []string
		service    func(*storage.DB) *commands.Service
	}{
		{"empty", empty, []string{"queue", "where"}, func(db *storage.DB) *commands.Service { return newEnvService(db, time.Now) }},
		{"history", full, []string{"queue", "where"}, func(db *storage.DB) *commands.Service { return newEnvService(db, time.Now) }},
		{"one-env", one, []string{"queue"}, func(db *storage.DB) *commands.Service { return newService(db) }},
		{"today", today, []string{"queue"}, func(db *storage.DB) *commands.Service { return newService(db) }},
	}
	for _, side := range sides {
		for _, text := range side.texts {
			b.Run(fmt.Sprintf("%s/%s", text, side.name), func(b *testing.B) {
				db, err := storage.Open(side.path)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				// Event IDs must be new to the file at every run of b.N,
				// or the inbox would take them for redeliveries.
				d := &driver{svc: side.service(db), seq: benchSeq}
				defer func() { benchSeq = d.seq }()
				ctx := context.Background()
				b.ResetTimer()
				for i := range b.N {
					if err := d.do(ctx, fmt.Sprintf("U0BENCH%04d", i%100), text); err != nil {
						b.Fatal(err)
					}
					if i%100 == 99 {
						b.StopTimer()
						if err := emptyOutbox(ctx, db); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
				}
			})
		}
	}
}

// benchTicket numbers BenchmarkEnvDepStart's tickets across its runs.
var benchTicket int

// BenchmarkEnvDepStart times production's dep start (the promotion rule
// checked) on the same two files as BenchmarkEnvCommands, and the dep
// start of the single-environment lifecycle with the same 30 open releases
// (one-env) and with figure 3's ten (today): each operation
// takes a new ticket through the pipeline, the clock running for that one
// command only, so that -benchmem counts its allocations alone. The files
// gain the finished tickets.
func BenchmarkEnvDepStart(b *testing.B) {
	empty, full, one, today := benchEnvFiles(b)
	envSteps := func(ticket string) [][2]string {
		return pipeline(ticket, "U0BENCHREQ", fmt.Sprintf("4.0.%d", benchTicket))
	}
	oneSteps := func(ticket string) [][2]string { return lifecycle(ticket, "U0BENCHREQ") }
	envSvc := func(db *storage.DB) *commands.Service { return newEnvService(db, time.Now) }
	oneSvc := func(db *storage.DB) *commands.Service { return newService(db) }
	for _, side := range []struct {
		name, path string
		service    func(*storage.DB) *commands.Service
		steps      func(string) [][2]string
		start      int      // the index of the timed dep start in steps
		envs       []string // where the ticket must be done
	}{
		{"empty", empty, envSvc, envSteps, pipelineStart, benchEnvs},
		{"history", full, envSvc, envSteps, pipelineStart, benchEnvs},
		{"one-env", one, oneSvc, oneSteps, 2, []string{commands.DefaultEnv}},
		{"today", today, oneSvc, oneSteps, 2, []string{commands.DefaultEnv}},
	} {
		b.Run(side.name, func(b *testing.B) {
			db, err := storage.Open(side.path)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			d := &driver{svc: side.service(db), seq: benchSeq}
			defer func() { benchSeq = d.seq }()
			ctx := context.Background()
			b.StopTimer()
			for range b.N {
				benchTicket++
				ticket := fmt.Sprintf("BENCH-%d", benchTicket)
				for i, c := range side.steps(ticket) {
					if i == side.start {
						b.StartTimer()
					}
					err := d.do(ctx, c[0], c[1])
					if i == side.start {
						b.StopTimer()
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if err := emptyOutbox(ctx, db); err != nil {
					b.Fatal(err)
				}
				if err := doneIn(ctx, db, ticket, side.envs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
