package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/bot"
	"github.com/dobrobot/dobrobot/cmd/internal/monitor"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/postgres"
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
	db      *postgres.DB     // the store when leader is set: hook results are handed in through it
	metrics *monitor.Metrics // nil without http.listen
	http    *monitor.Server  // nil without http.listen
	bot     atomic.Pointer[bot.Slack]
}

// newServer checks that configuration c can serve — now, not at a
// takeover — and starts the http listener when http.listen is set. db is
// the PostgreSQL store when leader is set.
func (a *app) newServer(c *Config, store commands.Store, leader *postgres.Leader, db *postgres.DB) (*server, error) {
	if _, err := a.config(c, store); err != nil {
		return nil, err
	}
	s := &server{app: a, c: c, store: store, leader: leader, db: db}
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
		return nil, err
	}
	s.http = srv
	return s, nil
}

// Close stops the http listener.
func (s *server) Close() {
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
	}
	var transport http.RoundTripper = http.DefaultTransport
	if s.leader != nil {
		cfg.Instance = fmt.Sprintf("%s (leader, term %d)", s.leader.ID(), epoch)
		cfg.HandIn = s.db.HandIn // a hook that ends after this term still hands its result in
		b.Store = postgres.FencedOutbox{Store: s.store, Leading: s.leader.Leading}
		transport = postgres.FenceConns(s.leader.Leading)
	}
	if m := s.metrics; m != nil {
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
	if s.leader != nil {
		log.Info().Msg("leading: connecting to Slack")
	}
	// Only the leader posts checkpoints: at the start of each term, then daily.
	stopCheckpoints := postCheckpoints(ctx, svc, log, checkpointEvery)
	runErr := b.Run(ctx)
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
