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
	once             sync.Once
	dir              string
	empty, full, one string
	err              error
}

func benchEnvFiles(b *testing.B) (empty, full, one string) {
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
		// without environments.
		envFiles.one = filepath.Join(envFiles.dir, "one.db")
		db, err := storage.Open(envFiles.one)
		if err != nil {
			envFiles.err = err
			return
		}
		_, err = seedOpen(ctx, db, 30, "QUEUED")
		d := &driver{svc: newService(db), seq: benchSeq}
		for _, c := range lifecycle("DONE-1", "U0DONE") {
			if err == nil {
				err = d.do(ctx, c[0], c[1])
			}
		}
		if err == nil {
			err = emptyOutbox(ctx, db)
		}
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		envFiles.err = err
	})
	if envFiles.err != nil {
		b.Fatal(envFiles.err)
	}
	return envFiles.empty, envFiles.full, envFiles.one
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
	empty, full, one := benchEnvFiles(b)
	sides := []struct {
		name, path string
		texts      []string
		service    func(*storage.DB) *commands.Service
	}{
		{"empty", empty, []string{"queue", "where"}, func(db *storage.DB) *commands.Service { return newEnvService(db, time.Now) }},
		{"history", full, []string{"queue", "where"}, func(db *storage.DB) *commands.Service { return newEnvService(db, time.Now) }},
		{"one-env", one, []string{"queue"}, func(db *storage.DB) *commands.Service { return newService(db) }},
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
// checked) on the same two files as BenchmarkEnvCommands: each operation
// takes a new ticket through the pipeline, the clock running for that one
// command only, so that -benchmem counts its allocations alone. The files
// gain the finished tickets.
func BenchmarkEnvDepStart(b *testing.B) {
	empty, full, _ := benchEnvFiles(b)
	for _, side := range []struct{ name, path string }{{"empty", empty}, {"history", full}} {
		b.Run(side.name, func(b *testing.B) {
			db, err := storage.Open(side.path)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			d := &driver{svc: newEnvService(db, time.Now), seq: benchSeq}
			defer func() { benchSeq = d.seq }()
			ctx := context.Background()
			b.StopTimer()
			for range b.N {
				benchTicket++
				ticket := fmt.Sprintf("BENCH-%d", benchTicket)
				for i, c := range pipeline(ticket, "U0BENCHREQ", fmt.Sprintf("4.0.%d", benchTicket)) {
					if i == pipelineStart {
						b.StartTimer()
					}
					err := d.do(ctx, c[0], c[1])
					if i == pipelineStart {
						b.StopTimer()
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if err := emptyOutbox(ctx, db); err != nil {
					b.Fatal(err)
				}
				if err := wentThrough(ctx, db, ticket); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
