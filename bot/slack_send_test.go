package bot

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func openDB(t *testing.T, path string) *storage.DB {
	t.Helper()
	db, err := storage.Open(path)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	return db
}

type senderHarness struct {
	fs   *fakeslack.Server
	db   *storage.DB
	snd  *sender
	logs *syncBuffer
	stop func()
}

// startSender runs a sender with a short pace against fakeslack and a real
// bbolt outbox. tune may change the sender before it starts.
func startSender(t *testing.T, tune func(*sender)) *senderHarness {
	t.Helper()
	fs := fakeslack.New(t)
	db := openDB(t, filepath.Join(t.TempDir(), "bot.db"))
	logs := &syncBuffer{}
	api := slack.New(fakeslack.BotToken, slack.OptionAPIURL(fs.URL))
	snd := newSender(api, db, commands.NewService(commands.Config{Store: db}), releaseChannel, zerolog.New(logs))
	snd.pace, snd.retryBase, snd.retryMax, snd.poll = 20*time.Millisecond, 10*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	if tune != nil {
		tune(snd)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		snd.run(ctx)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(func() {
		stop()
		db.Close()
	})
	return &senderHarness{fs: fs, db: db, snd: snd, logs: logs, stop: stop}
}

// emit puts effects in the outbox, in one transaction, and wakes the sender.
func (h *senderHarness) emit(t *testing.T, effects ...commands.Effect) {
	t.Helper()
	err := h.db.Update(context.Background(), func(tx commands.Tx) error {
		for _, e := range effects {
			if _, err := tx.Emit(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.snd.notify()
}

// waitEmpty waits until the outbox is empty.
func (h *senderHarness) waitEmpty(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		pending, err := h.db.Pending(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not empty after %v: %d effects left, first %+v", timeout, len(pending), pending[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dmReply(channel, text string) commands.Effect {
	return commands.Effect{Kind: commands.EffectReply, User: "U01", Channel: channel, Via: commands.ViaDM, Text: commands.Text{commands.Plain(text)}}
}

func callsTo(fs *fakeslack.Server, method, channel string) []fakeslack.Call {
	var out []fakeslack.Call
	for _, c := range fs.Calls(method) {
		if channel == "" || c.Args.Get("channel") == channel {
			out = append(out, c)
		}
	}
	return out
}

func TestSenderPacesEachChannelAndKeepsOrder(t *testing.T) {
	h := startSender(t, nil)
	const n = 50
	var effects []commands.Effect
	for i := range n {
		effects = append(effects, dmReply("D01", fmt.Sprintf("message %02d", i)))
	}
	h.emit(t, effects...)
	// A message to someone else is not held up behind the busy channel.
	h.emit(t, dmReply("D02", "for someone else"))
	if _, err := h.fs.WaitCalls("chat.postMessage", 2, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if !h.fs.WaitFor(500*time.Millisecond, func(st fakeslack.State) bool {
		return slices.ContainsFunc(st.Calls, func(c fakeslack.Call) bool { return c.Args.Get("channel") == "D02" })
	}) {
		t.Error("the message to D02 waited behind D01's queue")
	}
	h.waitEmpty(t, 5*time.Second)

	calls := callsTo(h.fs, "chat.postMessage", "D01")
	var texts []string
	for _, c := range calls {
		texts = append(texts, c.Args.Get("text"))
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("message %02d", i))
	}
	if diff := cmp.Diff(want, texts); diff != "" {
		t.Errorf("messages to D01 (-want +got):\n%s", diff)
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Time.Sub(calls[i-1].Time); gap < 20*time.Millisecond {
			t.Errorf("messages %d and %d to D01 were %v apart, want ≥ the 20 ms pace", i-1, i, gap)
		}
	}
}

func TestSenderDefaultPaceIsOneMessagePerSecond(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 2 s")
	}
	t.Parallel()
	h := startSender(t, func(s *sender) { s.pace = newSender(nil, nil, nil, "", zerolog.Nop()).pace })
	h.emit(t, dmReply("D01", "one"), dmReply("D01", "two"), dmReply("D01", "three"))
	h.waitEmpty(t, 5*time.Second)
	calls := callsTo(h.fs, "chat.postMessage", "D01")
	if len(calls) != 3 {
		t.Fatalf("calls: %d", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Time.Sub(calls[i-1].Time); gap < 990*time.Millisecond {
			t.Errorf("messages %d and %d were %v apart, want ≥ 1 s", i-1, i, gap)
		}
	}
}

func TestSenderHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	h := startSender(t, nil)
	h.fs.Fail("chat.postMessage", fakeslack.Failure{Status: http.StatusTooManyRequests, RetryAfter: 2, Times: 1})
	h.emit(t, dmReply("D01", "after the limit"))
	first, err := h.fs.WaitCalls("chat.postMessage", 1, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Once the bot has seen the 429, another lane's message to the same
	// method waits out the limit too.
	eventually(t, "the 429 to be seen", func() bool { return strings.Contains(h.logs.String(), "rate limit") })
	h.emit(t, dmReply("D02", "also waits"))
	h.waitEmpty(t, 5*time.Second)
	calls := h.fs.Calls("chat.postMessage")
	if len(calls) != 3 {
		t.Fatalf("chat.postMessage calls: got %d, want 3 (the 429, then each message once)", len(calls))
	}
	for _, c := range calls[1:] {
		if wait := c.Time.Sub(first[0].Time); wait < 2*time.Second {
			t.Errorf("a call to chat.postMessage %v after the 429, inside Retry-After: 2", wait)
		}
	}
	for _, ch := range []string{"D01", "D02"} {
		if got := len(h.fs.Messages(ch)); got != 1 {
			t.Errorf("messages in %s: got %d, want 1", ch, got)
		}
	}
}

func TestSenderFailures(t *testing.T) {
	tests := []struct {
		name      string
		failure   fakeslack.Failure
		calls     int
		delivered bool
		log       string // a line the log must contain
	}{
		{"5xx is retried", fakeslack.Failure{Status: http.StatusServiceUnavailable, Times: 2}, 3, true, `"level":"warn"`},
		{"internal_error is retried", fakeslack.Failure{Error: "internal_error", Times: 1}, 2, true, `"level":"warn"`},
		{"a refused token is retried loudly", fakeslack.Failure{Error: "invalid_auth", Times: 2}, 3, true, `"level":"error"`},
		{"channel_not_found is dropped, loudly", fakeslack.Failure{Error: "channel_not_found", Times: 1}, 1, false, `"level":"error"`},
		{"msg_too_long is dropped, loudly", fakeslack.Failure{Error: "msg_too_long", Times: 1}, 1, false, `"level":"error"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startSender(t, nil)
			h.fs.Fail("chat.postMessage", tt.failure)
			h.emit(t, dmReply("D01", "hello"))
			h.waitEmpty(t, 3*time.Second)
			// The queue moves on after either outcome.
			h.emit(t, dmReply("D01", "next"))
			h.waitEmpty(t, 3*time.Second)
			if got := len(h.fs.Calls("chat.postMessage")); got != tt.calls+1 {
				t.Errorf("chat.postMessage calls: got %d, want %d", got, tt.calls+1)
			}
			var texts []string
			for _, m := range h.fs.Messages("D01") {
				texts = append(texts, m.Text)
			}
			want := []string{"next"}
			if tt.delivered {
				want = []string{"hello", "next"}
			}
			if diff := cmp.Diff(want, texts); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
			if logs := h.logs.String(); !strings.Contains(logs, tt.log) {
				t.Errorf("log lacks %s:\n%s", tt.log, logs)
			}
			if strings.Contains(h.logs.String(), fakeslack.BotToken) {
				t.Error("the log contains the bot token")
			}
		})
	}
}

func TestSenderReplies(t *testing.T) {
	h := startSender(t, nil)
	h.emit(t,
		commands.Effect{Kind: commands.EffectReply, User: "U01", Channel: releaseChannel, Via: commands.ViaMention, Text: commands.Text{commands.Plain("only you see this")}},
		commands.Effect{Kind: commands.EffectReply, User: "U02", Channel: "D02", Via: commands.ViaButton, Text: commands.Text{commands.Plain("you clicked")}},
		commands.Effect{Kind: commands.EffectReply, User: "U03", Text: commands.Text{commands.Plain("a later report")}},
		commands.Effect{Kind: commands.EffectDM, User: "U04", Text: commands.Text{commands.Plain("PAY-1 needs you")}, Buttons: []commands.Button{
			{Label: "Approve", Command: "accept PAY-1", Style: "primary"}, {Label: "Reject", Command: "reject PAY-1", Style: "danger"}}},
	)
	h.waitEmpty(t, 3*time.Second)
	type eph struct{ Channel, User, Text string }
	var gotEph []eph
	for _, m := range h.fs.Ephemerals("") {
		gotEph = append(gotEph, eph{m.Channel, m.User, m.Text})
	}
	wantEph := []eph{{releaseChannel, "U01", "only you see this"}, {"D02", "U02", "you clicked"}}
	if diff := cmp.Diff(wantEph, gotEph, cmpSorted[eph]()); diff != "" {
		t.Errorf("ephemeral replies (-want +got):\n%s", diff)
	}
	if m := h.fs.Messages(fakeslack.DMChannel("U03")); len(m) != 1 || m[0].Text != "a later report" {
		t.Errorf("a reply without a channel goes by DM: %+v", m)
	}
	buttons := h.fs.Buttons(fakeslack.DMChannel("U04"))
	var values []string
	for _, b := range buttons {
		values = append(values, b.Label+"="+b.Value)
	}
	if diff := cmp.Diff([]string{"Approve=accept PAY-1", "Reject=reject PAY-1"}, values); diff != "" {
		t.Errorf("DM buttons (-want +got):\n%s", diff)
	}
	if len(h.fs.Messages(releaseChannel)) != 0 {
		t.Error("a reply was posted for everyone in the release channel")
	}

	// An ephemeral reply that cannot be shown goes by DM.
	h.fs.Fail("chat.postEphemeral", fakeslack.Failure{Error: "user_not_in_channel", Times: 1})
	h.emit(t, commands.Effect{Kind: commands.EffectReply, User: "U05", Channel: "C0ELSE", Via: commands.ViaMention, Text: commands.Text{commands.Plain("fallback")}})
	h.waitEmpty(t, 3*time.Second)
	if m := h.fs.Messages(fakeslack.DMChannel("U05")); len(m) != 1 || m[0].Text != "fallback" {
		t.Errorf("ephemeral fallback: %+v", m)
	}
	// conversations.open is asked once per user.
	h.emit(t, commands.Effect{Kind: commands.EffectDM, User: "U04", Text: commands.Text{commands.Plain("again")}})
	h.waitEmpty(t, 3*time.Second)
	if n := len(h.fs.Calls("conversations.open")); n != 3 {
		t.Errorf("conversations.open calls: got %d, want 3 (U03, U04, U05)", n)
	}
}

func cmpSorted[T any]() cmp.Option {
	return cmp.Transformer("sorted", func(in []T) []string {
		out := make([]string, len(in))
		for i, x := range in {
			out[i] = fmt.Sprint(x)
		}
		// order across lanes is not defined
		for i := range out {
			for j := i + 1; j < len(out); j++ {
				if out[j] < out[i] {
					out[i], out[j] = out[j], out[i]
				}
			}
		}
		return out
	})
}

// putRelease stores a release and returns it as stored.
func putRelease(t *testing.T, db commands.Store, r commands.Release) commands.Release {
	t.Helper()
	err := db.Update(context.Background(), func(tx commands.Tx) error {
		var err error
		r, err = tx.PutRelease(r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func getRelease(t *testing.T, db commands.Store, id uint64) commands.Release {
	t.Helper()
	var r commands.Release
	err := db.View(context.Background(), func(tx commands.Tx) error {
		var err error
		r, err = tx.Release(id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func cardEffect(r commands.Release) commands.Effect {
	return commands.Effect{Kind: commands.EffectCard, Release: &r}
}

func TestSenderCardPostedOnceThenUpdated(t *testing.T) {
	h := startSender(t, nil)
	now := time.Now().UTC()
	rel := putRelease(t, h.db, commands.Release{Ticket: "PAY-1", Summary: "Checkout", State: commands.StateRequested,
		Requester: "U01", Created: now, Updated: now})

	// A thread message before the card was posted posts the card first.
	h.emit(t, commands.Effect{Kind: commands.EffectThread, Release: &rel, Text: commands.Text{commands.Plain("queued")}}, cardEffect(rel))
	h.waitEmpty(t, 3*time.Second)
	ts := getRelease(t, h.db, rel.ID).Card
	if ts == "" {
		t.Fatal("the card's ts was not stored in the release")
	}

	rel = getRelease(t, h.db, rel.ID)
	rel.State, rel.Approver = commands.StateAccepted, "U02"
	rel = putRelease(t, h.db, rel)
	h.emit(t, cardEffect(rel), commands.Effect{Kind: commands.EffectThread, Release: &rel, Text: commands.Text{commands.Plain("accepted by "), commands.Person("U02")}})
	h.waitEmpty(t, 3*time.Second)

	type msg struct {
		TS, ThreadTS, Text string
		Updates            int
	}
	var got []msg
	for _, m := range h.fs.Messages(releaseChannel) {
		got = append(got, msg{m.TS, m.ThreadTS, m.Text, m.Updates})
	}
	card := h.fs.Messages(releaseChannel)[0]
	// The thread posted the card; each card effect then updated it.
	want := []msg{
		{ts, "", card.Text, 2},
		{got[1].TS, ts, "queued", 0},
		{got[2].TS, ts, "accepted by <@U02>", 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("release channel (-want +got):\n%s", diff)
	}
	if !strings.Contains(card.Text, "ACCEPTED") || !strings.Contains(string(card.Blocks), "accepted") {
		t.Errorf("the card does not show the latest state: %s", card.Text)
	}
	if n := len(callsTo(h.fs, "chat.postMessage", releaseChannel)); n != 3 {
		t.Errorf("chat.postMessage calls in the release channel: got %d, want 3 (one card, two thread replies)", n)
	}
}

func TestSenderSkipsSupersededCards(t *testing.T) {
	h := startSender(t, nil)
	now := time.Now().UTC()
	rel := putRelease(t, h.db, commands.Release{Ticket: "PAY-2", State: commands.StateRequested, Requester: "U01", Created: now, Updated: now})
	h.snd.mu.Lock() // hold the sender so all three land in one lane together
	h.emit(t, cardEffect(rel), cardEffect(rel), cardEffect(rel))
	h.snd.mu.Unlock()
	h.waitEmpty(t, 3*time.Second)
	if n := len(h.fs.Calls("chat.postMessage")) + len(h.fs.Calls("chat.update")); n != 1 {
		t.Errorf("calls for three queued cards of one release: got %d, want 1", n)
	}
}

func TestSenderRepostsADeletedCard(t *testing.T) {
	h := startSender(t, nil)
	now := time.Now().UTC()
	rel := putRelease(t, h.db, commands.Release{Ticket: "PAY-3", State: commands.StateRequested, Requester: "U01",
		Created: now, Updated: now, Card: "1.000001"}) // a ts Slack does not know
	h.emit(t, cardEffect(rel))
	h.waitEmpty(t, 3*time.Second)
	msgs := h.fs.Messages(releaseChannel)
	if len(msgs) != 1 || getRelease(t, h.db, rel.ID).Card != msgs[0].TS {
		t.Errorf("after message_not_found: messages %+v, stored card %q", msgs, getRelease(t, h.db, rel.ID).Card)
	}
}

func TestSenderLeavesUndeliveredEffectsForTheNextStart(t *testing.T) {
	h := startSender(t, nil)
	h.fs.Fail("chat.postMessage", fakeslack.Failure{Status: http.StatusTooManyRequests, RetryAfter: 30, Times: 1})
	h.emit(t, dmReply("D01", "kept"))
	if _, err := h.fs.WaitCalls("chat.postMessage", 1, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	h.stop()
	if d := time.Since(stopped); d > time.Second {
		t.Errorf("stopping took %v while waiting out a Retry-After", d)
	}
	pending, err := h.db.Pending(context.Background(), 10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("outbox after stopping: %+v, %v; want the undelivered message", pending, err)
	}
	// A new sender (a restart) delivers it.
	api := slack.New(fakeslack.BotToken, slack.OptionAPIURL(h.fs.URL))
	next := newSender(api, h.db, commands.NewService(commands.Config{Store: h.db}), releaseChannel, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		next.run(ctx)
	}()
	defer func() { cancel(); <-done }()
	h.waitEmpty(t, 3*time.Second)
	if m := h.fs.Messages("D01"); len(m) != 1 || m[0].Text != "kept" {
		t.Errorf("after the restart: %+v", m)
	}
}

func TestSenderDeliversEachEffectOnce(t *testing.T) {
	// Many small commits while the sender reads the outbox often: an effect
	// delivered between a read and the next must not be sent again.
	h := startSender(t, func(s *sender) { s.pace, s.poll = time.Millisecond, time.Millisecond })
	const n = 200
	for i := range n {
		h.emit(t, dmReply(fmt.Sprintf("D%02d", i%10), fmt.Sprintf("m%03d", i)))
	}
	h.waitEmpty(t, 10*time.Second)
	// Not a pause: one more effect per channel, emitted now that every
	// effect was delivered. The sender reads the outbox in one loop and
	// each channel's lane delivers in order, so once these are delivered,
	// every read that began before them has handed out what it read and
	// it has been delivered: a second delivery would be in the fake now.
	for i := range 10 {
		h.emit(t, dmReply(fmt.Sprintf("D%02d", i), "end"))
	}
	h.waitEmpty(t, 10*time.Second)
	seen := map[string]int{}
	for _, m := range h.fs.Messages("") {
		seen[m.Text]++
	}
	for i := range n {
		if text := fmt.Sprintf("m%03d", i); seen[text] != 1 {
			t.Errorf("%s delivered %d times", text, seen[text])
		}
	}
}

// TestSenderPostsToTheReleaseChannel: an EffectPost (an audit checkpoint)
// is one plain message of its own in the release channel: no thread, no
// blocks, nothing ephemeral.
func TestSenderPostsToTheReleaseChannel(t *testing.T) {
	h := startSender(t, nil)
	text := commands.CheckpointText(commands.Checkpoint{Seq: 42, Hash: strings.Repeat("ab", 32)})
	h.emit(t, commands.Effect{Kind: commands.EffectPost, Text: text})
	h.waitEmpty(t, 3*time.Second)
	type msg struct {
		Channel, ThreadTS, Text string
		Blocks                  int
		Ephemeral               bool
	}
	var got []msg
	for _, m := range h.fs.Messages(releaseChannel) {
		got = append(got, msg{m.Channel, m.ThreadTS, m.Text, len(m.Blocks), m.Ephemeral})
	}
	want := []msg{{Channel: releaseChannel, Text: mrkdwnText(text)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("release channel messages (-want +got):\n%s", diff)
	}
}
