package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dobrobot/dobrobot/bot"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/postgres"
)

// needPostgres checks the keys that storage.kind postgres uses.
func (c *Config) needPostgres() error {
	if c.Storage.DSN == "" {
		return usagef("storage.dsn is empty: set it to the PostgreSQL connection string, for example ${DOBROBOT_PG_DSN}")
	}
	return nil
}

// openPostgres opens the PostgreSQL store of c. fence is the leader's
// (dobrobot run); the maintenance verbs, which only read, pass nil.
func (a *app) openPostgres(ctx context.Context, c *Config, fence func() (int64, bool)) (*postgres.DB, error) {
	if err := c.needPostgres(); err != nil {
		return nil, err
	}
	idle := c.Storage.LeaderTimeout.Std(postgres.DefaultLeaderTimeout)
	db, err := postgres.Open(ctx, c.Storage.DSN, postgres.Options{Schema: c.Storage.Schema, Fence: fence, IdleInTransaction: idle})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return db, nil
}

// errNotLeader refuses a Slack call from a process that does not lead.
var errNotLeader = errors.New("this dobrobot does not lead now: it calls no Slack API")

// leaderOnly is the Slack Web API transport of a leader: it refuses every
// call once the leader's lease has run out, so that a leader that froze and
// woke up after a standby took over sends nothing before it notices.
type leaderOnly struct {
	base    http.RoundTripper
	leading func() bool
}

// RoundTrip sends r if this process leads.
func (t leaderOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if !t.leading() {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, errNotLeader
	}
	return t.base.RoundTrip(r)
}

// leaderConns returns a transport like http.DefaultTransport whose
// connections check, before each write, that this process still leads. A
// process frozen after RoundTrip's check and thawed after a standby took
// over would otherwise send the request it was writing; checked right
// before the bytes leave, that window shrinks to the write call itself.
func leaderConns(leading func() bool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return leaderConn{Conn: c, leading: leading}, nil
	}
	return t
}

// leaderConn is a connection that writes only while this process leads.
type leaderConn struct {
	net.Conn
	leading func() bool
}

// Write writes p if this process leads, and fails the connection if not.
func (c leaderConn) Write(p []byte) (int, error) {
	if !c.leading() {
		_ = c.Conn.Close()
		return 0, errNotLeader
	}
	return c.Conn.Write(p)
}

// leaderStore is the store as the Slack bot of one term sees it: while this
// process does not lead, its outbox is empty, so a deposed leader neither
// sends what the new leader now delivers nor waits for it at shutdown.
type leaderStore struct {
	commands.Store
	leading func() bool
}

// Pending returns the outbox while this process leads, and nothing after.
func (s leaderStore) Pending(ctx context.Context, max int) ([]commands.Effect, error) {
	if !s.leading() {
		return nil, ctx.Err()
	}
	return s.Store.Pending(ctx, max)
}

// runLeader is dobrobot run on PostgreSQL: it stands by until it wins the
// leader lock, then leads — connects to Slack, handles commands, runs hooks —
// until it loses the lock or ctx ends, and stands by again after a loss.
func (a *app) runLeader(ctx context.Context, c *Config) error {
	if err := c.needPostgres(); err != nil {
		return err
	}
	lockDSN, key := c.Storage.LockDSN, "storage.lock_dsn"
	if lockDSN == "" {
		lockDSN, key = c.Storage.DSN, "storage.dsn"
	}
	leader, err := postgres.NewLeader(lockDSN, postgres.LeaderOptions{
		Schema: c.Storage.Schema, Timeout: c.Storage.LeaderTimeout.Std(postgres.DefaultLeaderTimeout), Log: a.log,
	})
	if err != nil {
		return usageError{fmt.Errorf("%s: %w", key, err)}
	}
	db, err := a.openPostgres(ctx, c, leader.Epoch)
	if err != nil {
		return err
	}
	defer db.Close()
	stop, err := a.startup(ctx, db) // audit check
	if err != nil {
		return err
	}
	defer stop()
	// A configuration that cannot serve must fail now, not at a takeover.
	if _, err := a.service(c, db); err != nil {
		return err
	}

	l := &leading{app: a, c: c, db: db, leader: leader}
	if c.HTTP.Listen != "" {
		led := ledStore{DB: db, leader: leader}
		l.metrics = newMetrics(led, l.connected, a.log)
		srv, err := startHTTP(c.HTTP.Listen, led, l.connected, l.metrics, a.log)
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.Close(); err != nil {
				a.log.Warn().Err(err).Msg("closing the http listener")
			}
		}()
	}
	a.log.Info().Str("schema", db.Schema()).Str("leader_id", leader.ID()).Str("channel", c.Slack.Channel).
		Msg("dobrobot starting on PostgreSQL: standing by until this instance wins the leader lock")
	if err := leader.Run(ctx, l.term); err != nil {
		return err
	}
	a.log.Info().Msg("dobrobot stopped")
	return nil
}

// leading is what runLeader's terms share.
type leading struct {
	*app
	c       *Config
	db      *postgres.DB
	leader  *postgres.Leader
	metrics *metrics // nil without http.listen
	bot     atomic.Pointer[bot.Slack]
}

// connected reports whether this process leads and its Slack connection is up.
func (l *leading) connected() bool {
	b := l.bot.Load()
	return b != nil && l.leader.Leading() && b.Connected()
}

// term leads for one term: the Slack bot with a Service of its own, until
// ctx (the term's) ends. Losing the term kills running hooks at once: their
// results could not be recorded, and the new leader reports their releases
// as interrupted. A clean stop lets them finish for hookGrace.
func (l *leading) term(ctx context.Context, epoch int64) error {
	log := l.log.With().Int64("epoch", epoch).Logger()
	svc, err := l.service(l.c, l.db)
	if err != nil {
		return err
	}
	svc.Log = log
	svc.Instance = fmt.Sprintf("%s (leader, term %d)", l.leader.ID(), epoch)
	hookCtx, killHooks := context.WithCancel(context.WithoutCancel(ctx))
	defer killHooks()
	svc.HookContext = hookCtx
	b := &bot.Slack{
		AppToken: l.c.Slack.AppToken, BotToken: l.c.Slack.BotToken, APIURL: l.c.Slack.APIURL, Connections: l.c.Slack.Connections,
		Channel: l.c.Slack.Channel, Service: svc, Store: leaderStore{Store: l.db, leading: l.leader.Leading}, Log: log,
	}
	var transport http.RoundTripper = leaderConns(l.leader.Leading)
	if m := l.metrics; m != nil {
		svc.Observer = m
		svc.Tracker = m.observe(svc.Tracker)
		b.OnAck = m.Ack
		transport = slackTransport{base: transport, m: m}
	}
	b.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: leaderOnly{base: transport, leading: l.leader.Leading}}
	l.bot.Store(b)
	log.Info().Msg("leading: connecting to Slack")
	// Only the leader posts checkpoints: at the start of each term, then daily.
	stopCheckpoints := l.postCheckpoints(ctx, svc, checkpointEvery)
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

// postgresSource opens the configured PostgreSQL store read-only for a verb
// that reads the audit log, when the configuration names one and no --db
// file is given. It returns nil and no error otherwise.
func (a *app) postgresSource(ctx context.Context, flag string) (*postgres.DB, error) {
	if flag != "" {
		return nil, nil
	}
	c, err := a.loadConfig()
	if err != nil || c == nil || c.Storage.Kind != "postgres" {
		return nil, err
	}
	if err := c.needPostgres(); err != nil {
		return nil, err
	}
	db, err := postgres.Open(ctx, c.Storage.DSN, postgres.Options{Schema: c.Storage.Schema, ReadOnly: true, MaxConns: 2})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return db, nil
}

// bboltOnly refuses a verb that works on a bbolt file when the configuration
// keeps the state in PostgreSQL and no --db file is given; hint says what to
// do instead.
func (a *app) bboltOnly(verb, flag, hint string) error {
	if flag != "" {
		return nil
	}
	c, err := a.loadConfig()
	if err != nil || c == nil || c.Storage.Kind != "postgres" {
		return err
	}
	return usagef("%s works on a bbolt file, and storage.kind is postgres: %s", verb, hint)
}

// checkStorage reports on a PostgreSQL store for config check: whether it is
// reachable, its schema, and who leads. It says nothing of a bbolt file.
func (a *app) checkStorage(ctx context.Context, c *Config) (line string, ok bool) {
	if c.Storage.Kind != "postgres" {
		return "", true
	}
	if err := c.needPostgres(); err != nil {
		return "storage: " + err.Error(), false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, c.Storage.DSN, postgres.Options{Schema: c.Storage.Schema, ReadOnly: true, MaxConns: 1})
	if errors.Is(err, postgres.ErrNoSchema) {
		return "storage: PostgreSQL ok; " + strings.TrimPrefix(err.Error(), "postgres: "), true
	}
	if err != nil {
		return "storage: " + err.Error(), false
	}
	defer db.Close()
	term, err := db.Term(ctx)
	if err != nil {
		return "storage: " + err.Error(), false
	}
	return fmt.Sprintf("storage: PostgreSQL ok (schema %s); %s", db.Schema(), describeTerm(term)), true
}

// describeTerm says who leads, for people.
func describeTerm(t postgres.Term) string {
	switch {
	case t.Epoch == 0:
		return "no dobrobot has led yet"
	case t.Held:
		return fmt.Sprintf("%s leads (term %d, since %s)", t.Holder, t.Epoch, t.Since.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("nobody leads now: term %d of %s ended; a standby takes over within a second or two", t.Epoch, t.Holder)
}

// ledStore is the store of an instance that may stand by, as /healthz and
// /metrics see it: it also says who leads.
type ledStore struct {
	*postgres.DB
	leader *postgres.Leader
}

// Leadership reports whether this instance leads, and which instance holds
// the leader lock (none while a takeover is under way) in which term.
func (s ledStore) Leadership(ctx context.Context) (bool, string, int64, error) {
	term, err := s.Term(ctx)
	if err != nil {
		return false, "", 0, err
	}
	holder := ""
	if term.Held {
		holder = term.Holder
	}
	return s.leader.Leading(), holder, term.Epoch, nil
}
