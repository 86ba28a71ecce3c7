package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/bot"
	"github.com/dobrobot/dobrobot/cmd/internal/intake"
	"github.com/dobrobot/dobrobot/cmd/internal/monitor"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/postgres"
	"github.com/dobrobot/dobrobot/tracker"
)

// hookGrace is how long a stopping bot lets running hooks finish before it
// kills their process groups (their releases are then reported at the next
// start, not re-run).
const hookGrace = 60 * time.Second

// checkpointEvery is how often a running bot posts the audit chain's head
// to the release channel (besides once at each start, or each term of a
// PostgreSQL leader).
const checkpointEvery = 24 * time.Hour

// server is what `dobrobot run` keeps while it runs: the store, the
// optional http listener, and the Slack bot being served. A plain run
// serves once; a PostgreSQL leader serves once per term.
type server struct {
	*app
	c       *Config
	store   commands.Store
	leader  *postgres.Leader // nil on bbolt: this process always leads
	db      *postgres.DB     // the store, on PostgreSQL: standbys record through it, hook results are handed in through it
	metrics *monitor.Metrics // nil without http.listen
	http    *monitor.Server  // nil without http.listen
	intake  *intake.Server   // nil without intake.listen
	gate    *buildGate       // the intake's way to the Service of the current term
	bot     atomic.Pointer[bot.Slack]

	// On PostgreSQL, while this process stands by, a standby bot holds
	// its Socket Mode connections, records the events Slack gives them in
	// the inbox and acknowledges them; the leader carries them out.
	life        context.Context // the process's: a standby bot runs within it
	standbyMu   sync.Mutex
	standbyStop context.CancelFunc // nil while no standby bot runs
	standbyDone chan struct{}
}

// newServer checks that configuration c can serve — now, not at a
// takeover — and starts the http listener when http.listen is set. db is
// the PostgreSQL store when leader is set.
func (a *app) newServer(c *Config, store commands.Store, leader *postgres.Leader, db *postgres.DB) (*server, error) {
	if _, err := a.config(c, store); err != nil {
		return nil, err
	}
	s := &server{app: a, c: c, store: store, leader: leader, db: db, gate: &buildGate{}}
	if leader != nil {
		s.gate.leading = leader.Leading // a standby answers CI 503, Retry-After
	}
	in, err := startIntake(c, s.gate, a.log)
	if err != nil {
		return nil, err
	}
	s.intake = in
	if c.HTTP.Listen == "" {
		return s, nil
	}
	o := monitor.Options{Store: store, Connected: s.connected}
	if leader != nil {
		o.Leadership = func(ctx context.Context) (bool, string, int64, error) { return leader.Leadership(ctx, db) }
	}
	s.metrics = monitor.NewMetrics(store, s.connected, a.log)
	o.Metrics = s.metrics
	srv, err := monitor.Start(c.HTTP.Listen, o, a.log)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.http = srv
	return s, nil
}

// Close stops the http listener and the intake's.
func (s *server) Close() {
	if s.intake != nil {
		if err := s.intake.Close(); err != nil {
			s.log.Warn().Err(err).Msg("closing the intake listener")
		}
	}
	if s.http == nil {
		return
	}
	if err := s.http.Close(); err != nil {
		s.log.Warn().Err(err).Msg("closing the http listener")
	}
}

// leading reports whether this process leads: always on bbolt.
func (s *server) leading() bool { return s.leader == nil || s.leader.Leading() }

// connected reports whether this process leads and its Slack connection is up.
func (s *server) connected() bool {
	b := s.bot.Load()
	return b != nil && s.leading() && b.Connected()
}

// serve runs the Slack bot, with a Service of its own, until ctx ends: for
// the whole of a plain run, or for one term (epoch) of a PostgreSQL leader.
// Losing the term kills running hooks at once, and the new leader reports
// their releases as interrupted; this Service still hands in the result of
// each hook that ended (or was killed), which is taken while the release
// waits on that attempt (commands.Config.HandIn). A clean stop lets them
// finish for hookGrace.
func (s *server) serve(ctx context.Context, epoch int64) error {
	log := s.log
	if s.leader != nil {
		log = log.With().Int64("epoch", epoch).Logger()
		// The standby bot's connections go, the leader's come: the other
		// instances' standby bots hold theirs meanwhile. It stands by again
		// once the term is over.
		s.stopStandby()
		defer s.startStandby()
	}
	cfg, err := s.config(s.c, s.store)
	if err != nil {
		return err
	}
	cfg.Log = log
	hookCtx, killHooks := context.WithCancel(context.WithoutCancel(ctx))
	defer killHooks()
	cfg.HookContext = hookCtx
	b := &bot.Slack{
		AppToken: s.c.Slack.AppToken, BotToken: s.c.Slack.BotToken, APIURL: s.c.Slack.APIURL, Connections: s.c.Slack.Connections,
		Channel: s.c.Slack.Channel, Store: s.store, Log: log,
		Export: exporter(s.store), // an admin's audit command: what dobrobot audit export writes
	}
	b.Modal = modal(cfg)
	var transport http.RoundTripper = http.DefaultTransport
	if s.leader != nil {
		cfg.Instance = fmt.Sprintf("%s (leader, term %d)", s.leader.ID(), epoch)
		b.OtherConnections = func(int) string { return s.otherConnections(epoch) }
		cfg.HandIn = s.db.HandIn // a hook that ends after this term still hands its result in
		b.Store = postgres.FencedOutbox{Store: s.store, Leading: s.leader.Leading}
		transport = postgres.FenceConns(s.leader.Leading)
		b.Shared = true
	}
	if m := s.metrics; m != nil {
		// The DORA gauges: primed from the log once a term (the other
		// instance's entries are only there), then fed each commit's.
		if err := m.StartDORA(ctx, s.store); err != nil {
			log.Warn().Err(err).Msg("could not read the audit log for the DORA gauges; they are absent this term")
		}
		defer m.StopDORA()
		cfg.Store = commands.WatchAudit(cfg.Store, m.Audited)
		cfg.Observer = m
		cfg.Tracker = m.ObserveTracker(cfg.Tracker)
		b.OnAck = m.Ack
		transport = m.ObserveSlack(transport)
	}
	if s.leader != nil {
		transport = postgres.FenceRequests(transport, s.leader.Leading)
	}
	if s.leader != nil || s.metrics != nil {
		b.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: transport}
	}
	cfg.Groups, cfg.Notify = b.Groups(), b.Notify
	svc := commands.NewService(cfg)
	b.Service = svc
	s.bot.Store(b)
	// CI's deliveries reach this term's Service, and no other's.
	s.gate.set(svc)
	if s.leader != nil {
		log.Info().Msg("leading: connecting to Slack")
	}
	// Only the leader posts checkpoints: at the start of each term, then daily.
	stopCheckpoints := postCheckpoints(ctx, svc, log, checkpointEvery)
	stopPickup := s.pickUp(ctx, svc, log)
	// Due times fire while this instance serves: on PostgreSQL, only
	// inside the leader's term, which ctx is.
	stopSchedule := runSchedule(ctx, svc)
	runErr := b.Run(ctx)
	s.gate.set(nil) // the term is over: CI is answered 503 until the next
	stopSchedule()
	stopPickup()
	stopCheckpoints()
	lost := errors.Is(context.Cause(ctx), postgres.ErrLost)
	if lost {
		killHooks()
	}
	done := make(chan struct{})
	go func() { svc.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(hookGrace):
		log.Warn().Dur("grace", hookGrace).Msg("hooks still running at shutdown: killing them; a killed start hook leaves its release failed, locks held")
		killHooks()
		<-done
	}
	switch {
	case lost:
		log.Warn().Msg("no longer leading: disconnected from Slack; standing by")
		return nil
	case runErr != nil:
		return fmt.Errorf("slack: %w", runErr)
	}
	return nil
}

// otherConnections says whose the other connections to the Slack app are
// when a leader of term epoch can know it: its own after it was deposed, or
// its predecessor's after a takeover. A leader that froze or was cut off
// keeps its sockets open until it notices it was deposed, and Slack still
// counts them; one that stepped down or died has closed them. "" otherwise:
// then they are another process's.
func (s *server) otherConnections(epoch int64) string {
	if !s.leader.Leading() {
		return fmt.Sprintf("this instance was deposed (its term %d is over), so they are the new leader's; it closes its own now", epoch)
	}
	if prev := s.leader.Predecessor(); prev != "" {
		// The standbys hold connections too (bot.Slack.Shared); the
		// predecessor's are worth naming when it froze: they take a share
		// of the events until it notices.
		return fmt.Sprintf("the standbys' connections, and, if %s (which led term %d) stopped answering rather than stepping down, "+
			"its sockets too until it notices it was deposed; Slack gives the events it sends those again later", prev, epoch-1)
	}
	return ""
}

// postCheckpoints posts the audit chain's head now and then every every,
// until ctx ends or the returned function is called (which waits for it).
// A failed post is logged on log; the next one comes at the next tick.
func postCheckpoints(ctx context.Context, svc *commands.Service, log zerolog.Logger, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if _, err := svc.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				log.Warn().Err(err).Msg("could not post the audit checkpoint; trying again at the next one")
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// pickupEvery is how often a leader looks for events the standbys recorded
// in case it missed their notification.
const pickupEvery = 2 * time.Second

// pickUp carries out, while ctx lasts, the events that the standbys recorded
// in the inbox: whenever the store notifies that one was recorded, and every
// pickupEvery. It returns a function that stops it and waits for the
// commands it started, as the Slack bot waits for those it received: up to
// pickupShutdown, then they are cancelled. It does nothing on bbolt, where
// there are no standbys.
func (s *server) pickUp(ctx context.Context, svc *commands.Service, log zerolog.Logger) (stop func()) {
	if s.db == nil || s.leader == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	work, abandon := context.WithCancel(context.WithoutCancel(ctx))
	wake := make(chan struct{}, 1)
	var wg, scans sync.WaitGroup
	wg.Go(func() {
		s.db.ListenInbox(ctx, time.Second, func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	})
	wg.Go(func() {
		tick := time.NewTicker(pickupEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-tick.C:
			}
			// Each scan runs on its own: a slow command must not hold up
			// the events recorded after it (the Service handles each
			// event once, whichever scan finds it).
			scans.Go(func() {
				cctx, cancel := context.WithTimeout(work, commandTimeout)
				defer cancel()
				if err := svc.HandlePending(cctx); err != nil && ctx.Err() == nil {
					log.Warn().Err(err).Msg("could not read the events the standbys recorded; trying again shortly")
				}
			})
		}
	})
	return func() {
		cancel()
		wg.Wait()
		done := make(chan struct{})
		go func() { scans.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(pickupShutdown):
			log.Warn().Msg("commands picked up from the standbys still running at the shutdown deadline were cancelled")
			abandon()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				log.Error().Msg("commands picked up from the standbys did not stop within 5 s of being cancelled; going on without them")
			}
		}
		abandon()
	}
}

// commandTimeout bounds the handling of the events a leader picks up, as the
// Slack bot bounds those it receives itself; pickupShutdown bounds how long
// a stopping leader waits for them, as the bot's ShutdownTimeout does.
const (
	commandTimeout = 2 * time.Minute
	pickupShutdown = 30 * time.Second
)

// startStandby starts the standby bot, on PostgreSQL, unless it runs or the
// process is stopping.
func (s *server) startStandby() {
	if s.leader == nil || s.db == nil || s.life == nil || s.life.Err() != nil {
		return
	}
	s.standbyMu.Lock()
	defer s.standbyMu.Unlock()
	if s.standbyStop != nil {
		return
	}
	ctx, stop := context.WithCancel(s.life)
	done := make(chan struct{})
	s.standbyStop, s.standbyDone = stop, done
	go func() {
		defer close(done)
		s.standBy(ctx)
	}()
}

// stopStandby stops the standby bot, if it runs, and waits until it has
// acknowledged what it was recording and closed its connections.
func (s *server) stopStandby() {
	s.standbyMu.Lock()
	stop, done := s.standbyStop, s.standbyDone
	s.standbyStop, s.standbyDone = nil, nil
	s.standbyMu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// standbyRetry is how long a standby bot waits before it connects again
// after Slack refused it or could not be reached.
const standbyRetry = 5 * time.Second

// standBy runs a standby bot until ctx ends: it holds Socket Mode
// connections, records each command Slack gives them in the inbox for the
// leader and acknowledges it. Its Web API client can call nothing but
// auth.test and apps.connections.open, so it cannot post.
func (s *server) standBy(ctx context.Context) {
	log := s.log.With().Str("role", "standby").Logger()
	inbox := s.db.Inbox(nil)
	for ctx.Err() == nil {
		var transport http.RoundTripper = http.DefaultTransport
		if m := s.metrics; m != nil {
			transport = m.ObserveSlack(transport)
		}
		b := &bot.Slack{
			AppToken: s.c.Slack.AppToken, BotToken: s.c.Slack.BotToken, APIURL: s.c.Slack.APIURL, Connections: s.c.Slack.Connections,
			Channel: s.c.Slack.Channel, Log: log, Standby: inbox, Shared: true,
			HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: postgres.StandbyRequests(transport)},
		}
		if m := s.metrics; m != nil {
			b.OnAck = m.Ack
		}
		log.Info().Msg("standing by: holding Slack connections to record events for the leader")
		err := b.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		log.Warn().Err(err).Dur("retry_in", standbyRetry).Msg("the standby's Slack connections stopped; connecting again")
		commands.Sleep(ctx, standbyRetry)
	}
}

// modal is the form /dobro alone opens: the configured environments and
// components, and the ticket select's options from the tracker's search
// over the tickets dobro accepts (rules.projects, rules.ready_statuses),
// when the tracker can search. It must be built from the tracker itself,
// before anything wraps it.
func modal(cfg commands.Config) *bot.Modal {
	m := &bot.Modal{Policy: cfg.Policy}
	if sr, ok := cfg.Tracker.(tracker.Searcher); ok {
		m.Tickets = tracker.Ready{Tracker: sr, Scope: tracker.Scope{Projects: cfg.Policy.Rules.Projects, Statuses: cfg.Policy.Rules.ReadyStatuses}}
	}
	return m
}
