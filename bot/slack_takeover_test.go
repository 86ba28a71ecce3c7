package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
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
	posted := len(fs.Messages(""))
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
		want = append(want, fmt.Sprintf("reply-%02d", u))
	}
	for r := range releases {
		want = append(want, fmt.Sprintf("card PAY-%d", r+1), fmt.Sprintf("post-%d", r+1))
		for i := range 2 {
			want = append(want, fmt.Sprintf("thread-%d-%d", r+1, i))
		}
	}
	var lost, twice []string
	duplicates := 0
	for _, k := range want {
		switch n := copies[k]; {
		case n == 0:
			lost = append(lost, k)
		case n > 1:
			twice = append(twice, fmt.Sprintf("%s ×%d", k, n))
			duplicates += n - 1
		}
	}
	t.Logf("killed after %d posts with %d of %d effects pending; the next leader sent %d duplicates", posted, len(pending), len(effects), duplicates)
	if len(lost) > 0 {
		t.Errorf("lost: %v", lost)
	}
	if diff := cmp.Diff([]string(nil), twice); diff != "" {
		t.Errorf("sent twice (-want +got):\n%s", diff)
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
