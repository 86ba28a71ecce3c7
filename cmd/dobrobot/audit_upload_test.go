package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// auditUploadEntries is how long the log of TestAuditUploadWhole is.
const auditUploadEntries = 100_000

// TestAuditUploadWhole: dobrobot run, in-process against fakeslack, on a
// database whose audit log holds 100 000 entries. An admin's audit command
// by DM uploads the whole export into that DM, byte for byte what dobrobot
// audit export writes, in each format, while the heap stays far below the
// size of the file (the export is streamed, never held). A non-admin's and
// a channel's audit upload nothing.
func TestAuditUploadWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and exports 100 000 audit entries")
	}
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "bot.db")
	fillAudit(t, dbPath, auditUploadEntries)

	slack := fakeslack.New(t)
	slack.KeepUploadBytes(false) // sizes and hashes: the fake's copy would count in the heap
	const admin, other = "U0ADMIN", "U0OTHER"
	if err := os.WriteFile(filepath.Join(dir, "tickets.yaml"), []byte("tickets: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "dobrobot.yaml")
	body := `
slack: {app_token: "${SLACK_APP_TOKEN}", bot_token: "${SLACK_BOT_TOKEN}", api_url: ` + slack.URL + `, channel: C0RELEASE}
storage: {path: ` + dbPath + `}
tracker: {kind: file, file: tickets.yaml, url: https://jira.example.com}
roles: {approvers: [U0APPROVER], admins: [` + admin + `]}
components: [backend]
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLACK_APP_TOKEN": fakeslack.AppToken, "SLACK_BOT_TOKEN": fakeslack.BotToken, "DOBROBOT_CONFIG": cfg}

	ctx, cancel := context.WithCancel(context.Background())
	var out, logs bytes.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- Main(ctx, []string{"--log-level", "warn", "run"}, strings.NewReader(""), &out, &logs, lookupIn(env))
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("dobrobot run exited %d\n%s", code, logs.String())
			}
		case <-time.After(40 * time.Second):
			t.Fatalf("dobrobot run did not stop\n%s", logs.String())
		}
	}
	defer stop()
	if !slack.WaitFor(30*time.Second, func(st fakeslack.State) bool { return st.Connections == slackConns }) {
		t.Fatalf("the bot did not connect\n%s", logs.String())
	}

	dm := fakeslack.DMChannel(admin)
	uploaded := func(n int) fakeslack.Upload {
		t.Helper()
		if !slack.WaitFor(60*time.Second, func(fakeslack.State) bool { return len(slack.Uploads(dm)) >= n }) {
			t.Fatalf("no upload %d in the admin's DM\n%s", n, logs.String())
		}
		return slack.Uploads(dm)[n-1]
	}

	// The JSON lines export, with the heap sampled throughout.
	sampler := startHeapSampler()
	if _, err := slack.Deliver(fakeslack.DM(admin, "audit --format jsonl")); err != nil {
		t.Fatal(err)
	}
	jsonl := uploaded(1)
	peak, live, base := sampler.stop()
	if _, err := slack.Deliver(fakeslack.DM(admin, "audit")); err != nil {
		t.Fatal(err)
	}
	csv := uploaded(2)

	// Refused: a non-admin by DM, the admin in the channel.
	if _, err := slack.Deliver(fakeslack.DM(other, "audit")); err != nil {
		t.Fatal(err)
	}
	if _, err := slack.Deliver(fakeslack.Mention(admin, "C0RELEASE", "audit")); err != nil {
		t.Fatal(err)
	}
	if !slack.WaitFor(20*time.Second, func(fakeslack.State) bool {
		return len(slack.Messages(fakeslack.DMChannel(other))) == 1 && len(slack.Ephemerals(admin)) == 1
	}) {
		t.Fatalf("the refusals were not answered: %+v %+v", slack.Messages(fakeslack.DMChannel(other)), slack.Ephemerals(admin))
	}
	if got := slack.Messages(fakeslack.DMChannel(other))[0].Text; got != "Only admins can export the audit log: ask one of them." {
		t.Errorf("the non-admin was told %q", got)
	}
	if got := slack.Ephemerals(admin)[0].Text; !strings.Contains(got, "only in a direct message") {
		t.Errorf("the admin in the channel was told %q", got)
	}
	stop()
	if n := len(slack.Uploads("")); n != 2 {
		t.Errorf("%d uploads, want 2", n)
	}

	// What dobrobot audit export writes, from the same database.
	for _, c := range []struct {
		format string
		up     fakeslack.Upload
	}{{"jsonl", jsonl}, {"csv", csv}} {
		code, want, errs := run(t, "", env, "audit", "export", "--format", c.format)
		if code != 0 {
			t.Fatalf("audit export --format %s: exit %d: %s", c.format, code, errs)
		}
		sum := sha256.Sum256([]byte(want))
		if c.up.Size != int64(len(want)) || c.up.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s upload: %d bytes, sha256 %s; dobrobot audit export wrote %d bytes, sha256 %x",
				c.format, c.up.Size, c.up.SHA256, len(want), sum)
		}
		if lines := strings.Count(want, "\n"); c.format == "jsonl" && lines != auditUploadEntries {
			t.Errorf("the jsonl export has %d lines, want %d", lines, auditUploadEntries)
		}
		if !strings.HasSuffix(c.up.Filename, "."+c.format) || !strings.HasPrefix(c.up.Filename, "dobrobot-audit-") {
			t.Errorf("file name %q", c.up.Filename)
		}
	}

	size := jsonl.Size
	t.Logf("FIGURE audit upload: %d entries, %.1f MiB of JSON lines; heap in use peaked %.1f MiB above its %.1f MiB start, live heap at most %.1f MiB",
		auditUploadEntries, mib(size), mib(int64(peak-base)), mib(int64(base)), mib(int64(live)))
	// Held in memory, the file alone would be size; streamed, the heap
	// grows by what the collector lets garbage reach, whatever the size.
	if limit := uint64(size / 3); peak-base > limit {
		t.Errorf("the heap grew by %.1f MiB while uploading a %.1f MiB export; want under %.1f MiB", mib(int64(peak-base)), mib(size), mib(int64(limit)))
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// fillAudit appends n audit entries to the database at path, ten thousand
// per transaction.
func fillAudit(t *testing.T, path string, n int) {
	t.Helper()
	db, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; {
		err := db.Update(context.Background(), func(tx commands.Tx) error {
			for range min(10_000, n-i) {
				i++
				if _, err := tx.AppendAudit(commands.AuditEntry{Time: t0.Add(time.Duration(i) * time.Minute), Actor: "U0ANN",
					Action: commands.ActionRefused, Ticket: fmt.Sprintf("PAY-%d", i/10), Via: commands.SourceSlack,
					Detail: "dep start: backend is locked by PAY-3 (dep start 12 min ago by <@U0BOB>), \"quoted\", =1+1"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// heapSampler records the peak of the heap in use (live and not yet
// collected objects) and of the live heap, every millisecond.
type heapSampler struct {
	done       chan struct{}
	wg         sync.WaitGroup
	base       uint64
	peak, live uint64
}

func startHeapSampler() *heapSampler {
	runtime.GC()
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(samples)
	h := &heapSampler{done: make(chan struct{}), base: samples[0].Value.Uint64()}
	h.wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(samples)
			h.peak = max(h.peak, samples[0].Value.Uint64())
			h.live = max(h.live, samples[1].Value.Uint64())
			select {
			case <-h.done:
				return
			case <-tick.C:
			}
		}
	})
	return h
}

// stop ends the sampling and returns the peaks and the heap at the start.
func (h *heapSampler) stop() (peak, live, base uint64) {
	close(h.done)
	h.wg.Wait()
	return h.peak, h.live, h.base
}
