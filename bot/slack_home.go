package bot

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/dobrobot/dobrobot/commands"
)

// The App Home (issue 17): Slack shows each person the home view the bot
// last published for them (views.publish). The bot publishes it when they
// open the tab (app_home_opened) and again after changes that concern
// them, at most once per person every homeEvery: changes in between are
// coalesced, and the view published is read when it is published, so it
// shows the last state. Publishing runs on goroutines of its own, never on
// a command's path: a slow or failing views.publish delays no ack and no
// reply.

// homeEvery is the least time between two publishes of one person's home.
const homeEvery = 2 * time.Second

// homePublishTimeout bounds one publish: reading the view and views.publish.
const homePublishTimeout = 10 * time.Second

// homeReader is what the App Home asks of the Service: one person's home.
type homeReader interface {
	Home(ctx context.Context, user string) (commands.HomeView, error)
}

// Clock is the time as the App Home's publisher reads it; tests move it.
type Clock interface {
	Now() time.Time
	// After is time.After by this clock.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// homes publishes the App Home of each person, rate-limited per person.
type homes struct {
	svc     homeReader
	publish func(ctx context.Context, user string, view slack.HomeTabViewRequest) error
	clock   Clock
	log     zerolog.Logger
	ctx     context.Context
	stopped bool // set by stop, under mu: nothing starts after it

	mu     sync.Mutex
	users  map[string]*homeState
	opened map[string]bool // who opened the home since the start
	// showing is, by user, the tickets their last published home shows
	// waiting for them: a change of one of those releases concerns them
	// even when the card names someone else (another approver accepted).
	showing map[string]map[string]bool
	wg      sync.WaitGroup
}

// homeState is one person's publishing state.
type homeState struct {
	last    time.Time // when the last publish ended, by the clock
	dirty   bool      // a change since the last publish began
	running bool      // a goroutine publishes for them
}

func newHomes(ctx context.Context, svc homeReader, clock Clock, log zerolog.Logger,
	publish func(ctx context.Context, user string, view slack.HomeTabViewRequest) error) *homes {
	if clock == nil {
		clock = realClock{}
	}
	return &homes{svc: svc, publish: publish, clock: clock, log: log, ctx: ctx,
		users: map[string]*homeState{}, opened: map[string]bool{}, showing: map[string]map[string]bool{}}
}

// open notes that user opened the home tab and publishes it.
func (h *homes) open(user string) {
	h.mu.Lock()
	h.opened[user] = true
	h.mu.Unlock()
	h.touch(user)
}

// touchOpened marks the home of everyone who opened it changed (a lock or
// a freeze changed: everyone's home shows them).
func (h *homes) touchOpened() {
	h.mu.Lock()
	users := make([]string, 0, len(h.opened))
	for u := range h.opened {
		users = append(users, u)
	}
	h.mu.Unlock()
	h.touch(users...)
}

// touch marks users' homes changed: each is published as soon as its
// window allows. It never blocks.
func (h *homes) touch(users ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	for _, u := range users {
		if !userID.MatchString(u) {
			continue // a user group, or nobody
		}
		st := h.users[u]
		if st == nil {
			st = &homeState{}
			h.users[u] = st
		}
		st.dirty = true
		if !st.running {
			st.running = true
			h.wg.Add(1)
			go h.run(u, st)
		}
	}
}

// run publishes user's home while it is marked changed, never twice
// within homeEvery.
func (h *homes) run(user string, st *homeState) {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		if !st.dirty || h.ctx.Err() != nil {
			st.running = false
			h.mu.Unlock()
			return
		}
		if wait := st.last.Add(homeEvery).Sub(h.clock.Now()); !st.last.IsZero() && wait > 0 {
			h.mu.Unlock()
			select {
			case <-h.clock.After(wait):
			case <-h.ctx.Done():
			}
			continue
		}
		st.dirty = false // a change from now on is published next time
		h.mu.Unlock()
		h.publishNow(user)
		h.mu.Lock()
		st.last = h.clock.Now()
		h.mu.Unlock()
	}
}

// publishNow reads user's home and publishes it. A failure is logged: the
// next change, or the next time the user opens the tab, publishes again.
func (h *homes) publishNow(user string) {
	ctx, cancel := context.WithTimeout(h.ctx, homePublishTimeout)
	defer cancel()
	v, err := h.svc.Home(ctx, user)
	if err != nil {
		h.log.Warn().Err(err).Str("user", user).Msg("could not read the App Home")
		return
	}
	if err := h.publish(ctx, user, homeTab(v)); err != nil {
		h.log.Warn().Err(err).Str("user", user).Msg("could not publish the App Home")
		return
	}
	shown := make(map[string]bool, len(v.Waiting))
	for _, w := range v.Waiting {
		shown[w.Ticket] = true
	}
	h.mu.Lock()
	h.showing[user] = shown
	h.mu.Unlock()
}

// showingTicket returns the users whose home shows ticket waiting for them.
func (h *homes) showingTicket(ticket string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for u, tickets := range h.showing {
		if tickets[ticket] {
			out = append(out, u)
		}
	}
	return out
}

// stop ends publishing and waits for the publishes in flight.
func (h *homes) stop() {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	h.wg.Wait()
}

// observe reads an effect taken from the outbox for whom it concerns: a
// card's release's requester, approvers and admin, and whoever's home
// shows it waiting for them; the recipient of a DM (an approver asked, an
// admin asked to claim, a requester told to start). A release that takes
// or frees locks changes everyone's home.
func (h *homes) observe(e commands.Effect) {
	switch e.Kind {
	case commands.EffectCard:
		if e.Release == nil {
			return
		}
		r := e.Release
		h.touch(h.whoOpened(append([]string{r.Requester, r.Approver, r.Admin}, r.Approvals...))...)
		h.touch(h.whoOpened(h.showingTicket(r.Ticket))...)
		if r.State.HoldsLocks() || !r.State.Open() && len(r.Locks) > 0 {
			h.touchOpened()
		}
	case commands.EffectDM:
		h.touch(h.whoOpened([]string{e.User})...)
	}
}

// whoOpened keeps those of users who opened the home since the start: a
// home nobody looks at is not published at every change (a burst of
// requests from a thousand people published a thousand homes, a tenth of
// the bot's CPU in BenchmarkMentions); opening the tab publishes it fresh.
func (h *homes) whoOpened(users []string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.DeleteFunc(users, func(u string) bool { return !h.opened[u] })
}

// Block Kit limits of a home view.
const (
	maxHomeWaiting  = 20 // releases shown waiting: two blocks each
	maxHomeSections = 3  // sections per part (queue, locks, …) before it is cut
	maxHeaderText   = 150
)

// homeTab lays v out in Block Kit: what waits for the person, each release
// with its buttons (their values are commands, as on the bot's messages),
// then the queue, the locks, the freezes and where. Everything shown is
// the core's Text, rendered and escaped as any message is.
func homeTab(v commands.HomeView) slack.HomeTabViewRequest {
	blocks := []slack.Block{header("Waiting for you")}
	if len(v.Waiting) == 0 {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("Nothing waits for you."), nil, nil))
	}
	for i, w := range v.Waiting {
		if i == maxHomeWaiting {
			blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf("… and %d more: see the queue.", len(v.Waiting)-i))))
			break
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(clipMarkup(mrkdwnText(w.Text), maxSectionText)), nil, nil))
		var elems []slack.BlockElement
		for j, b := range w.Buttons {
			if el, ok := buttonElement(buttonPrefix+"home."+strconv.Itoa(j), b); ok {
				elems = append(elems, el)
			}
		}
		if len(elems) > 0 {
			// Block IDs are unique within a view.
			blocks = append(blocks, slack.NewActionBlock(fmt.Sprintf("dobrobot.home.%d", i), elems...))
		}
	}
	for _, part := range []struct {
		title string
		text  commands.Text
	}{{"Queue", v.Queue}, {"Locks", v.Locks}, {"Freezes", v.Freezes}, {"Where", v.Where}} {
		blocks = append(blocks, slack.NewDividerBlock(), header(part.title))
		chunks := splitText(mrkdwnText(part.text), maxSectionText)
		if len(chunks) > maxHomeSections {
			chunks = append(chunks[:maxHomeSections-1], "… (cut here: queue and where answer all of it)")
		}
		for _, c := range chunks {
			blocks = append(blocks, slack.NewSectionBlock(mrkdwn(c), nil, nil))
		}
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn("Updated "+slackDate(v.At))))
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

func header(s string) *slack.HeaderBlock {
	return slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, clipText(s, maxHeaderText), false, false))
}
