package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/storage"
)

// bot is a running dobrobot run process.
type bot struct {
	cmd  *exec.Cmd
	logs bytes.Buffer
	done chan struct{} // closed when the process has exited
}

func (b *bot) pid() int { return b.cmd.Process.Pid }

// kill stops the bot at once: the load is over, and the bot is built to
// survive a kill (what it had not delivered stays in its outbox).
func (b *bot) kill() {
	_ = b.cmd.Process.Kill()
	<-b.done
}

// writeConfig writes the configuration of a bot on dbPath talking to slack,
// with a file tracker of the tickets LOAD-1 … LOAD-tickets, and returns its
// path.
func writeConfig(dir, dbPath string, slack *fakeslack.Server, tickets int) (string, error) {
	var tb strings.Builder
	tb.WriteString("tickets:\n")
	for i := 1; i <= tickets; i++ {
		fmt.Fprintf(&tb, "  - {key: LOAD-%d, summary: Load test release %d, status: Ready for Release, assignee: ann@example.com, fix_versions: [\"1.0\"], components: [backend]}\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "tickets.yaml"), []byte(tb.String()), 0o600); err != nil {
		return "", err
	}
	cfg := filepath.Join(dir, "dobrobot.yaml")
	body := fmt.Sprintf(`slack: {app_token: "${SLACK_APP_TOKEN}", bot_token: "${SLACK_BOT_TOKEN}", api_url: %q, channel: %s}
storage: {path: %q}
tracker: {kind: file, file: tickets.yaml, url: "https://jira.example.com"}
roles: {approvers: [%s], admins: [%s]}
components: [%s, payments]
`, slack.URL, channel, dbPath, approver, admin, component)
	return cfg, os.WriteFile(cfg, []byte(body), 0o600)
}

// startBot starts dobrobot run with config cfg and returns once fakeslack has
// sent it hello on a new Socket Mode connection, with the time that took:
// the bot's start-up, from exec to ready for events.
func startBot(bin, cfg string, slack *fakeslack.Server) (*bot, time.Duration, error) {
	b := &bot{}
	b.cmd = exec.Command(bin, "run")
	b.cmd.Env = append(os.Environ(), "SLACK_APP_TOKEN="+fakeslack.AppToken, "SLACK_BOT_TOKEN="+fakeslack.BotToken, "DOBROBOT_CONFIG="+cfg)
	b.cmd.Stdout, b.cmd.Stderr = &b.logs, &b.logs
	hellos := slack.Hellos()
	t0 := time.Now()
	if err := b.cmd.Start(); err != nil {
		return nil, 0, err
	}
	b.done = make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	for time.Since(t0) < 60*time.Second {
		if slack.WaitFor(20*time.Millisecond, func(st fakeslack.State) bool { return st.Hellos > hellos && st.Connections > 0 }) {
			return b, time.Since(t0), nil
		}
		select {
		case <-b.done:
			return nil, 0, fmt.Errorf("dobrobot run exited before it connected:\n%s", tail(b.logs.String()))
		default:
		}
	}
	b.kill()
	return nil, 0, fmt.Errorf("dobrobot run did not connect within 60 s:\n%s", tail(b.logs.String()))
}

// loadResult is figure 2.
type loadResult struct {
	steady, burst phaseResult
	floor         latency // ackFloor's burst
	commit        latency // commitFloor at the steady rate
}

// memoryResult is figure 6.
type memoryResult struct {
	idleKB   int64 // VmRSS once connected and idle
	afterKB  int64 // VmRSS after the commands, once idle again
	peakKB   int64 // VmHWM at the end
	commands int
	// The parts of VmRSS: anonymous (heap, stacks) and file-backed (the
	// binary, and the database pages read through bbolt's map).
	idleAnonKB, idleFileKB, afterAnonKB, afterFileKB int64
	// warmKB is VmRSS after the first warmup commands, once idle again:
	// the code they run paged in, the heap grown to its working size.
	warmKB, warmAnonKB, warmFileKB int64
	warmup, rate                   int
}

// phaseResult is one load phase.
type phaseResult struct {
	sent, acked, replied int
	ack, reply           latency
	duration             time.Duration
	span                 time.Duration // from the first envelope sent to the last
	cpu                  time.Duration // the bot's CPU time (user+system) during the phase
	// slope is how much longer the last tenth of the envelopes waited for
	// their acks than the first tenth, per envelope between them: the cost
	// of an envelope to those queued behind it.
	slope time.Duration
}

// mentionText is the mix of a load: one in ten mentions requests a release
// (a new ticket: card, DM to the approver, reply), the others ask for the
// queue or a queued release's status (a reply). Every mention is answered
// to its sender (ephemeral), which is how its first reply is found.
func mentionText(k int) string {
	switch {
	case k%10 == 0:
		return fmt.Sprintf("dobro LOAD-%d no_need_admin", k/10+1)
	case k%2 == 1:
		return "queue"
	default:
		return fmt.Sprintf("status QUEUED-%d", k%queued+1)
	}
}

// queued is how many releases wait in the queue when a load starts.
const queued = 20

func users(phase string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("U0%s%05d", phase, i)
	}
	return out
}

// runLoad drives the real binary with n mentions, each from its own user:
// steady at rate per second, then all at once.
func runLoad(bin, dir string, slack *fakeslack.Server, n, rate int) (loadResult, error) {
	var res loadResult
	cfg, err := writeConfig(dir, filepath.Join(dir, "load.db"), slack, n/5+10)
	if err != nil {
		return res, err
	}
	if err := prepareLoadDB(filepath.Join(dir, "load.db")); err != nil {
		return res, err
	}
	b, _, err := startBot(bin, cfg, slack)
	if err != nil {
		return res, err
	}
	defer b.kill()
	time.Sleep(time.Second) // start-up's recovery done

	k := 0
	envelopes := func(us []string) []fakeslack.Envelope {
		envs := make([]fakeslack.Envelope, len(us))
		for i, u := range us {
			k++
			envs[i] = slack.EventEnvelope(fakeslack.Mention(u, channel, mentionText(k)))
		}
		return envs
	}
	if res.commit, err = commitFloor(dir, n, time.Second/time.Duration(rate)); err != nil {
		return res, fmt.Errorf("commit floor: %w", err)
	}
	steadyUsers := users("STEADY", n)
	res.steady, err = runPhase(slack, b.pid(), envelopes(steadyUsers), steadyUsers, time.Second/time.Duration(rate))
	if err != nil {
		return res, fmt.Errorf("steady load: %w\n%s", err, tail(b.logs.String()))
	}
	time.Sleep(time.Second)
	burstUsers := users("BURST", n)
	res.burst, err = runPhase(slack, b.pid(), envelopes(burstUsers), burstUsers, 0)
	if err != nil {
		return res, fmt.Errorf("burst: %w\n%s", err, tail(b.logs.String()))
	}
	b.kill() // the floor's client must be the only connection
	if res.floor, err = ackFloor(slack, n); err != nil {
		return res, fmt.Errorf("ack floor: %w", err)
	}
	if errs := slack.Errors(); len(errs) > 0 {
		return res, fmt.Errorf("fakeslack noticed: %s", strings.Join(errs, "; "))
	}
	return res, nil
}

// runMemory starts a bot of its own, reads its RSS once idle, sends it n
// commands (queue and status from a pool of 1,000 users, each answered at
// most once a second, as Slack paces a destination) at rate per second, and
// reads its RSS again once idle.
func runMemory(bin, dir string, slack *fakeslack.Server, n, rate int) (memoryResult, error) {
	res := memoryResult{commands: n, rate: rate}
	cfg, err := writeConfig(dir, filepath.Join(dir, "memory.db"), slack, 10)
	if err != nil {
		return res, err
	}
	if err := prepareLoadDB(filepath.Join(dir, "memory.db")); err != nil {
		return res, err
	}
	b, _, err := startBot(bin, cfg, slack)
	if err != nil {
		return res, err
	}
	defer b.kill()
	time.Sleep(3 * time.Second) // start-up's recovery and first collections done: idle
	st := procStatus(b.pid())
	res.idleKB, res.idleAnonKB, res.idleFileKB = st["VmRSS"], st["RssAnon"], st["RssFile"]
	pool := users("POOL", 1000)
	k := 0
	send := func(n int) error {
		envs := make([]fakeslack.Envelope, n)
		who := make([]string, n)
		for i := range envs {
			k++
			who[i] = pool[k%len(pool)]
			text := "queue"
			if k%2 == 1 {
				text = fmt.Sprintf("status QUEUED-%d", k%queued+1)
			}
			envs[i] = slack.EventEnvelope(fakeslack.Mention(who[i], channel, text))
		}
		_, err := runPhase(slack, b.pid(), envs, who, time.Second/time.Duration(rate))
		return err
	}
	res.warmup = 1000
	if err := send(res.warmup); err != nil {
		return res, fmt.Errorf("memory warm-up: %w\n%s", err, tail(b.logs.String()))
	}
	time.Sleep(5 * time.Second)
	st = procStatus(b.pid())
	res.warmKB, res.warmAnonKB, res.warmFileKB = st["VmRSS"], st["RssAnon"], st["RssFile"]
	if err := send(n); err != nil {
		return res, fmt.Errorf("memory load: %w\n%s", err, tail(b.logs.String()))
	}
	time.Sleep(5 * time.Second) // idle again
	st = procStatus(b.pid())
	res.afterKB, res.peakKB, res.afterAnonKB, res.afterFileKB = st["VmRSS"], st["VmHWM"], st["RssAnon"], st["RssFile"]
	return res, nil
}

// runPhase sends envs (one every gap; all at once if gap is 0), waits until
// every one is acked and every user has had as many replies as it sent
// mentions, and measures envelope→ack and mention→first reply: the time
// from fakeslack writing the envelope to the socket to the ack it read,
// and to the first Web API call addressed to the mention's sender.
func runPhase(slack *fakeslack.Server, pid int, envs []fakeslack.Envelope, users []string, gap time.Duration) (phaseResult, error) {
	var res phaseResult
	before := len(slack.Sent())
	callsBefore := len(slack.Calls(""))
	cpu0 := cpuTime(pid)
	start := time.Now()
	ids := make([]string, len(envs))
	for i, env := range envs {
		if gap > 0 {
			if d := time.Until(start.Add(time.Duration(i) * gap)); d > 0 {
				time.Sleep(d)
			}
		}
		sent, err := slack.Send(env)
		if err != nil {
			return res, err
		}
		ids[i] = sent.EnvelopeID
	}
	res.sent = len(envs)
	want := map[string]int{}
	for _, u := range users {
		want[u]++
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		acks := map[string]time.Time{}
		for _, a := range slack.Acks() {
			if _, seen := acks[a.EnvelopeID]; !seen {
				acks[a.EnvelopeID] = a.Time
			}
		}
		replies := map[string][]time.Time{}
		for _, c := range slack.Calls("")[callsBefore:] {
			if c.Method == "chat.postEphemeral" && want[c.Args.Get("user")] > 0 {
				u := c.Args.Get("user")
				replies[u] = append(replies[u], c.Time)
			}
		}
		res.acked, res.replied = 0, 0
		for _, id := range ids {
			if _, ok := acks[id]; ok {
				res.acked++
			}
		}
		for u, n := range want {
			res.replied += min(n, len(replies[u]))
		}
		if res.acked == len(ids) && res.replied == len(envs) {
			res.duration = time.Since(start)
			res.cpu = cpuTime(pid) - cpu0
			sentAt := map[string]time.Time{}
			sent := slack.Sent()[before:]
			for _, s := range sent {
				sentAt[s.EnvelopeID] = s.Time
			}
			if len(sent) > 0 {
				res.span = sent[len(sent)-1].Time.Sub(sent[0].Time)
			}
			var ackLat, replyLat []time.Duration
			used := map[string]int{}
			for i, id := range ids {
				t := sentAt[id]
				ackLat = append(ackLat, acks[id].Sub(t))
				u := users[i]
				rs := replies[u]
				replyLat = append(replyLat, rs[used[u]].Sub(t))
				used[u]++
			}
			res.ack, res.reply = summarize(ackLat), summarize(replyLat)
			if tenth := len(ackLat) / 10; tenth > 0 {
				first, last := summarize(ackLat[:tenth]), summarize(ackLat[len(ackLat)-tenth:])
				res.slope = (last.p50 - first.p50) / time.Duration(len(ackLat)-tenth)
			}
			return res, nil
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("after 90 s: %d of %d envelopes acked, %d of %d mentions answered", res.acked, len(ids), res.replied, len(envs))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// prepareLoadDB creates the load's database with its queue of releases.
func prepareLoadDB(path string) error {
	db, err := storage.Open(path)
	if err != nil {
		return err
	}
	_, err = seedOpen(context.Background(), db, queued, "QUEUED")
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// cpuTime returns the user and system CPU time process pid has used.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command's name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on Linux.
const clockTicks = 100

func tail(s string) string {
	const max = 4000
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

// ackFloor measures the limit of figure 2's burst: a Socket Mode client of
// slack-go (the library dobrobot runs on) that acks every envelope as soon
// as it has read it, records nothing and runs no command, gets the same
// burst from fakeslack. Its acks are as early as reading and parsing the
// envelopes one after another allows on this machine.
func ackFloor(slack *fakeslack.Server, n int) (latency, error) {
	api := slackapi.New(fakeslack.BotToken, slackapi.OptionAPIURL(slack.URL), slackapi.OptionAppLevelToken(fakeslack.AppToken))
	sm := socketmode.New(api)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); _ = sm.RunContext(ctx) }()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				if evt.Request != nil && evt.Request.EnvelopeID != "" {
					_ = sm.Ack(*evt.Request)
				}
			}
		}
	}()
	defer func() { cancel(); <-done }()
	if err := slack.WaitConnections(1, 0, 10*time.Second); err != nil {
		return latency{}, err
	}
	us := users("FLOOR", n)
	envs := make([]fakeslack.Envelope, n)
	for i, u := range us {
		envs[i] = slack.EventEnvelope(fakeslack.Mention(u, channel, mentionText(i+1)))
	}
	ids := make([]string, n)
	for i, env := range envs {
		sent, err := slack.Send(env)
		if err != nil {
			return latency{}, err
		}
		ids[i] = sent.EnvelopeID
	}
	var lat []time.Duration
	deadline := time.Now().Add(30 * time.Second)
	for len(lat) < n && time.Now().Before(deadline) {
		lat = lat[:0]
		for _, id := range ids {
			if d, ok := slack.AckLatency(id); ok {
				lat = append(lat, d)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(lat) < n {
		return latency{}, fmt.Errorf("the ack-only client acked %d of %d envelopes", len(lat), n)
	}
	return summarize(lat), nil
}

// commitFloor measures the limit of figure 2's steady load: the latency of
// raw bbolt single-key Update transactions (fsync on) in dir, n of them one
// every gap. An ack waits for at least one such commit, its event's.
func commitFloor(dir string, n int, gap time.Duration) (latency, error) {
	db, err := bolt.Open(filepath.Join(dir, "floor.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return latency{}, err
	}
	defer db.Close()
	name := []byte("k")
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(name); return err }); err != nil {
		return latency{}, err
	}
	val := make([]byte, 300)
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * gap)); d > 0 {
			time.Sleep(d)
		}
		t0 := time.Now()
		if err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(name).Put(binary.BigEndian.AppendUint64(nil, uint64(i)), val)
		}); err != nil {
			return latency{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	return summarize(lat), nil
}
