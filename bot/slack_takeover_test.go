package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// errKilled is what a killed process's calls "return": nothing it does after
// the kill reaches Slack or the Store.
var errKilled = errors.New("the process was killed")

// killable is the outbox as a process that can be killed sees it: once dead,
// none of its writes commits.
type killable struct {
	*storage.DB
	dead *atomic.Bool
}

func (k killable) Update(ctx context.Context, fn func(commands.Tx) error) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.DB.Update(ctx, fn)
}

func (k killable) UpdateFirst(ctx context.Context, fn func(commands.Tx) error) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.DB.UpdateFirst(ctx, fn)
}

func (k killable) Delivered(ctx context.Context, ids ...uint64) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.DB.Delivered(ctx, ids...)
}

// killingTransport kills the process when Slack has answered the after-th
// chat.postMessage: that answer and every later one is lost with it, while
// the requests already sent still reach Slack, as they would.
type killingTransport struct {
	base  http.RoundTripper
	dead  *atomic.Bool
	posts atomic.Int32
	after int32
}

func (k *killingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if k.dead.Load() {
		return nil, errKilled
	}
	resp, err := k.base.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/chat.postMessage") && k.posts.Add(1) >= k.after {
		k.dead.Store(true)
	}
	if k.dead.Load() {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, errKilled
	}
	return resp, err
}

// TestSenderTakeoverResendsNoPostedMessage kills a leader in the middle of
// the catch-up of a backlog spread over many lanes (DMs to many people,
// posts, cards and their threads in the release channel): every lane had a
// message on the wire, which reached Slack, and none was recorded as sent.
// The next leader's sender must send every message of the backlog, and
// none that Slack already has a second time: each message carries its
// outbox ID in its metadata, and a new term reads each lane's channel back
// before its first message. (Before, it sent each lane's message on the
// wire again: one duplicate per lane.)
func TestSenderTakeoverResendsNoPostedMessage(t *testing.T) {
	fs := fakeslack.New(t)
	db := openDB(t, filepath.Join(t.TempDir(), "bot.db"))
	defer db.Close()
	ctx := context.Background()

	const users, perUser, releases = 12, 4, 3
	var effects []commands.Effect
	for u := range users {
		for i := range perUser {
			effects = append(effects, commands.Effect{Kind: commands.EffectDM, User: fmt.Sprintf("U%02d", u),
				Text: commands.Text{commands.Plain(fmt.Sprintf("dm-%02d-%d", u, i))}})
		}
		effects = append(effects, commands.Effect{Kind: commands.EffectReply, User: fmt.Sprintf("U%02d", u),
			Channel: fakeslack.DMChannel(fmt.Sprintf("U%02d", u)), Via: commands.ViaDM,
			Text: commands.Text{commands.Plain(fmt.Sprintf("reply-%02d", u))}})
		effects = append(effects, commands.Effect{Kind: commands.EffectReply, User: fmt.Sprintf("U%02d", u),
			Channel: releaseChannel, Via: commands.ViaMention,
			Text: commands.Text{commands.Plain(fmt.Sprintf("ephemeral-%02d", u))}})
	}
	now := time.Now().UTC()
	for r := range releases {
		rel := putRelease(t, db, commands.Release{Ticket: fmt.Sprintf("PAY-%d", r+1), Summary: "Change",
			State: commands.StateRequested, Requester: "U01", Created: now, Updated: now})
		effects = append(effects, cardEffect(rel))
		for i := range 2 {
			effects = append(effects, commands.Effect{Kind: commands.EffectThread, Release: &rel,
				Text: commands.Text{commands.Plain(fmt.Sprintf("thread-%d-%d", r+1, i))}})
		}
		effects = append(effects, commands.Effect{Kind: commands.EffectPost,
			Text: commands.Text{commands.Plain(fmt.Sprintf("post-%d", r+1))}})
	}
	err := db.Update(ctx, func(tx commands.Tx) error {
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

	// The first leader: killed when Slack answered its 20th post.
	var dead atomic.Bool
	store := killable{DB: db, dead: &dead}
	kill := &killingTransport{base: http.DefaultTransport, dead: &dead, after: 20}
	api := slack.New(fakeslack.BotToken, slack.OptionAPIURL(fs.URL), slack.OptionHTTPClient(&http.Client{Transport: kill}))
	first := newSender(api, store, commands.NewService(commands.Config{Store: store}), releaseChannel, zerolog.Nop())
	first.pace, first.retryBase, first.retryMax = 5*time.Millisecond, 10*time.Millisecond, 20*time.Millisecond
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		first.run(runCtx)
	}()
	if !waitFor(10*time.Second, dead.Load) {
		t.Fatal("the first leader never posted 20 messages")
	}
	stop()
	<-done
	posted := len(fs.Messages("")) + len(fs.Ephemerals(""))
	pending, err := db.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}

	// The next leader catches up.
	api = slack.New(fakeslack.BotToken, slack.OptionAPIURL(fs.URL))
	next := newSender(api, db, commands.NewService(commands.Config{Store: db}), releaseChannel, zerolog.Nop())
	next.pace, next.retryBase, next.retryMax = 5*time.Millisecond, 10*time.Millisecond, 20*time.Millisecond
	runCtx, stop = context.WithCancel(ctx)
	done = make(chan struct{})
	go func() {
		defer close(done)
		next.run(runCtx)
	}()
	defer func() { stop(); <-done }()
	if !waitFor(20*time.Second, func() bool {
		p, err := db.Pending(ctx, 1)
		return err == nil && len(p) == 0
	}) {
		t.Fatal("the next leader did not empty the outbox")
	}

	// Every message once: DMs, replies, threads and posts by their text,
	// cards by their ticket; the stored card is the one in the channel.
	copies := map[string]int{}
	for _, m := range fs.Ephemerals("") {
		copies[m.Text]++
	}
	for _, m := range fs.Messages("") {
		key := m.Text
		if m.Channel == releaseChannel && m.ThreadTS == "" && !strings.HasPrefix(m.Text, "post-") {
			for r := range releases {
				if ticket := fmt.Sprintf("PAY-%d", r+1); strings.Contains(m.Text, ticket) {
					key = "card " + ticket
				}
			}
		}
		copies[key]++
	}
	var want []string
	for u := range users {
		for i := range perUser {
			want = append(want, fmt.Sprintf("dm-%02d-%d", u, i))
		}
		want = append(want, fmt.Sprintf("reply-%02d", u), fmt.Sprintf("ephemeral-%02d", u))
	}
	for r := range releases {
		want = append(want, fmt.Sprintf("card PAY-%d", r+1), fmt.Sprintf("post-%d", r+1))
		for i := range 2 {
			want = append(want, fmt.Sprintf("thread-%d-%d", r+1, i))
		}
	}
	var lost, twice, ephemeralTwice []string
	for _, k := range want {
		switch n := copies[k]; {
		case n == 0:
			lost = append(lost, k)
		case n > 1 && strings.HasPrefix(k, "ephemeral-"):
			ephemeralTwice = append(ephemeralTwice, fmt.Sprintf("%s ×%d", k, n))
		case n > 1:
			twice = append(twice, fmt.Sprintf("%s ×%d", k, n))
		}
	}
	t.Logf("killed after %d posts with %d of %d effects pending; the next leader sent %d posts and %d ephemeral replies again",
		posted, len(pending), len(effects), len(twice), len(ephemeralTwice))
	if len(lost) > 0 {
		t.Errorf("lost: %v", lost)
	}
	if diff := cmp.Diff([]string(nil), twice); diff != "" {
		t.Errorf("posts sent twice (-want +got):\n%s", diff)
	}
	if len(ephemeralTwice) > 1 {
		t.Errorf("ephemeral replies shown twice: %v; want at most the one on the wire", ephemeralTwice)
	}
	for r := range releases {
		rel := getRelease(t, db, uint64(r+1))
		var cards []string
		for _, m := range fs.Messages(releaseChannel) {
			if m.ThreadTS == "" && strings.Contains(m.Text, rel.Ticket) {
				cards = append(cards, m.TS)
			}
		}
		if len(cards) == 0 || rel.Card != cards[0] {
			t.Errorf("%s: stored card %q, cards in the channel %v", rel.Ticket, rel.Card, cards)
		}
	}
}

// waitFor polls cond until it holds or timeout passes, and reports whether
// it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// flakyDelivered fails the first fails calls of Delivered and records when
// each effect was marked.
type flakyDelivered struct {
	*storage.DB
	mu     sync.Mutex
	fails  int
	marked map[uint64]time.Time
}

func (f *flakyDelivered) Delivered(ctx context.Context, ids ...uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return errors.New("the database is away for a moment")
	}
	if err := f.DB.Delivered(ctx, ids...); err != nil {
		return err
	}
	for _, id := range ids {
		f.marked[id] = time.Now()
	}
	return nil
}

// TestSenderLaneWaitsForItsMark: a lane sends its next message only once
// the last one is recorded as delivered, however long the outbox refuses
// the mark; so a lane never has more than one message sent and not
// recorded, the one a next term looks for. (Before, a lane gave up marking
// after three tries and went on.)
func TestSenderLaneWaitsForItsMark(t *testing.T) {
	fs := fakeslack.New(t)
	db := openDB(t, filepath.Join(t.TempDir(), "bot.db"))
	defer db.Close()
	store := &flakyDelivered{DB: db, fails: 6, marked: map[uint64]time.Time{}}
	api := slack.New(fakeslack.BotToken, slack.OptionAPIURL(fs.URL))
	snd := newSender(api, store, commands.NewService(commands.Config{Store: db}), releaseChannel, zerolog.Nop())
	snd.pace, snd.retryBase, snd.retryMax, snd.poll = time.Millisecond, 10*time.Millisecond, 20*time.Millisecond, 20*time.Millisecond
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		snd.run(ctx)
	}()
	defer func() { stop(); <-done }()
	err := db.Update(ctx, func(tx commands.Tx) error {
		for _, text := range []string{"first", "second"} {
			if _, err := tx.Emit(dmReply("D01", text)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	snd.notify()
	calls, err := fs.WaitCalls("chat.postMessage", 2, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	first, marked := store.marked[1]
	store.mu.Unlock()
	if !marked || calls[1].Time.Before(first) {
		t.Errorf("the second message was posted at %s, the first marked delivered at %s (marked: %v); want after",
			calls[1].Time.Format("15:04:05.000"), first.Format("15:04:05.000"), marked)
	}
}

// TestSenderTakeoverReadsBack: how a new term treats the unsure first
// effect of a lane, by what Slack has and answers.
func TestSenderTakeoverReadsBack(t *testing.T) {
	for _, c := range []struct {
		name        string
		effect      commands.Effect
		postedAt    string // the channel where the last term posted it ("": not posted)
		postedEvent string // the event in that message's metadata, if not the effect's
		fail        *fakeslack.Failure
		wantCopies  int
		wantReads   int
		wantLogging string
	}{
		{name: "posted: not sent again", effect: commands.Effect{Kind: commands.EffectDM, User: "U07"}, postedAt: "D07",
			wantCopies: 1, wantReads: 1, wantLogging: "the last term sent this message and did not record it"},
		{name: "not posted: sent", effect: commands.Effect{Kind: commands.EffectDM, User: "U07"},
			wantCopies: 1, wantReads: 1},
		{name: "a post in the release channel", effect: commands.Effect{Kind: commands.EffectPost}, postedAt: releaseChannel,
			wantCopies: 1, wantReads: 1, wantLogging: "did not record it"},
		{name: "a reply in a DM", effect: dmReply("D01", ""), postedAt: "D01",
			wantCopies: 1, wantReads: 1, wantLogging: "did not record it"},
		{name: "Slack errs once: read again", effect: commands.Effect{Kind: commands.EffectDM, User: "U07"}, postedAt: "D07",
			fail: &fakeslack.Failure{Error: "internal_error", Times: 1}, wantCopies: 1, wantReads: 2, wantLogging: "did not record it"},
		{name: "rate limited: read again after Retry-After", effect: commands.Effect{Kind: commands.EffectDM, User: "U07"}, postedAt: "D07",
			fail: &fakeslack.Failure{Status: http.StatusTooManyRequests, RetryAfter: 1, Times: 1}, wantCopies: 1, wantReads: 2, wantLogging: "did not record it"},
		{name: "no history scope: sent again, with a warning", effect: commands.Effect{Kind: commands.EffectDM, User: "U07"}, postedAt: "D07",
			fail: &fakeslack.Failure{Error: "missing_scope"}, wantCopies: 2, wantReads: 1,
			wantLogging: "could not read Slack back to see whether the last term sent this message"},
		{name: "the same outbox ID for another event (another database) is not it", effect: commands.Effect{Kind: commands.EffectDM, User: "U07", Event: "Ev0MINE"},
			postedAt: "D07", postedEvent: "Ev0OTHER", wantCopies: 2, wantReads: 1},
		{name: "the same outbox ID and event is it", effect: commands.Effect{Kind: commands.EffectDM, User: "U07", Event: "Ev0MINE"},
			postedAt: "D07", wantCopies: 1, wantReads: 1, wantLogging: "did not record it"},
		{name: "an ephemeral reply is not looked for", effect: commands.Effect{Kind: commands.EffectReply, User: "U07", Channel: releaseChannel},
			wantCopies: 0, wantReads: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := fakeslack.New(t)
			db := openDB(t, filepath.Join(t.TempDir(), "bot.db"))
			defer db.Close()
			ctx := context.Background()
			e := c.effect
			e.Text = commands.Text{commands.Plain("the message")}
			err := db.Update(ctx, func(tx commands.Tx) error {
				var err error
				e, err = tx.Emit(e)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			api := slack.New(fakeslack.BotToken, slack.OptionAPIURL(fs.URL))
			if c.postedAt != "" {
				as := e
				if c.postedEvent != "" {
					as.Event = c.postedEvent
				}
				if _, _, err := api.PostMessageContext(ctx, c.postedAt, slack.MsgOptionText("the message", false), outboxMetadata(as, nil)); err != nil {
					t.Fatal(err)
				}
			}
			if c.fail != nil {
				fs.Fail("conversations.history", *c.fail)
			}
			logs := &syncBuffer{}
			snd := newSender(api, db, commands.NewService(commands.Config{Store: db}), releaseChannel, zerolog.New(logs))
			snd.pace, snd.retryBase, snd.retryMax = time.Millisecond, 10*time.Millisecond, 20*time.Millisecond
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				snd.run(runCtx)
			}()
			ok := waitFor(10*time.Second, func() bool {
				p, err := db.Pending(ctx, 1)
				return err == nil && len(p) == 0
			})
			stop()
			<-done
			if !ok {
				t.Fatal("the outbox was not emptied")
			}
			if got := len(fs.Messages("")); got != c.wantCopies {
				t.Errorf("%d copies in Slack, want %d", got, c.wantCopies)
			}
			if got := len(fs.Calls("conversations.history")); got != c.wantReads {
				t.Errorf("%d history reads, want %d", got, c.wantReads)
			}
			if c.wantLogging != "" && !strings.Contains(logs.String(), c.wantLogging) {
				t.Errorf("the log does not say %q:\n%s", c.wantLogging, logs.String())
			}
		})
	}
}
