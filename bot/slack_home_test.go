package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
)

// homeClock is a Clock that moves only when the test says: the App Home's
// 2 s window is judged by it, never by sleeping.
type homeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []clockWaiter
}

type clockWaiter struct {
	at time.Time
	ch chan time.Time
}

func newHomeClock() *homeClock {
	return &homeClock{now: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)}
}

func (c *homeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *homeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, clockWaiter{c.now.Add(d), ch})
	return ch
}

// Advance moves the clock by d and wakes the waiters it passes.
func (c *homeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// homeBot starts the bot with the App Home's clock and the fake's on clock.
func homeBot(t *testing.T, clock *homeClock, tune ...func(*Slack, *commands.Config)) (*fakeslack.Server, *botHarness) {
	t.Helper()
	fs := fakeslack.New(t)
	fs.SetClock(clock.Now)
	tune = append([]func(*Slack, *commands.Config){func(b *Slack, _ *commands.Config) { b.Clock = clock }}, tune...)
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{}, tune...)
	return fs, h
}

// homeOf is a published home as a test reads it: its headers, the text of
// its sections and its buttons.
type homeOf struct {
	headers  []string
	sections string
	buttons  []fakeslack.Button
}

func readHome(t *testing.T, v fakeslack.View) homeOf {
	t.Helper()
	var view struct {
		Type   string `json:"type"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(v.JSON, &view); err != nil {
		t.Fatal(err)
	}
	if view.Type != "home" {
		t.Errorf("published a view of type %q", view.Type)
	}
	var h homeOf
	var sec []string
	for _, b := range view.Blocks {
		switch b.Type {
		case "header":
			h.headers = append(h.headers, b.Text.Text)
		case "section":
			sec = append(sec, b.Text.Text)
		}
	}
	h.sections = strings.Join(sec, "\n")
	h.buttons = v.Buttons()
	return h
}

// waitHome waits until user's published home satisfies cond, moving the
// clock past the publishing window meanwhile, and returns it.
func waitHome(t *testing.T, fs *fakeslack.Server, clock *homeClock, user, what string, cond func(homeOf) bool) homeOf {
	t.Helper()
	var got homeOf
	eventually(t, user+"'s home "+what, func() bool {
		v, ok := fs.Home(user)
		if ok {
			got = readHome(t, v)
			if cond(got) {
				return true
			}
		}
		clock.Advance(500 * time.Millisecond)
		return false
	})
	return got
}

func buttonValues(bs []fakeslack.Button) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Label+"="+b.Value)
	}
	return out
}

// TestAppHomeOpened: opening the Home tab publishes the person's home with
// its sections; the approver sees the release waiting for them with
// Accept and Reject, and clicking Accept from the home accepts it as the
// clicker (answered by DM, there being no channel); the home is then
// republished without it. Opening the Messages tab publishes nothing, and
// a home nobody opened since the start is not published at a change.
// Another approver, whose home showed the release waiting, sees it go.
func TestAppHomeOpened(t *testing.T) {
	const carol = "U04CAROL" // another approver
	clock := newHomeClock()
	fs, h := homeBot(t, clock, func(_ *Slack, c *commands.Config) { c.Policy.Approvers = []string{bob, carol} })

	do(t, fs, fs.AppHomeOpenedEnvelope(bob, "messages"))
	do(t, fs, fs.AppHomeOpenedEnvelope(bob, "home"))
	home := waitHome(t, fs, clock, bob, "published", func(homeOf) bool { return true })
	// Homes are published again at a change for those who opened them
	// since the start: carol and the admin did; ann, the requester, not.
	do(t, fs, fs.AppHomeOpenedEnvelope(carol, "home"))
	do(t, fs, fs.AppHomeOpenedEnvelope(adm, "home"))
	if diff := cmp.Diff([]string{"Waiting for you", "Queue", "Locks", "Freezes", "Where"}, home.headers); diff != "" {
		t.Errorf("home headers (-want +got):\n%s", diff)
	}
	for _, want := range []string{"Nothing waits for you.", "The queue is empty.", "No component is locked.", "Nothing is frozen.", "Nothing is recorded as done yet."} {
		if !strings.Contains(home.sections, want) {
			t.Errorf("empty home %q lacks %q", home.sections, want)
		}
	}

	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1")))
	eventually(t, "PAY-1 requested", func() bool { return h.state(t, "PAY-1") == commands.StateRequested })
	home = waitHome(t, fs, clock, bob, "with PAY-1 waiting", func(h homeOf) bool { return len(h.buttons) > 0 })
	if diff := cmp.Diff([]string{"Accept=accept PAY-1", "Reject=reject PAY-1"}, buttonValues(home.buttons)); diff != "" {
		t.Errorf("bob's home buttons (-want +got):\n%s", diff)
	}
	for _, want := range []string{"waits for your approval", "1. <https://jira.example.com/browse/PAY-1|PAY-1> — requested — requester <@" + ann + ">"} {
		if !strings.Contains(home.sections, want) {
			t.Errorf("bob's home %q lacks %q", home.sections, want)
		}
	}
	waitHome(t, fs, clock, carol, "with PAY-1 waiting", func(h homeOf) bool { return len(h.buttons) == 2 })
	if pubs := fs.Publishes(ann); len(pubs) != 0 {
		t.Errorf("the requester's home, never opened, was published %d times after her dobro", len(pubs))
	}

	do(t, fs, fs.HomeClickEnvelope(bob, home.buttons[0]))
	eventually(t, "PAY-1 accepted from the home", func() bool { return h.state(t, "PAY-1") == commands.StateAccepted })
	if rel := h.release(t, "PAY-1"); rel.Approver != bob {
		t.Errorf("accepted by %q, want the clicker %s", rel.Approver, bob)
	}
	eventually(t, "the clicker told by DM", func() bool {
		return strings.Contains(strings.Join(texts(fs.Messages(fakeslack.DMChannel(bob))), "\n"), "You accepted PAY-1.")
	})
	waitHome(t, fs, clock, bob, "without PAY-1 waiting", func(h homeOf) bool {
		return len(h.buttons) == 0 && strings.Contains(h.sections, "— accepted —")
	})
	waitHome(t, fs, clock, carol, "without PAY-1 waiting once bob accepted", func(h homeOf) bool { return len(h.buttons) == 0 })
	waitHome(t, fs, clock, adm, "with PAY-1 to claim", func(h homeOf) bool {
		return cmp.Equal(buttonValues(h.buttons), []string{"Claim=here PAY-1"})
	})
	if errs := fs.Errors(); len(errs) > 0 {
		t.Errorf("the fake Slack refused calls: %v", errs)
	}
}

// TestAppHomeRate: 100 changes that concern one person within a second (of
// the injected clock) publish her home at most once per 2 s, and the last
// publish shows the last state.
func TestAppHomeRate(t *testing.T) {
	clock := newHomeClock()
	fs, h := homeBot(t, clock, func(_ *Slack, c *commands.Config) { c.Policy.Requesters = []string{ann} })
	// Only the homes someone opened are published again at a change.
	do(t, fs, fs.AppHomeOpenedEnvelope(ann, "home"))
	do(t, fs, fs.AppHomeOpenedEnvelope(bob, "home"))
	start := clock.Now()
	ctx := context.Background()
	const changes = 100
	for i := 1; i <= changes; i++ {
		m := commands.Message{EventID: fmt.Sprintf("rate-%d", i), User: ann, Channel: releaseChannel,
			Text: fmt.Sprintf("dobro PAY-%d", i), Via: commands.ViaMention, Time: time.Now()}
		if _, err := h.svc.Receive(ctx, m); err != nil {
			t.Fatal(err)
		}
		if err := h.svc.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Millisecond)
	}
	last := fmt.Sprintf("%d open, in order:", changes)
	for _, user := range []string{ann, bob} {
		waitHome(t, fs, clock, user, "showing the last state", func(h homeOf) bool { return strings.Contains(h.sections, last) })
		pubs := fs.Publishes(user)
		for i := 1; i < len(pubs); i++ {
			if gap := pubs[i].Time.Sub(pubs[i-1].Time); gap < homeEvery {
				t.Errorf("%s's home published twice within %v (publishes %d and %d)", user, gap, i, i+1)
			}
		}
		within := 0
		for _, p := range pubs {
			if p.Time.Sub(start) < time.Second {
				within++
			}
		}
		if within > 1 {
			t.Errorf("%s's home was published %d times in the second of the %d changes; want at most 1", user, within, changes)
		}
		if got := readHome(t, pubs[len(pubs)-1].View); !strings.Contains(got.sections, last) {
			t.Errorf("%s's last publish does not show the last change", user)
		}
		t.Logf("FIGURE %s: %d changes in 1 s of the clock, %d publishes over %v", user, changes, len(pubs), pubs[len(pubs)-1].Time.Sub(start))
	}
}

// holdPublish is an HTTP transport that holds every views.publish until
// released: Slack being slow to publish a home.
type holdPublish struct {
	release chan struct{}
	held    chan struct{} // one send per publish held
}

func (hp *holdPublish) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/views.publish") {
		select {
		case hp.held <- struct{}{}:
		default:
		}
		select {
		case <-hp.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestAppHomeSlowPublishDoesNotBlock: while views.publish hangs, commands
// are acked and answered; a views.publish that fails leaves commands
// alone too, and the next change publishes again.
func TestAppHomeSlowPublishDoesNotBlock(t *testing.T) {
	clock := newHomeClock()
	hp := &holdPublish{release: make(chan struct{}), held: make(chan struct{}, 1)}
	fs, h := homeBot(t, clock, func(b *Slack, _ *commands.Config) { b.HTTPClient = &http.Client{Transport: hp} })
	do(t, fs, fs.AppHomeOpenedEnvelope(bob, "home"))
	select {
	case <-hp.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the home was never published")
	}
	// The publish hangs: a command is acked (do waits for it) and answered.
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1")))
	sent := do(t, fs, fs.EventEnvelope(fakeslack.Mention(bob, releaseChannel, "accept PAY-1")))
	if lat, ok := fs.AckLatency(sent.EnvelopeID); !ok || lat > time.Second {
		t.Errorf("ack latency %v (acked %v) while views.publish hangs", lat, ok)
	}
	eventually(t, "bob answered while his home's publish hangs", func() bool {
		return strings.Contains(strings.Join(texts(fs.Ephemerals(bob)), "\n"), "You accepted PAY-1.")
	})
	if n := len(fs.Publishes("")); n != 0 {
		t.Fatalf("%d publishes went through while held", n)
	}
	close(hp.release)
	do(t, fs, fs.AppHomeOpenedEnvelope(ann, "home"))

	// Every views.publish fails now: commands still go through.
	fs.Fail("views.publish", fakeslack.Failure{Error: "internal_error"})
	before := len(fs.Calls("views.publish"))
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(adm, releaseChannel, "here PAY-1")))
	eventually(t, "PAY-1 claimed while views.publish fails", func() bool { return h.state(t, "PAY-1") == commands.StateClaimed })
	eventually(t, "a failed publish tried", func() bool {
		clock.Advance(500 * time.Millisecond)
		return len(fs.Calls("views.publish")) > before
	})
	fs.ClearFailures()
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dep start PAY-1")))
	waitHome(t, fs, clock, ann, "with PAY-1 to finish after the failures", func(h homeOf) bool {
		return cmp.Equal(buttonValues(h.buttons), []string{"Finish=dep finish PAY-1"})
	})
}

// TestConsoleHome: home in the console prints the console user's home,
// the buttons written as the commands they type, people by their console
// names.
func TestConsoleHome(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "console.db"))
	var out syncBuffer
	c := &Console{Store: db, In: strings.NewReader("dobro PAY-1\n/as approver\nhome\n/as me\nhome\n"),
		Out: &out, Names: map[string]string{"approver": bob}}
	c.Service = commands.NewService(commands.Config{Store: db, Tracker: &testTracker{}, Log: c.Log, Notify: c.Notify, Groups: ConsoleGroups{},
		Policy: commands.Policy{Approvers: []string{bob}, Admins: []string{adm}, Components: []string{"backend"}}})
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"→ to approver only: Home of @approver.\n      Waiting for you:\n      • PAY-1 — Release of PAY-1\n      requested by @me just now; waits for your approval.",
		"[Accept: `accept PAY-1`] [Reject: `reject PAY-1`]",
		"Queue:\n      1 open, in order:\n      1. PAY-1 — requested — requester @me",
		"→ to me only: Home of @me.\n      Waiting for you: nothing.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the console did not print %q:\n%s", want, out.String())
		}
	}
}
