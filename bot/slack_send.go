package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/dobrobot/dobrobot/commands"
)

// sender delivers the Store's outbox to Slack. Effects are sorted into lanes
// by destination; each lane delivers in order, one message at a time, at
// most one per pace interval (Slack allows about one message per second per
// channel), so a busy channel never holds up a reply to someone else. A 429
// blocks its method until Retry-After has passed, for every lane. Transient
// failures are retried with backoff for as long as the bot runs (the effect
// stays in the outbox until delivered, so a restart resumes it); a permanent
// failure is logged at error level and the effect is marked delivered so it
// does not block its lane.
type sender struct {
	api       *slack.Client
	store     Outbox
	cards     Service // keeps the ts of each release's card
	channel   string  // the release channel: cards and threads
	log       zerolog.Logger
	pace      time.Duration
	retryBase time.Duration
	retryMax  time.Duration
	poll      time.Duration
	wake      chan struct{}

	mu sync.Mutex
	// inflight holds the effects handed to lanes: 0 while in flight, then
	// the doneSeq at which the outbox forgot them. An outbox read that began
	// before that may still list them, so they stay until a later read.
	inflight map[uint64]uint64
	doneSeq  uint64
	taken    uint64 // the greatest effect ID handed to a lane
	lanes    map[string]*lane
	blocked  map[string]time.Time // method → no call before
	last     map[string]time.Time // lane → time of its last paced call
	dms      map[string]string    // user → IM channel
	// unsure holds the effects a previous term may have sent without
	// recording it: the first effect of each lane in the outbox when this
	// sender started (see scan). Each is looked for in Slack before it is
	// sent.
	unsure map[uint64]bool
	// backlogMax is the greatest effect ID in the outbox when this sender
	// started, and ephemeralTurn lets one ephemeral reply up to it be sent
	// at a time (runLane).
	backlogMax    uint64
	ephemeralTurn chan struct{}
	wg            sync.WaitGroup

	// export writes audit exports, files uploads them (see file); a
	// sender without files uploads with api.
	export Exporter
	files  *slack.Client
	// observe, if set, is told of each effect taken from the outbox, as
	// it is taken: the App Home learns whom a change concerns (homes).
	observe func(commands.Effect)

	// done removes delivered effects from the outbox, several per
	// transaction.
	done commands.GroupCommit[uint64, struct{}]
}

type lane struct{ queue []commands.Effect }

func newSender(api *slack.Client, store Outbox, cards Service, channel string, log zerolog.Logger) *sender {
	s := &sender{
		api: api, store: store, cards: cards, channel: channel, log: log,
		pace: time.Second, retryBase: time.Second, retryMax: time.Minute, poll: 5 * time.Second,
		wake: make(chan struct{}, 1), ephemeralTurn: make(chan struct{}, 1),
		inflight: map[uint64]uint64{}, lanes: map[string]*lane{}, blocked: map[string]time.Time{},
		last: map[string]time.Time{}, dms: map[string]string{}, unsure: map[uint64]bool{},
		files: api,
	}
	s.done.Commit = s.commitDelivered
	return s
}

// notify wakes the sender: the outbox has new effects.
func (s *sender) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run reads the outbox until ctx ends, then waits for its lanes to stop.
// Effects not delivered by then stay in the outbox for the next start.
func (s *sender) run(ctx context.Context) {
	defer s.wg.Wait()
	for !s.scan(ctx) {
		if !commands.Sleep(ctx, s.poll) {
			return
		}
	}
	full := true
	for {
		for s.dispatch(ctx, full) {
		}
		full = false
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-time.After(s.poll):
			full = true
		}
	}
}

// dispatchBatch is how many effects one outbox read takes.
const dispatchBatch = 1000

// scan notes, at the start of a term, the effects a previous term may have
// sent without recording it: each lane sends its next message only once
// the last one is recorded as delivered (markDelivered), so at most one per
// lane — its first in the outbox — was on the wire when that term ended.
// Those are looked for in Slack before they are sent again (posted). It is
// one more read of the outbox per term, not per message; it reports false
// if the outbox could not be read.
func (s *sender) scan(ctx context.Context) bool {
	seen := map[string]bool{}
	unsure := map[uint64]bool{}
	var after uint64
	for {
		effects, err := s.store.PendingAfter(ctx, after, dispatchBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error().Err(err).Msg("could not read the outbox; retrying")
			}
			return false
		}
		for _, e := range effects {
			after = e.ID
			if key := s.laneKey(e); !seen[key] {
				seen[key] = true
				unsure[e.ID] = true
			}
		}
		if len(effects) < dispatchBatch {
			break
		}
	}
	s.mu.Lock()
	s.unsure, s.backlogMax = unsure, after
	s.mu.Unlock()
	return true
}

// dispatch hands the outbox's effects that are not in flight to their lanes
// and reports whether there may be more to read at once. A wake-up reads
// only the effects after the last one taken: the
// effects waiting in a paced lane (a busy channel at one message a second)
// are not read and decoded again at every command. A full read, at start
// and at every poll, catches anything else.
func (s *sender) dispatch(ctx context.Context, full bool) bool {
	s.mu.Lock()
	readAt, after := s.doneSeq, s.taken
	s.mu.Unlock()
	var (
		effects []commands.Effect
		err     error
	)
	if !full {
		effects, err = s.store.PendingAfter(ctx, after, dispatchBatch)
	} else {
		effects, err = s.store.Pending(ctx, dispatchBatch)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error().Err(err).Msg("could not read the outbox; retrying")
		}
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, done := range s.inflight {
		if done != 0 && done <= readAt {
			delete(s.inflight, id) // gone from the outbox before this read began
		}
	}
	for _, e := range effects {
		s.taken = max(s.taken, e.ID)
		if _, seen := s.inflight[e.ID]; seen {
			continue
		}
		s.inflight[e.ID] = 0
		if s.observe != nil {
			s.observe(e)
		}
		key := s.laneKey(e)
		l, running := s.lanes[key]
		if !running {
			l = &lane{}
			s.lanes[key] = l
			s.wg.Add(1)
			go s.runLane(ctx, key)
		}
		l.queue = append(l.queue, e)
	}
	return !full && len(effects) == dispatchBatch
}

// laneKey names the destination whose messages must keep their order and
// pace: the release channel (cards and their threads), a DM channel, one
// user's ephemeral replies in a channel, or one user's DMs.
func (s *sender) laneKey(e commands.Effect) string {
	switch {
	case e.Kind == commands.EffectCard || e.Kind == commands.EffectThread || e.Kind == commands.EffectPost:
		return "channel:" + s.channel
	case e.Kind == commands.EffectReply && e.Via == commands.ViaDM && e.Channel != "":
		return "channel:" + e.Channel
	case e.Kind == commands.EffectReply && e.Channel != "" && e.Via != commands.ViaConsole:
		return "ephemeral:" + e.Channel + ":" + e.User
	}
	return "dm:" + e.User
}

func (s *sender) runLane(ctx context.Context, key string) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		l := s.lanes[key]
		if len(l.queue) == 0 {
			delete(s.lanes, key)
			s.mu.Unlock()
			return
		}
		e := l.queue[0]
		l.queue = l.queue[1:]
		unsure := s.unsure[e.ID]
		delete(s.unsure, e.ID)
		s.mu.Unlock()
		if unsure && s.posted(ctx, key, e) {
			s.markDelivered(ctx, e)
			continue
		}
		s.mu.Lock()
		// A card always shows the release's latest state, so a card with a
		// newer one queued behind it need not be sent.
		superseded := e.Kind == commands.EffectCard && e.Release != nil &&
			slices.ContainsFunc(l.queue, func(x commands.Effect) bool {
				return x.Kind == commands.EffectCard && x.Release != nil && x.Release.ID == e.Release.ID
			})
		backlogMax := s.backlogMax
		s.mu.Unlock()

		// An ephemeral reply cannot be read back after a fault: those of the
		// backlog the term began with go one at a time, so that a fault in
		// the catch-up leaves at most one of them to be shown twice.
		oneAtATime := !superseded && e.ID <= backlogMax && isEphemeral(e)
		// The lane's pace and a rate limit are waited out first, not while
		// holding the turn.
		turn := oneAtATime && s.waitCall(ctx, key, "chat.postEphemeral", true) && s.takeTurn(ctx)
		if (oneAtATime && !turn) || (!superseded && !s.deliver(ctx, key, e)) {
			if turn {
				<-s.ephemeralTurn
			}
			// Stopped: what is left stays in the outbox for the next start.
			s.mu.Lock()
			delete(s.inflight, e.ID)
			for _, x := range l.queue {
				delete(s.inflight, x.ID)
			}
			delete(s.lanes, key)
			s.mu.Unlock()
			return
		}
		s.markDelivered(ctx, e)
		if turn {
			<-s.ephemeralTurn
		}
	}
}

// isEphemeral reports whether e is delivered as an ephemeral message (see
// reply), which Slack keeps no history of.
func isEphemeral(e commands.Effect) bool {
	return e.Kind == commands.EffectReply && e.Channel != "" && e.Via != commands.ViaConsole && e.Via != commands.ViaDM
}

// takeTurn waits until no other ephemeral reply of the backlog is being
// sent, and reports false if ctx ends first.
func (s *sender) takeTurn(ctx context.Context) bool {
	select {
	case s.ephemeralTurn <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// markDelivered removes e from the outbox. It is done even while stopping,
// since the message was sent: leaving it would send it again after a restart.
// Until it is done the lane sends nothing more (it retries as long as the
// sender runs), so that a lane never has more than one message sent and not
// recorded: the one a next term looks for in Slack (scan).
func (s *sender) markDelivered(ctx context.Context, e commands.Effect) {
	wait := s.retryPolicy()
	for attempt := 1; ; attempt++ {
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := briefly(mctx, func() error { return s.delivered(mctx, e.ID) })
		cancel()
		if err == nil {
			s.mu.Lock()
			s.doneSeq++
			s.inflight[e.ID] = s.doneSeq
			s.mu.Unlock()
			if attempt > 1 {
				s.log.Info().Uint64("effect", e.ID).Msg("marked the delivered message in the outbox; its lane goes on")
			}
			return
		}
		if ctx.Err() != nil || !commands.Sleep(ctx, wait.NextBackOff()) {
			// Kept in flight, so this process does not send it again; the
			// next term looks for it in Slack before sending it.
			s.log.Error().Err(err).Uint64("effect", e.ID).Msg("could not mark a delivered message in the outbox; the next start looks for it in Slack before sending it again")
			return
		}
		if attempt == 1 {
			s.log.Error().Err(err).Uint64("effect", e.ID).Msg("could not mark a delivered message in the outbox; retrying, and its lane waits")
		}
	}
}

// delivered removes an effect from the outbox together with the others
// delivered meanwhile (group commit): every lane marks each message it
// sends, and one transaction (one fsync) per message would compete with
// the commands for the write lock.
func (s *sender) delivered(ctx context.Context, id uint64) error {
	_, err := s.done.Add(ctx, id)
	return err
}

// commitDelivered removes one batch of delivered effects from the outbox.
// The callers' contexts do not bound it: the messages were sent.
func (s *sender) commitDelivered(ids []uint64, _ []context.Context) ([]struct{}, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return make([]struct{}, len(ids)), s.store.Delivered(ctx, ids...)
}

// errClass says what to do after a failed attempt.
type errClass int

const (
	errTransient   errClass = iota // retry with backoff
	errRateLimited                 // retry once Retry-After has passed
	errAuth                        // the token was refused: retry slowly, loudly
	errPermanent                   // give up: log and drop
)

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

var (
	transientCodes = []string{"internal_error", "fatal_error", "service_unavailable", "request_timeout",
		"ratelimited", "rate_limited", "timeout", "team_added_to_org"}
	authCodes = []string{"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
		"org_login_required", "ekm_access_denied"}
)

func classify(err error) errClass {
	var rl *slack.RateLimitedError
	var pe permanentError
	var se slack.SlackErrorResponse
	switch {
	case errors.As(err, &rl):
		return errRateLimited
	case errors.As(err, &pe):
		return errPermanent
	case errors.As(err, &se):
		switch {
		case slices.Contains(transientCodes, se.Err):
			return errTransient
		case slices.Contains(authCodes, se.Err):
			return errAuth
		}
		return errPermanent
	}
	// Network errors, HTTP 5xx (slack.StatusCodeError) and store errors are
	// transient. So is any other HTTP status: a proxy or api_url mistake must
	// not throw messages away.
	return errTransient
}

// slackCode returns the Slack error code of err ("" if it has none).
func slackCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

// deliver sends e, retrying until it is delivered or refused for good
// (true), or ctx ends (false).
func (s *sender) deliver(ctx context.Context, key string, e commands.Effect) bool {
	log := s.log.With().Uint64("effect", e.ID).Str("kind", string(e.Kind)).Str("event", e.Event).
		Str("user", e.User).Str("channel", e.Channel).Logger()
	attempt := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		err := s.attempt(ctx, key, e)
		if err == nil {
			return struct{}{}, nil
		}
		if ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		switch classify(err) {
		case errRateLimited:
			// call has blocked the method until Retry-After has passed:
			// the next attempt waits there, not here.
			log.Warn().Err(err).Msg("Slack rate limit: waiting as asked")
			return struct{}{}, &backoff.RetryAfterError{}
		case errPermanent:
			log.Error().Err(err).Msg("Slack refused a message for good; it is dropped from the outbox")
			return struct{}{}, nil
		case errAuth:
			log.Error().Err(err).Msg("Slack refused the bot token; the message stays queued until it is fixed")
		default:
			ev := log.Warn()
			if attempt >= 5 {
				ev = log.Error()
			}
			ev.Err(err).Int("attempt", attempt).Msg("could not deliver a message to Slack; retrying")
		}
		return struct{}{}, err
	}, backoff.WithBackOff(s.retryPolicy()), backoff.WithMaxTries(0), backoff.WithMaxElapsedTime(0))
	return err == nil
}

// retryPolicy is the wait before each retry of a delivery: from RetryBase
// doubling up to RetryMax, each shortened by up to a fifth at random so
// that lanes do not retry in step.
func (s *sender) retryPolicy() backoff.BackOff {
	return &backoff.ExponentialBackOff{InitialInterval: s.retryBase * 9 / 10, RandomizationFactor: 1.0 / 9,
		Multiplier: 2, MaxInterval: max(s.retryBase, s.retryMax) * 9 / 10}
}

// briefly retries fn twice, after 100 ms and 200 ms, for a store write
// that a busy moment may fail; ctx bounds the whole.
func briefly(ctx context.Context, fn func() error) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, fn() },
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 200 * time.Millisecond}),
		backoff.WithMaxTries(3), backoff.WithMaxElapsedTime(0))
	return err
}

// call runs one Web API call of method for lane key: it waits until the
// method is not rate limited and, if paced, until the answer to the lane's
// last message is at least pace ago. A 429 blocks the method for its
// Retry-After, in every lane.
func (s *sender) call(ctx context.Context, key, method string, paced bool, fn func(context.Context) error) error {
	return s.callWithin(ctx, key, method, paced, 30*time.Second, fn)
}

// callWithin is call with the time the call may take.
func (s *sender) callWithin(ctx context.Context, key, method string, paced bool, timeout time.Duration, fn func(context.Context) error) error {
	if !s.waitCall(ctx, key, method, paced) {
		return ctx.Err()
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err := fn(cctx)
	cancel()
	s.mu.Lock()
	if paced {
		// Counted from the answer, so Slack sees the messages at least a
		// pace apart even when one request was slow to arrive.
		s.last[key] = time.Now()
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		s.blocked[method] = later(s.blocked[method], time.Now().Add(max(rl.RetryAfter, time.Second)))
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("slack %s: %w", method, err)
	}
	return nil
}

// waitCall waits until method may be called for lane key (see call), and
// reports false if ctx ends first.
func (s *sender) waitCall(ctx context.Context, key, method string, paced bool) bool {
	for {
		s.mu.Lock()
		at := s.blocked[method]
		if paced {
			at = later(at, s.last[key].Add(s.pace))
		}
		s.mu.Unlock()
		wait := time.Until(at)
		if wait <= 0 {
			return true
		}
		if !commands.Sleep(ctx, wait) {
			return false
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *sender) attempt(ctx context.Context, key string, e commands.Effect) error {
	switch e.Kind {
	case commands.EffectReply:
		return s.reply(ctx, key, e)
	case commands.EffectDM:
		return s.directMessage(ctx, key, e, e.User, effectText(e), e.Buttons)
	case commands.EffectCard:
		_, err := s.card(ctx, key, e, e.Release)
		return err
	case commands.EffectThread:
		return s.thread(ctx, key, e)
	case commands.EffectPost:
		_, err := s.post(ctx, key, e, s.channel, "", effectText(e), nil)
		return err
	case commands.EffectFile:
		return s.file(ctx, key, e)
	}
	return permanentError{fmt.Errorf("unknown effect kind %q", e.Kind)}
}

// reply answers only the person who asked: in the DM when they wrote there,
// else ephemeral where they asked, else (a later report) by DM.
func (s *sender) reply(ctx context.Context, key string, e commands.Effect) error {
	switch {
	case e.Channel == "" || e.Via == commands.ViaConsole:
		return s.directMessage(ctx, key, e, e.User, effectText(e), e.Buttons)
	case e.Via == commands.ViaDM:
		_, err := s.post(ctx, key, e, e.Channel, "", effectText(e), e.Buttons)
		switch slackCode(err) {
		case "channel_not_found", "not_in_channel", "is_archived":
			// A slash command typed in a DM between people: the bot is not
			// in that DM, so it answers in its own. A failure in its own DM
			// stays a failure.
			if own, oerr := s.dmChannel(ctx, key, e.User); oerr == nil && own != e.Channel {
				s.log.Info().Err(err).Str("user", e.User).Str("channel", e.Channel).
					Msg("could not answer in the DM the command came from; sending it in the bot's DM")
				_, err = s.post(ctx, key, e, own, "", effectText(e), e.Buttons)
			}
		}
		return err
	}
	err := s.call(ctx, key, "chat.postEphemeral", true, func(ctx context.Context) error {
		opts := msgOptions(effectText(e), e.Buttons)
		if e.Thread != "" {
			opts = append(opts, slack.MsgOptionTS(e.Thread)) // shown in the thread the asker wrote in
		}
		_, err := s.api.PostEphemeralContext(ctx, e.Channel, e.User, opts...)
		return err
	})
	switch slackCode(err) {
	case "user_not_in_channel", "channel_not_found", "not_in_channel", "is_archived":
		s.log.Info().Err(err).Str("user", e.User).Str("channel", e.Channel).
			Msg("could not show a reply in the channel; sending it by DM")
		return s.directMessage(ctx, key, e, e.User, effectText(e), e.Buttons)
	}
	return err
}

// directMessage opens (or reuses) the bot's DM with user and posts there.
func (s *sender) directMessage(ctx context.Context, key string, from commands.Effect, user, text string, buttons []commands.Button) error {
	ch, err := s.dmChannel(ctx, key, user)
	if err != nil {
		return err
	}
	_, err = s.post(ctx, key, from, ch, "", text, buttons)
	return err
}

// dmChannel returns the bot's DM channel with user, opening it once.
func (s *sender) dmChannel(ctx context.Context, key, user string) (string, error) {
	if user == "" {
		return "", permanentError{errors.New("a direct message without a recipient")}
	}
	s.mu.Lock()
	ch := s.dms[user]
	s.mu.Unlock()
	if ch == "" {
		err := s.call(ctx, key, "conversations.open", false, func(ctx context.Context) error {
			c, _, _, err := s.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
			if err == nil && (c == nil || c.ID == "") {
				err = errors.New("conversations.open returned no channel")
			}
			if err == nil {
				ch = c.ID
			}
			return err
		})
		if err != nil {
			return "", err
		}
		s.mu.Lock()
		s.dms[user] = ch
		s.mu.Unlock()
	}
	return ch, nil
}

// post posts a message (in a thread if thread is set) for outbox effect
// from and returns its ts.
func (s *sender) post(ctx context.Context, key string, from commands.Effect, channel, thread, text string, buttons []commands.Button) (string, error) {
	opts := append(msgOptions(text, buttons), outboxMetadata(from, nil))
	if thread != "" {
		opts = append(opts, slack.MsgOptionTS(thread))
	}
	var ts string
	err := s.call(ctx, key, "chat.postMessage", true, func(ctx context.Context) error {
		var err error
		_, ts, err = s.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return ts, err
}

// noParse asks Slack not to process a message's text: no names found and
// linked (link_names is never sent), so a literal @here, @channel or
// @everyone that a user wrote cannot notify anyone. It is Slack's default,
// sent anyway so that no default of Slack's or slack-go's can change it
// (issue 12, item 14; docs/slack.md).
var noParse = slack.MsgOptionParse(false)

func msgOptions(text string, buttons []commands.Button) []slack.MsgOption {
	// The core's texts are mrkdwn with user text already escaped.
	opts := []slack.MsgOption{slack.MsgOptionText(text, false), noParse}
	if len(buttons) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(textBlocks(text, buttons)...))
	}
	return opts
}

// latest returns the release as the Store has it now (a card shows the
// latest state), or the snapshot if the Store does not know it.
func (s *sender) latest(ctx context.Context, snap *commands.Release) (commands.Release, error) {
	if snap == nil {
		return commands.Release{}, permanentError{errors.New("a card or thread effect without a release")}
	}
	var rel commands.Release
	err := s.store.View(ctx, func(tx commands.Tx) error {
		var err error
		rel, err = tx.Release(snap.ID)
		return err
	})
	if commands.ErrorCode(err) == commands.ENOTFOUND {
		return *snap, nil
	}
	return rel, err
}

// card posts the release's card for outbox effect from, or updates it in place
// if it was posted before, and returns its ts. A card that was deleted is
// posted again.
func (s *sender) card(ctx context.Context, key string, from commands.Effect, snap *commands.Release) (string, error) {
	rel, err := s.latest(ctx, snap)
	if err != nil {
		return "", err
	}
	text, blocks := cardMessage(rel, time.Now())
	if rel.Card != "" {
		err := s.call(ctx, key, "chat.update", true, func(ctx context.Context) error {
			_, _, _, err := s.api.UpdateMessageContext(ctx, s.channel, rel.Card,
				slack.MsgOptionText(text, false), noParse, slack.MsgOptionBlocks(blocks...))
			return err
		})
		switch slackCode(err) {
		case "message_not_found", "cant_update_message", "edit_window_closed":
			s.log.Warn().Err(err).Str("ticket", rel.Ticket).Msg("the release's card is gone or cannot be edited; posting a new one")
		default:
			return rel.Card, err
		}
	}
	var ts string
	err = s.call(ctx, key, "chat.postMessage", true, func(ctx context.Context) error {
		var err error
		_, ts, err = s.api.PostMessageContext(ctx, s.channel, slack.MsgOptionText(text, false), noParse,
			slack.MsgOptionBlocks(blocks...), outboxMetadata(from, &rel))
		return err
	})
	if err != nil {
		return "", err
	}
	if err := s.saveCard(ctx, rel.ID, ts); err != nil {
		// The card is posted: posting it again would make a second one.
		s.log.Error().Err(err).Str("ticket", rel.Ticket).Str("ts", ts).
			Msg("could not remember the release's card; a later change may post a second card")
	}
	return ts, nil
}

// saveCard has the Service keep the ts of the release's card, retrying
// briefly.
func (s *sender) saveCard(ctx context.Context, id uint64, ts string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return briefly(ctx, func() error {
		err := s.cards.SetCard(ctx, id, ts)
		if commands.ErrorCode(err) == commands.ENOTFOUND {
			return backoff.Permanent(err)
		}
		return err
	})
}

// thread posts in the thread of the release's card, posting the card first
// if it is not there yet.
func (s *sender) thread(ctx context.Context, key string, e commands.Effect) error {
	rel, err := s.latest(ctx, e.Release)
	if err != nil {
		return err
	}
	ts := rel.Card
	if ts == "" {
		if ts, err = s.card(ctx, key, e, e.Release); err != nil {
			return err
		}
	}
	_, err = s.post(ctx, key, e, s.channel, ts, effectText(e), e.Buttons)
	return err
}
