package main

import (
	"context"
)

// RunCmd runs the Slack bot.
type RunCmd struct{}

// Run connects to Slack and serves the release channel until stopped.
func (RunCmd) Run(ctx context.Context, a *app) error {
	c, err := a.mustConfig("run")
	if err != nil {
		return err
	}
	if err := c.needSlack(); err != nil {
		return usageError{err}
	}
	if c.Storage.Kind == "postgres" {
		return a.runLeader(ctx, c) // leader.go: active/standby
	}
	// The database first: a second instance must give up here, before it
	// ever connects to Slack.
	db, err := openDB(dbPath(c))
	if err != nil {
		return err
	}
	defer db.Close()
	stop, err := a.startup(ctx, db) // audit check, admin socket
	if err != nil {
		return err
	}
	defer stop()
	s, err := a.newServer(c, db, nil, nil) // http.listen: /healthz, /metrics
	if err != nil {
		return err
	}
	defer s.Close()
	a.log.Info().Str("db", db.Path()).Str("channel", c.Slack.Channel).Msg("dobrobot starting")
	if err := s.serve(ctx, 0); err != nil {
		return err
	}
	a.log.Info().Msg("dobrobot stopped")
	return nil
}
