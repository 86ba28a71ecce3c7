package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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
	s, err := a.newServer(c, db, leader, db) // http.listen: /healthz, /metrics
	if err != nil {
		return err
	}
	defer s.Close()
	a.log.Info().Str("schema", db.Schema()).Str("leader_id", leader.ID()).Str("channel", c.Slack.Channel).
		Msg("dobrobot starting on PostgreSQL: standing by until this instance wins the leader lock")
	// Standing by, it holds Slack connections too (serve.go, standBy).
	s.life = ctx
	s.startStandby()
	defer s.stopStandby()
	if err := leader.Run(ctx, s.serve); err != nil {
		return err
	}
	a.log.Info().Msg("dobrobot stopped")
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
