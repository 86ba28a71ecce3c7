package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// The soak (docs/reliability.md, T24, T65): the real binary, with its real
// pacing, exec hooks and file tracker, against fakeslack for as long as
// DOBROBOT_SOAK says (a duration: make soak runs minutes, give it hours when
// asked). Lanes of users take releases through their whole workflow at a
// steady rate, by mention, DM and button; Slack asks for a refresh every
// DOBROBOT_SOAK_REFRESH (30 s) and redelivers some events as it does after a
// missed ack. At the end every command must have had exactly its effect:
// lost 0, duplicated 0. It reports commands, reconnects, and the growth of
// the bot's RSS and goroutines (from its /metrics), and scans every log line
// for secrets.

// soakConfig is the soak's shape, from the environment.
type soakConfig struct {
	duration time.Duration // DOBROBOT_SOAK
	rate     float64       // DOBROBOT_SOAK_RATE: commands per second, all lanes together
	refresh  time.Duration // DOBROBOT_SOAK_REFRESH
	lanes    int           // DOBROBOT_SOAK_LANES
}

func soakSettings(t *testing.T) soakConfig {
	c := soakConfig{rate: 0.5, refresh: 30 * time.Second, lanes: 3}
	var err error
	if c.duration, err = time.ParseDuration(os.Getenv("DOBROBOT_SOAK")); err != nil || c.duration <= 0 {
		t.Fatalf("DOBROBOT_SOAK=%q: want a duration like 10m", os.Getenv("DOBROBOT_SOAK"))
	}
	if s := os.Getenv("DOBROBOT_SOAK_RATE"); s != "" {
		if c.rate, err = strconv.ParseFloat(s, 64); err != nil || c.rate <= 0 {
			t.Fatalf("DOBROBOT_SOAK_RATE=%q: want commands per second, like 0.5", s)
		}
	}
	if s := os.Getenv("DOBROBOT_SOAK_REFRESH"); s != "" {
		if c.refresh, err = time.ParseDuration(s); err != nil || c.refresh <= 0 {
			t.Fatalf("DOBROBOT_SOAK_REFRESH=%q: want a duration like 30s", s)
		}
	}
	if s := os.Getenv("DOBROBOT_SOAK_LANES"); s != "" {
		if c.lanes, err = strconv.Atoi(s); err != nil || c.lanes <= 0 || c.lanes > 50 {
			t.Fatalf("DOBROBOT_SOAK_LANES=%q: want 1 to 50", s)
		}
	}
	return c
}

// scanWriter scans a process's log for secrets as it comes and keeps only
// its tail, so that hours of debug logs cost no memory.
type scanWriter struct {
	mu    sync.Mutex
	bytes int64
	lines int64
	hits  []string
	tail  []byte
	part  []byte // an unfinished line
}

func (w *scanWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bytes += int64(len(p))
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		line := string(w.part[:i+1])
		w.part = w.part[i+1:]
		w.lines++
		w.hits = append(w.hits, secretHits(line)...)
		w.tail = append(w.tail, line...)
		if len(w.tail) > 64<<10 {
			w.tail = w.tail[len(w.tail)-32<<10:]
		}
	}
	return len(p), nil
}

func (w *scanWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.tail) + string(w.part)
}

// soakMetric reads one series of the bot's /metrics.
func soakMetric(url, series string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", series)
}

// soakCounts are what the lanes did and saw.
type soakCounts struct {
	commands    atomic.Int64 // envelopes sent for a command, first deliveries
	redelivered atomic.Int64 // copies sent again as Slack retries
	retried     atomic.Int64 // dep finish sent again while the start hook ran
	resent      atomic.Int64 // clicks lost in a refresh and sent again: Slack does not retry them
	cycles      atomic.Int64
	lost        atomic.Int64 // a reply that never came
}

func TestSoak(t *testing.T) {
	if os.Getenv("DOBROBOT_SOAK") == "" {
		t.Skip("DOBROBOT_SOAK is not set: make soak runs the soak (SOAKTIME=10m for longer)")
	}
	cfg := soakSettings(t)
	bin := buildBinary(t)
	slack := fakeslack.New(t)
	// Slack's redelivery of an unacked event: right away, after 1 min,
	// after 5 min (compressed).
	slack.SetRetries(3*time.Second, 0, 5*time.Second, 30*time.Second)

	dir := t.TempDir()
	var tickets, comps strings.Builder
	tickets.WriteString("tickets:\n")
	for k := 1; k <= cfg.lanes; k++ {
		fmt.Fprintf(&tickets, "  - {key: PAY-%d, summary: Soak lane %d, status: Ready, components: [lane-%d]}\n", k, k, k)
		fmt.Fprintf(&comps, "lane-%d, ", k)
	}
	if err := os.WriteFile(filepath.Join(dir, "tickets.yaml"), []byte(tickets.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := l.Addr().String()
	l.Close()
	dbPath := filepath.Join(dir, "bot.db")
	conf := filepath.Join(dir, "dobrobot.yaml")
	body := `
slack: {app_token: "${SLACK_APP_TOKEN}", bot_token: "${SLACK_BOT_TOKEN}", api_url: ` + slack.URL + `, channel: C0RELEASE}
storage: {path: ` + dbPath + `}
tracker: {kind: file, file: tickets.yaml, url: https://jira.example.com}
roles: {approvers: [U0APPROVER], admins: [U0ADMIN]}
components: [` + strings.TrimSuffix(comps.String(), ", ") + `]
hooks:
  start: {exec: ["true"], timeout: 1m}
  finish: {exec: ["true"], timeout: 1m}
http: {listen: "` + listen + `"}
`
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &scanWriter{}
	bot := exec.Command(bin, "--log-level", "debug", "run")
	bot.Env = append(os.Environ(), "SLACK_APP_TOKEN="+fakeslack.AppToken, "SLACK_BOT_TOKEN="+fakeslack.BotToken, "DOBROBOT_CONFIG="+conf)
	bot.Stdout, bot.Stderr = logs, logs
	if err := bot.Start(); err != nil {
		t.Fatal(err)
	}
	defer bot.Process.Kill()
	if !waitFor(15*time.Second, func() bool { return slack.Connections() == slackConns }) {
		t.Fatalf("the bot did not connect\n%s", logs.String())
	}
	metrics := "http://" + listen + "/metrics"

	began := time.Now()
	deadline := began.Add(cfg.duration)
	var counts soakCounts
	// One token per command, at the configured rate, for all lanes.
	tokens := make(chan struct{})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	// Refreshes, as Slack asks for them: a disconnect message, then the
	// old socket closes while the bot opens a new one.
	var refreshes atomic.Int64
	go func() {
		tick := time.NewTicker(cfg.refresh)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				slack.Refresh("refresh_requested", 500*time.Millisecond) // one connection at a time, as Slack does
				refreshes.Add(1)
			}
		}
	}()

	// Resources, sampled every 10 s once the first cycles warmed the bot up.
	type sample struct {
		at                time.Time
		rss, goroutines   float64
		heap, connections float64
	}
	var (
		samplesMu sync.Mutex
		samples   []sample
	)
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				rss, err1 := soakMetric(metrics, "process_resident_memory_bytes")
				g, err2 := soakMetric(metrics, "go_goroutines")
				heap, err3 := soakMetric(metrics, "go_memstats_heap_inuse_bytes")
				if err1 != nil || err2 != nil || err3 != nil {
					continue
				}
				samplesMu.Lock()
				samples = append(samples, sample{time.Now(), rss, g, heap, float64(slack.Connections())})
				samplesMu.Unlock()
			}
		}
	}()

	// expected counts how many replies each user must get with each text.
	var expMu sync.Mutex
	expected := map[string]int{}
	replies := func(user, text string) int {
		n := 0
		for _, m := range append(slack.Ephemerals(user), slack.Messages(fakeslack.DMChannel(user))...) {
			if strings.Contains(m.Text, text) {
				n++
			}
		}
		return n
	}
	var sendMu sync.Mutex // keeps the envelope order of one lane's command and its redelivery
	send := func(env fakeslack.Envelope, redeliver bool) fakeslack.Envelope {
		sendMu.Lock()
		defer sendMu.Unlock()
		for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			sent, err := slack.Send(env)
			if err == nil {
				env = sent
				break
			}
			if time.Now().After(end) {
				t.Errorf("could not send for 30 s: %v", err)
				return env
			}
		}
		if redeliver {
			go func() {
				if _, err := slack.WaitAck(env.EnvelopeID, 10*time.Second); err == nil {
					if _, err := slack.Redeliver(env, "timeout"); err == nil {
						counts.redelivered.Add(1)
					}
				}
			}()
		}
		return env
	}
	// do sends a command and waits for one of the replies to user it may
	// get, and returns which came. A click lost in a refresh (never acked
	// and never answered: Slack does not retry interactions) is clicked
	// again, as its user would.
	do := func(user string, env func() fakeslack.Envelope, redeliver bool, replyTexts ...string) (int, bool) {
		expMu.Lock()
		want := make([]int, len(replyTexts))
		for i, r := range replyTexts {
			want[i] = expected[user+"\x00"+r] + 1
		}
		expMu.Unlock()
		select {
		case <-tokens:
		case <-ctx.Done():
			return 0, false
		}
		counts.commands.Add(1)
		sent, sentAt := send(env(), redeliver), time.Now()
		for end := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
			for i, r := range replyTexts {
				if replies(user, r) >= want[i] {
					expMu.Lock()
					expected[user+"\x00"+r]++
					expMu.Unlock()
					return i, true
				}
			}
			if sent.Type == "interactive" && time.Since(sentAt) > 5*time.Second &&
				!slack.WaitFor(0, func(st fakeslack.State) bool { return st.Acked(sent.EnvelopeID) }) {
				counts.resent.Add(1)
				sent, sentAt = send(env(), false), time.Now()
			}
			if time.Now().After(end) {
				counts.lost.Add(1)
				t.Errorf("%s never got %q", user, replyTexts)
				return 0, false
			}
		}
	}
	mention := func(user, text string) func() fakeslack.Envelope {
		return func() fakeslack.Envelope { return slack.EventEnvelope(fakeslack.Mention(user, "C0RELEASE", text)) }
	}
	dm := func(user, text string) func() fakeslack.Envelope {
		return func() fakeslack.Envelope { return slack.EventEnvelope(fakeslack.DM(user, text)) }
	}
	click := func(user, text string) func() fakeslack.Envelope {
		return func() fakeslack.Envelope {
			return slack.ClickEnvelope(fakeslack.Click{User: user, Channel: fakeslack.DMChannel(user), MessageTS: "1700000000.000100",
				ActionID: "dobrobot.0", BlockID: "b", Value: text})
		}
	}

	cyclesByLane := make([]int, cfg.lanes+1)
	claimsByLane := make([]int, cfg.lanes+1)
	finishRetries := make([]atomic.Int64, cfg.lanes+1)
	var wg sync.WaitGroup
	for k := 1; k <= cfg.lanes; k++ {
		wg.Go(func() {
			key := fmt.Sprintf("PAY-%d", k)
			requester := fmt.Sprintf("U0REQ%d", k)
			for cycle := 0; time.Now().Before(deadline); cycle++ {
				needAdmin := cycle%2 == 0
				dobro := "dobro " + key
				if !needAdmin {
					dobro += " no_need_admin"
				}
				_, ok := do(requester, mention(requester, dobro), cycle%3 == 0, "is in the queue (#")
				if ok {
					_, ok = do("U0APPROVER", click("U0APPROVER", "accept "+key), false, "You accepted "+key+".")
				}
				if ok && needAdmin {
					if _, ok = do("U0ADMIN", mention("U0ADMIN", "here "+key), cycle%4 == 2, "You claimed "+key+"."); ok {
						claimsByLane[k]++
					}
				}
				if ok {
					_, ok = do(requester, dm(requester, "dep start "+key), cycle%3 == 1, "Deploy of "+key+" started.")
				}
				if ok {
					_, ok = do("U0APPROVER", dm("U0APPROVER", "queue"), false, "Queue (")
				}
				// dep finish, again while the start hook's result is not in.
				for ok {
					var which int
					which, ok = do(requester, mention(requester, "dep finish "+key), false,
						"Finishing "+key+":", "start hook of "+key+" is running")
					if which == 0 {
						break
					}
					finishRetries[k].Add(1)
					counts.retried.Add(1)
					time.Sleep(time.Second)
				}
				if !ok {
					return
				}
				// The finish hook's result is told by DM.
				expMu.Lock()
				expected[requester+"\x00"+key+" is done."]++
				want := expected[requester+"\x00"+key+" is done."]
				expMu.Unlock()
				if !waitFor(2*time.Minute, func() bool { return replies(requester, key+" is done.") >= want }) {
					counts.lost.Add(1)
					t.Errorf("%s: the finish hook's result never came", key)
					return
				}
				cyclesByLane[k]++
				counts.cycles.Add(1)
			}
		})
	}
	wg.Wait()
	stop()
	elapsed := time.Since(began)

	// Let the outbox drain and the redeliveries land, then count.
	time.Sleep(5 * time.Second)
	rssEnd, _ := soakMetric(metrics, "process_resident_memory_bytes")
	gEnd, _ := soakMetric(metrics, "go_goroutines")
	heapEnd, _ := soakMetric(metrics, "go_memstats_heap_inuse_bytes")
	duplicated, missing := 0, 0
	expMu.Lock()
	for _, k := range slices.Sorted(maps.Keys(expected)) {
		user, text, _ := strings.Cut(k, "\x00")
		switch got, want := replies(user, text), expected[k]; {
		case got > want:
			duplicated += got - want
			t.Errorf("%s got %q %d times, want %d", user, text, got, want)
		case got < want:
			missing += want - got
			t.Errorf("%s got %q %d times, want %d", user, text, got, want)
		}
	}
	expMu.Unlock()
	// A click sent again after a refresh may have been taken the first
	// time too (recorded, the ack lost with the socket): its second copy is
	// a second click, answered "already"; anything else told "already" is a
	// command that had its effect twice.
	already := 0
	for _, m := range slack.Ephemerals("") {
		if strings.Contains(m.Text, "already") {
			already++
		}
	}
	if already > int(counts.resent.Load()) {
		duplicated += already - int(counts.resent.Load())
		t.Errorf("%d commands were answered \"already\" (%d clicks were sent twice)", already, counts.resent.Load())
	}

	if err := bot.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := bot.Wait(); err != nil {
		t.Errorf("bot: %v\n%s", err, logs.String())
	}

	// The database: every event handled once, each lane's audit exactly its
	// cycles, the chain whole, the file sound.
	db, err := storage.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Errorf("bbolt check: %v", err)
	}
	var pending []commands.InboxEvent
	_ = db.View(context.Background(), func(tx commands.Tx) error {
		pending, err = tx.PendingEvents()
		return err
	})
	if len(pending) > 0 {
		t.Errorf("%d events received but never handled", len(pending))
	}
	byTicket := map[string]map[commands.Action]int{}
	v := commands.NewVerifier()
	entries := 0
	err = db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		entries++
		if byTicket[e.Ticket] == nil {
			byTicket[e.Ticket] = map[commands.Action]int{}
		}
		byTicket[e.Ticket][e.Action]++
		return v.Add(e)
	})
	if err != nil {
		t.Errorf("audit: %v", err)
	}
	for k := 1; k <= cfg.lanes; k++ {
		key := fmt.Sprintf("PAY-%d", k)
		n := cyclesByLane[k]
		want := map[commands.Action]int{commands.ActionRequest: n, commands.ActionAccept: n, commands.ActionClaim: claimsByLane[k],
			commands.ActionStart: n, commands.ActionStarted: n, commands.ActionFinish: n}
		if r := finishRetries[k].Load(); r > 0 {
			want[commands.ActionRefused] = int(r)
		}
		maps.DeleteFunc(want, func(_ commands.Action, c int) bool { return c == 0 })
		got := byTicket[key]
		if !maps.Equal(want, got) {
			t.Errorf("%s audit: got %v, want %v for %d cycles", key, got, want, n)
		}
	}
	for _, hit := range logs.hits {
		t.Errorf("secret in the logs: %s", hit)
	}

	samplesMu.Lock()
	defer samplesMu.Unlock()
	var first sample
	for _, s := range samples {
		if s.at.Sub(began) >= min(time.Minute, cfg.duration/5) {
			first = s
			break
		}
	}
	growth := func(end, start float64) string {
		if start == 0 {
			return "n/a (too short to sample after the warm-up)"
		}
		return fmt.Sprintf("%.1f MB → %.1f MB (%+.1f%%)", start/1e6, end/1e6, 100*(end-start)/start)
	}
	retries := 0
	for _, e := range slack.Sent() {
		if e.RetryAttempt > 0 {
			retries++
		}
	}
	t.Logf("FIGURE soak: %v at %.2f commands/s over %d lanes: %d commands (%d full release cycles), %d duplicate deliveries sent on purpose, %d Slack-style retries of events unacked in a refresh, %d clicks lost in a refresh gap and clicked again, %d dep finish retried while the start hook ran; %d refreshes, %d reconnects (%d apps.connections.open); lost %d, duplicated %d; RSS %s, heap in use %s, goroutines %.0f → %.0f; %d audit entries verified, bbolt check ok; %d log lines (%d bytes, debug) scanned, %d secrets",
		elapsed.Round(time.Second), cfg.rate, cfg.lanes, counts.commands.Load(), counts.cycles.Load(), counts.redelivered.Load(), retries-int(counts.redelivered.Load()),
		counts.resent.Load(), counts.retried.Load(), refreshes.Load(), slack.Hellos()-slackConns, slack.Opens(), counts.lost.Load()+int64(missing), duplicated,
		growth(rssEnd, first.rss), growth(heapEnd, first.heap), first.goroutines, gEnd, entries, logs.lines, logs.bytes, len(logs.hits))
	if counts.cycles.Load() == 0 {
		t.Error("no release went through")
	}
	// Bounds worth asserting only on runs long enough to mean something.
	if cfg.duration >= 5*time.Minute && first.rss > 0 {
		if rssEnd > first.rss*1.10+5e6 {
			t.Errorf("RSS grew from %.1f MB to %.1f MB", first.rss/1e6, rssEnd/1e6)
		}
		if gEnd > first.goroutines+10 {
			t.Errorf("goroutines grew from %.0f to %.0f", first.goroutines, gEnd)
		}
	}
}
