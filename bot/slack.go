package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/failpoint"
)

// DefaultAPIURL is Slack's Web API.
const DefaultAPIURL = "https://slack.com/api/"

// DefaultConnections is how many Socket Mode connections a bot keeps open,
// and MaxConnections the most it may (Slack allows ten per app).
const (
	DefaultConnections = 2
	MaxConnections     = 4
)

// Slack is the Slack bot over Socket Mode. It turns mentions in the release
// channel, direct messages and clicks on its buttons into commands for the
// Service, and delivers what the Service leaves in the outbox.
//
// Every event is recorded in the inbox (Service.Receive) before it is
// acknowledged and handled after, on a tracked goroutine, so an event Slack
// delivers twice (retries, reconnects, also across a restart) has one
// effect, and acks never wait for the tracker or a hook. Only one Slack may
// carry out commands per Slack app: Slack gives each event to one of the
// app's connections, so the other instances of a deployment (PostgreSQL
// standbys) run as Standby bots, which record and acknowledge events and
// leave them to the leader.
//
// The Service is built with what the bot gives it: Notify, which wakes the
// outbox sender, and Groups, a UserGroups cache over usergroups.users.list.
type Slack struct {
	AppToken string // xapp-…, for Socket Mode (connections:write)
	BotToken string // xoxb-…, for the Web API
	APIURL   string // the Web API's base URL; "" means DefaultAPIURL
	Channel  string // the release channel's ID (C…)
	Service  Service
	Store    Outbox
	Log      zerolog.Logger

	// The settings below may be left zero for their defaults.

	// HTTPClient makes the Web API calls; the default times out after 30 s.
	HTTPClient *http.Client
	// Pace is the least time between two messages to one channel (1 s).
	Pace time.Duration
	// CommandTimeout bounds the handling of one command (2 min).
	CommandTimeout time.Duration
	// ShutdownTimeout bounds how long Run waits, once its context ends, for
	// commands in flight and for the outbox to drain (30 s).
	ShutdownTimeout time.Duration
	// PingInterval is how long the connection may go without a ping from
	// Slack before it is taken for dead and reopened (30 s).
	PingInterval time.Duration
	// RetryBase and RetryMax shape the backoff of failed deliveries (1 s, 1 min).
	RetryBase, RetryMax time.Duration
	// GroupsTTL and GroupsMaxStale shape the user-group cache (5 min, 15 min).
	GroupsTTL, GroupsMaxStale time.Duration
	// OnAck, if set, is called after each envelope's ack was sent (ok) or
	// could not be, with the time since the envelope was read.
	OnAck func(took time.Duration, ok bool)
	// Connections is how many Socket Mode connections Run keeps open
	// (DefaultConnections; 1 to MaxConnections). Slack gives each event
	// to one of them; while one is refreshed, the others serve, so a click
	// (which Slack does not redeliver) is not lost in the gap.
	Connections int
	// Standby, if set, makes Run serve as a standby of a deployment whose
	// leader is another process: it records each command it receives with
	// Standby and acknowledges it, and does nothing else — no Service, no
	// Store, no outbox, no Recover. The leader carries the recorded events
	// out. A mention outside the release channel is left unacknowledged:
	// Slack gives it again, maybe to the leader, who answers it.
	Standby Recorder
	// Shared says that other instances of the deployment hold connections
	// to the same Slack app (PostgreSQL standbys): hello's count of the
	// app's connections then says nothing of a second deployment.
	Shared bool
	// OtherConnections, if set, is asked when Slack's hello counts more
	// connections to the app than this bot has (extra more, at most
	// MaxConnections: what one other bot can hold). It says whose they are
	// when the caller knows — the sockets of a deposed PostgreSQL leader
	// that froze, which close once it notices — and "" when it does not.
	// A known cause is logged at info level; an unknown one, or more than
	// one other bot can hold, at error level, as another process using the
	// app token.
	OtherConnections func(extra int) string
	// Modal, if set, is the form /dobro alone opens (slack_modal.go);
	// without it /dobro alone answers with help.
	Modal *Modal
	// Export writes the audit exports admins ask for with the audit
	// command, which the bot uploads into their DM. Without it, the bot
	// answers that it cannot.
	Export Exporter
	// Clock, if set, is the clock of the App Home's publishing window (at
	// most one views.publish per person every 2 s); time.Now otherwise.
	// Tests move it.
	Clock Clock

	mu        sync.Mutex
	sender    *sender
	groups    *UserGroups
	connected atomic.Bool
}

// Connected reports whether a Socket Mode connection is up: Slack said
// hello on it and it has not dropped since.
func (s *Slack) Connected() bool { return s.connected.Load() }

// Groups returns the cache of user groups' members the Service is to be
// built with (commands.Config.Groups), over this bot's Web API client: the
// bot forgets a group's members when Slack says they changed. Set the Web
// API settings (BotToken, APIURL, HTTPClient, GroupsTTL, GroupsMaxStale)
// before calling it.
func (s *Slack) Groups() *UserGroups {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups == nil {
		api, _ := s.api()
		s.groups = NewUserGroups(api, positiveOr(s.GroupsTTL, 5*time.Minute), positiveOr(s.GroupsMaxStale, 15*time.Minute))
		s.groups.Log = s.Log
	}
	return s.groups
}

// api returns a Web API client with the bot's settings, and its base URL.
func (s *Slack) api() (*slack.Client, string) {
	apiURL := s.apiURL()
	hc := s.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return slack.New(s.BotToken, slack.OptionAPIURL(apiURL), slack.OptionAppLevelToken(s.AppToken), slack.OptionHTTPClient(hc)), apiURL
}

// uploadAPI returns a Web API client for uploads: the bot's, without the
// overall timeout of its default HTTP client (a large file outlasts it).
func (s *Slack) uploadAPI() *slack.Client {
	hc := s.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return slack.New(s.BotToken, slack.OptionAPIURL(s.apiURL()), slack.OptionHTTPClient(uploadClient(hc)))
}

// apiURL returns the Web API's base URL, ending in the slash slack-go needs.
func (s *Slack) apiURL() string {
	apiURL := s.APIURL
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/" // slack-go appends method names to it
	}
	return apiURL
}

// Notify wakes the outbox sender: the Service's hook (commands.Config.Notify)
// after a commit that left effects to deliver.
func (s *Slack) Notify() {
	s.mu.Lock()
	snd := s.sender
	s.mu.Unlock()
	if snd != nil {
		snd.notify()
	}
}

func (s *Slack) check() error {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"slack.app_token", s.AppToken}, {"slack.bot_token", s.BotToken}, {"slack.channel", s.Channel},
	} {
		if strings.TrimSpace(f.value) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("slack: %s must be set", strings.Join(missing, ", "))
	}
	if !channelID.MatchString(s.Channel) {
		return fmt.Errorf("slack: slack.channel must be the release channel's ID (C…, in the channel's details), not %q", s.Channel)
	}
	if !strings.HasPrefix(s.AppToken, "xapp-") {
		return errors.New("slack: slack.app_token must be an app-level token (xapp-…) with connections:write")
	}
	if s.Standby == nil && (s.Service == nil || s.Store == nil) {
		return errors.New("slack: a Service and a Store are required")
	}
	if s.Connections < 0 || s.Connections > MaxConnections {
		return fmt.Errorf("slack: slack.connections must be 1 to %d (0 for the default, %d), not %d", MaxConnections, DefaultConnections, s.Connections)
	}
	return nil
}

// channelID matches a public or private channel's ID.
var channelID = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)

// positiveOr returns d when it is positive, else def (an unset option).
func positiveOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// session is the state of one Run.
type session struct {
	*Slack
	me    botIdentity
	socks []*socket

	smCtx   context.Context // ends when Run stops reading
	work    context.Context // ends when commands in flight are abandoned
	tracked sync.WaitGroup  // envelopes and commands in flight
	recover sync.Once       // Service.Recover, after the first hello
	homes   *homes          // the App Home's publisher; nil on a standby
}

// socket is one Socket Mode connection of a session, kept open (and
// reopened) by its own slack-go client.
type socket struct {
	sm  *socketmode.Client
	log zerolog.Logger // the session's, with conn: its 1-based number
	up  atomic.Bool    // Slack said hello and it has not dropped since

	mu     sync.Mutex
	recent []queuedAck // acks queued on this socket within ackWindow, in the order queued
}

// ackWindow is how long Slack waits for an ack: after it, Slack retries an
// event, and a click has failed for the user. An ack sent later is no use.
const ackWindow = 3 * time.Second

// queuedAck is an ack handed to a socket's client, which writes it later.
type queuedAck struct {
	envelope string
	at       time.Time
}

// remember notes an ack about to be queued on sock, first queued at at,
// and forgets the oldest ones that are past ackWindow.
func (sock *socket) remember(envelope string, at time.Time) {
	now := time.Now()
	sock.mu.Lock()
	defer sock.mu.Unlock()
	old := 0
	for old < len(sock.recent) && now.Sub(sock.recent[old].at) > ackWindow {
		old++
	}
	sock.recent = append(sock.recent[old:], queuedAck{envelope, at})
}

// takeRecent returns the acks queued on sock within ackWindow of now, and
// forgets them all.
func (sock *socket) takeRecent(now time.Time) []queuedAck {
	sock.mu.Lock()
	defer sock.mu.Unlock()
	var acks []queuedAck
	for _, a := range sock.recent {
		if now.Sub(a.at) <= ackWindow {
			acks = append(acks, a)
		}
	}
	sock.recent = nil
	return acks
}

// sockEvent is an event of one of the session's sockets.
type sockEvent struct {
	sock *socket
	evt  socketmode.Event
}

// setUp records whether sock is up, and whether any socket is.
func (ses *session) setUp(sock *socket, up bool) {
	sock.up.Store(up)
	anyUp := false
	for _, k := range ses.socks {
		anyUp = anyUp || k.up.Load()
	}
	ses.connected.Store(anyUp)
}

// Run connects to Slack and serves until ctx ends or the connection fails
// for good (a refused token). Once ctx ends it stops reading, lets commands
// in flight finish and the outbox drain (bounded by ShutdownTimeout), and
// returns nil.
func (s *Slack) Run(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	api, apiURL := s.api()
	auth, err := api.AuthTestContext(ctx)
	if err != nil {
		if code := slackCode(err); code != "" {
			return fmt.Errorf("slack: auth.test refused the bot token (%s): check slack.bot_token", code)
		}
		return fmt.Errorf("slack: auth.test at %s: %w", apiURL, err)
	}
	ses := &session{Slack: s, me: newIdentity(auth.UserID, auth.BotID, auth.TeamID)}
	log := s.Log.With().Str("team", auth.TeamID).Str("bot_user", auth.UserID).Logger()
	log.Info().Str("channel", s.Channel).Msg("connected to the Slack Web API")

	s.mu.Lock()
	if s.groups != nil {
		s.groups.Log = log // before any command asks it
	}
	s.mu.Unlock()
	var snd *sender
	sendCtx, stopSending := context.WithCancel(context.WithoutCancel(ctx))
	sendDone := make(chan struct{})
	if s.Standby == nil {
		snd = newSender(api, s.Store, s.Service, s.Channel, log)
		snd.pace = positiveOr(s.Pace, time.Second)
		snd.retryBase = positiveOr(s.RetryBase, time.Second)
		snd.retryMax = positiveOr(s.RetryMax, time.Minute)
		snd.export = s.Export
		snd.files = s.uploadAPI()
		ses.homes = newHomes(sendCtx, s.Service, s.Clock, log, func(ctx context.Context, user string, v slack.HomeTabViewRequest) error {
			_, err := api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: v})
			return err
		})
		snd.observe = ses.homes.observe
		s.mu.Lock()
		s.sender = snd
		s.mu.Unlock()
		go func() {
			defer close(sendDone)
			snd.run(sendCtx)
		}()
	} else {
		close(sendDone) // a standby delivers nothing
	}

	smCtx, stopReading := context.WithCancel(ctx)
	ses.smCtx = smCtx
	work, abandon := context.WithCancel(context.WithoutCancel(ctx))
	ses.work = work
	n := s.Connections
	if n == 0 {
		n = DefaultConnections
	}
	smDone := make(chan error, n)
	events := make(chan sockEvent)
	var readers sync.WaitGroup
	for i := range n {
		sock := &socket{sm: socketmode.New(api, socketmode.OptionPingInterval(positiveOr(s.PingInterval, 30*time.Second))),
			log: log.With().Int("conn", i+1).Logger()}
		ses.socks = append(ses.socks, sock)
		go func() { smDone <- sock.sm.RunContext(smCtx) }()
		readers.Go(func() {
			for {
				select {
				case <-smCtx.Done():
					return
				case evt := <-sock.sm.Events:
					select {
					case events <- sockEvent{sock, evt}:
					case <-smCtx.Done():
						return
					}
				}
			}
		})
	}

	var runErr error
	stopped := 0 // sockets whose client returned
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-smDone:
			stopped++
			if ctx.Err() == nil {
				// slack-go gives up only on a refused token (or a 404).
				runErr = fmt.Errorf("slack: socket mode stopped: %w", err)
				if code := slackCode(err); code != "" {
					runErr = fmt.Errorf("slack: apps.connections.open refused the app token (%s): check slack.app_token", code)
				}
			}
			break loop
		case e := <-events:
			ses.dispatch(e.sock, e.evt, e.sock.log)
		}
	}

	// A standby's envelopes in flight take one insert each: let them be
	// acked before the sockets close (a click is not given again).
	if s.Standby != nil {
		ses.settle(ackWindow)
	}
	// Stop reading: Slack redelivers whatever was not acked.
	s.connected.Store(false)
	stopReading()
	readers.Wait()
	closed := time.After(5 * time.Second)
wait:
	for ; stopped < n; stopped++ {
		select {
		case <-smDone:
		case <-closed:
			log.Warn().Msg("a Socket Mode connection did not close within 5 s")
			break wait
		}
	}
	deadline := time.Now().Add(positiveOr(s.ShutdownTimeout, 30*time.Second))
	inflight := make(chan struct{})
	go func() {
		ses.tracked.Wait()
		close(inflight)
	}()
	select {
	case <-inflight:
	case <-time.After(time.Until(deadline)):
		log.Warn().Msg("commands still running at the shutdown deadline were cancelled")
		abandon()
		select {
		case <-inflight:
		case <-time.After(5 * time.Second):
			log.Error().Msg("commands did not stop within 5 s of being cancelled; returning without them")
		}
	}
	abandon()
	if snd != nil {
		snd.notify()
		ses.drain(deadline, log)
	}
	stopSending()
	<-sendDone
	if ses.homes != nil {
		ses.homes.stop()
	}
	log.Info().Msg("disconnected from Slack")
	return runErr
}

// settle waits up to d for the envelopes and commands in flight.
func (ses *session) settle(d time.Duration) {
	done := make(chan struct{})
	go func() {
		ses.tracked.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// drain waits until the outbox is empty or the deadline passes.
func (ses *session) drain(deadline time.Time, log zerolog.Logger) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for {
		pending, err := ses.Store.Pending(ctx, 1)
		if err == nil && len(pending) == 0 {
			return
		}
		if !commands.Sleep(ctx, 50*time.Millisecond) {
			log.Warn().Msg("messages still in the outbox at shutdown are sent at the next start")
			return
		}
	}
}

// track runs fn on a goroutine that Run waits for before it returns.
func (ses *session) track(fn func()) {
	ses.tracked.Add(1)
	go func() {
		defer ses.tracked.Done()
		fn()
	}()
}

// dispatch handles one event of the Socket Mode client. It never blocks:
// the client stops reading the socket (and answering pings) while it does.
func (ses *session) dispatch(sock *socket, evt socketmode.Event, log zerolog.Logger) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		ses.setUp(sock, false)
		log.Debug().Msg("connecting to Slack (Socket Mode)")
		// The client closed its last connection (if it had one) before
		// this event: an ack it was writing as the connection closed is
		// lost, and Slack does not send a click again. Send the recent
		// ones again. An ack names its envelope, not its connection:
		// slack-go itself writes an ack queued during a reconnect on the
		// new connection.
		if acks := sock.takeRecent(time.Now()); len(acks) > 0 {
			ses.track(func() { ses.ackAgain(sock, acks, log) })
		}
	case socketmode.EventTypeConnectionError:
		ses.setUp(sock, false)
		if e, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			log.Warn().Err(e.ErrorObj).Int("attempt", e.Attempt).Dur("retry_in", e.Backoff).Msg("could not connect to Slack; retrying")
		}
	case socketmode.EventTypeInvalidAuth:
		ses.setUp(sock, false)
		log.Error().Msg("Slack refused the app token")
	case socketmode.EventTypeConnected:
		log.Info().Msg("Socket Mode connected")
	case socketmode.EventTypeHello:
		ses.setUp(sock, true)
		if evt.Request != nil && evt.Request.NumConnections > len(ses.socks) {
			ses.otherConnections(evt.Request.NumConnections, log)
		}
		if ses.Standby != nil {
			return // the leader recovers
		}
		ses.recover.Do(func() {
			ses.track(func() {
				if err := ses.Service.Recover(ses.work); err != nil {
					log.Error().Err(err).Msg("could not recover after the start")
				}
			})
		})
	case socketmode.EventTypeEventsAPI, socketmode.EventTypeInteractive, socketmode.EventTypeSlashCommand:
		if evt.Request == nil {
			return
		}
		req := *evt.Request
		ses.track(func() { ses.envelope(sock, req, log) })
	case socketmode.EventTypeErrorBadMessage:
		// slack-go could not parse it (an event type it does not know):
		// the bot reads the payload itself.
		bad, ok := evt.Data.(*socketmode.ErrorBadMessage)
		if !ok {
			return
		}
		var req socketmode.Request
		if json.Unmarshal(bad.Message, &req) != nil || req.EnvelopeID == "" {
			log.Warn().Err(bad.Cause).Msg("unreadable Socket Mode message")
			return
		}
		ses.track(func() { ses.envelope(sock, req, log) })
	case socketmode.EventTypeErrorWriteFailed:
		if e, ok := evt.Data.(*socketmode.ErrorWriteFailed); ok {
			log.Warn().Err(e.Cause).Msg("could not send an ack; it is sent again once a connection is up")
		}
	case socketmode.EventTypeIncomingError:
		ses.setUp(sock, false)
		if e, ok := evt.Data.(*slack.IncomingEventError); ok {
			log.Warn().Err(e.ErrorObj).Msg("Socket Mode read error")
		}
	}
}

// otherConnections logs what it knows of the connections to the app that
// are not this bot's, of which Slack's hello counted n in all. Slack counts
// this bot's sockets that are up (the one that said hello among them).
func (ses *session) otherConnections(n int, log zerolog.Logger) {
	extra := n
	for _, k := range ses.socks {
		if k.up.Load() {
			extra--
		}
	}
	if ses.OtherConnections != nil && extra <= MaxConnections {
		if why := ses.OtherConnections(extra); why != "" {
			log.Info().Int("num_connections", n).Msg("other connections to this Slack app are open: " + why)
			return
		}
	}
	if ses.Shared {
		// The deployment's other instances hold connections too: how many
		// is theirs to say, so the count tells nothing of a second
		// deployment (docs/slack.md).
		log.Debug().Int("num_connections", n).Msg("other connections to this Slack app are open: the deployment's other instances")
		return
	}
	log.Error().Int("num_connections", n).
		Msg("another connection to this Slack app is open: Slack gives each event to one connection, so only one dobrobot may run per app; stop the other")
}

// envelope handles one envelope: decide, record, ack, then run the command.
func (ses *session) envelope(sock *socket, req socketmode.Request, log zerolog.Logger) {
	read := time.Now()
	log = log.With().Str("envelope", req.EnvelopeID).Logger()
	var in inbound
	switch req.Type {
	case socketmode.RequestTypeEventsAPI:
		in = parseEvent(req.Payload, ses.me, ses.Channel)
	case socketmode.RequestTypeInteractive:
		var answered bool
		if in, answered = ses.formInteraction(sock, req, log, read); answered {
			return
		} else if in.kind == inboundIgnore && in.reason == "" {
			in = parseAction(req.Payload, ses.me)
		}
	case socketmode.RequestTypeSlashCommands:
		in = parseSlash(req.Payload, ses.me, req.EnvelopeID, read, ses.Modal != nil)
	default:
		in = skip("envelope type " + req.Type)
	}
	if req.RetryAttempt > 0 {
		log = log.With().Int("retry_attempt", req.RetryAttempt).Str("retry_reason", req.RetryReason).Logger()
	}
	if in.msg.EventID != "" {
		log = log.With().Str("event", in.msg.EventID).Str("user", in.msg.User).Logger()
	}

	switch in.kind {
	case inboundIgnore:
		log.Debug().Str("why", in.reason).Msg("ignored an event")
		ses.ack(sock, req, log, read)
	case inboundModal:
		ses.openModal(sock, req, in, log, read)
	case inboundGroupChanged:
		ses.mu.Lock()
		g := ses.groups
		ses.mu.Unlock()
		if g != nil {
			g.Forget(in.group)
		}
		log.Info().Str("group", in.group).Msg("the members of a user group or of the release channel changed")
		ses.ack(sock, req, log, read)
	case inboundHomeOpened:
		if ses.Standby != nil {
			// Left to the leader: unacknowledged, Slack gives it again,
			// maybe to the leader.
			log.Debug().Msg("app_home_opened: left to the leader, not acked")
			return
		}
		ses.ack(sock, req, log, read)
		ses.homes.open(in.user)
	case inboundElsewhere:
		if ses.Standby != nil {
			log.Debug().Msg("a mention outside the release channel: left to the leader, not acked, so Slack gives it again")
			return
		}
		text := commands.Text{commands.Plain("I take commands in "), commands.ChannelRef(ses.Channel), commands.Plain(" only, or write to me directly.")}
		if err := ses.Service.Redirect(ses.work, in.msg, text); err != nil {
			log.Error().Err(err).Msg("could not record an event; not acked, so Slack redelivers it")
			return
		}
		ses.ack(sock, req, log, read)
	case inboundCommand:
		if ses.Standby != nil {
			fresh, err := ses.Standby.Record(ses.work, in.msg)
			if err != nil {
				log.Error().Err(err).Msg("could not record an event for the leader; not acked, so Slack redelivers it")
				return
			}
			ses.ack(sock, req, log, read)
			log.Debug().Bool("fresh", fresh).Msg("recorded an event for the leader")
			return
		}
		fresh, err := ses.Service.Receive(ses.work, in.msg)
		if err != nil {
			log.Error().Err(err).Msg("could not record an event; not acked, so Slack redelivers it")
			return
		}
		failpoint.Hit(failpoint.AfterInboxCommitBeforeAck)
		ses.ack(sock, req, log, read)
		if !fresh {
			log.Info().Msg("event delivered again; it has been recorded already")
			return
		}
		ctx, cancel := context.WithTimeout(ses.work, positiveOr(ses.CommandTimeout, 2*time.Minute))
		defer cancel()
		if err := ses.Service.Handle(ctx, in.msg); err != nil {
			log.Error().Err(err).Msg("command failed")
		}
		if v := commands.VerbOf(in.msg.Text); ses.homes != nil && (v == commands.VerbLock || v == commands.VerbUnlock) {
			// A freeze is shown on everyone's home, and its command
			// tells no one but its sender (no effect to observe).
			ses.homes.touchOpened()
		}
	}
}

// ack acknowledges an envelope on the socket it came by. An ack lost with
// its connection is sent again when the connection goes (ackAgain); an
// event whose ack never arrives is redelivered, and the inbox knows it.
func (ses *session) ack(sock *socket, req socketmode.Request, log zerolog.Logger, read time.Time) {
	ses.ackWith(sock, req, log, read, nil)
}

// ackWith is ack with a payload: a slash command's response, a form's
// response_action or options. An ack sent again after a reconnect
// (ackAgain) goes without it.
func (ses *session) ackWith(sock *socket, req socketmode.Request, log zerolog.Logger, read time.Time, payload any) {
	ctx, cancel := context.WithTimeout(ses.smCtx, 5*time.Second)
	defer cancel()
	// Remembered before it is queued, so that a reconnect that may have
	// lost it finds it.
	sock.remember(req.EnvelopeID, time.Now())
	err := sock.sm.AckCtx(ctx, req.EnvelopeID, payload)
	if err != nil {
		log.Warn().Err(err).Msg("could not ack an envelope; Slack will redeliver it")
	}
	if ses.OnAck != nil {
		ses.OnAck(time.Since(read), err == nil)
	}
}

// ackAgain sends again the acks whose connection closed while they were
// queued or being written: on another socket that is up, else on sock,
// whose client sends them once it has reconnected.
func (ses *session) ackAgain(sock *socket, acks []queuedAck, log zerolog.Logger) {
	to := sock
	for _, k := range ses.socks {
		if k != sock && k.up.Load() {
			to = k
			break
		}
	}
	ctx, cancel := context.WithTimeout(ses.smCtx, ackWindow)
	defer cancel()
	sent := 0
	for _, a := range acks {
		// Remembered as queued when it was first, so that it is sent at
		// most once more per connection that closes within ackWindow.
		to.remember(a.envelope, a.at)
		if to.sm.AckCtx(ctx, a.envelope, nil) != nil {
			break
		}
		sent++
	}
	log.Info().Int("acks", sent).Int("of", len(acks)).Msg("a connection closed: sent its recent acks again")
}
