package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dobrobot/dobrobot/bot"
	"github.com/dobrobot/dobrobot/commands"
)

// hookGrace is how long a stopping bot lets running hooks finish before it
// kills their process groups (their releases are then reported at the next
// start, not re-run).
const hookGrace = 60 * time.Second

// checkpointEvery is how often a running bot posts the audit chain's head
// to the release channel (besides once at each start, or each term of a
// PostgreSQL leader).
const checkpointEvery = 24 * time.Hour

// postCheckpoints posts the audit chain's head now and then every every,
// until ctx ends or the returned function is called (which waits for it).
// A failed post is logged; the next one comes at the next tick.
func (a *app) postCheckpoints(ctx context.Context, svc *commands.Service, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if _, err := svc.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				svc.Log.Warn().Err(err).Msg("could not post the audit checkpoint; trying again at the next one")
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
	svc, err := a.service(c, db)
	if err != nil {
		return err
	}
	hookCtx, killHooks := context.WithCancel(context.WithoutCancel(ctx))
	defer killHooks()
	svc.HookContext = hookCtx
	b := &bot.Slack{
		AppToken: c.Slack.AppToken, BotToken: c.Slack.BotToken, APIURL: c.Slack.APIURL, Connections: c.Slack.Connections,
		Channel: c.Slack.Channel, Service: svc, Store: db, Log: a.log,
	}
	stopHTTP, err := a.instrument(c, db, svc, b) // http.listen: /healthz, /metrics
	if err != nil {
		return err
	}
	defer stopHTTP()
	a.log.Info().Str("db", db.Path()).Str("channel", c.Slack.Channel).Msg("dobrobot starting")
	stopCheckpoints := a.postCheckpoints(ctx, svc, checkpointEvery)
	runErr := b.Run(ctx)
	stopCheckpoints()
	done := make(chan struct{})
	go func() { svc.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(hookGrace):
		a.log.Warn().Dur("grace", hookGrace).Msg("hooks still running at shutdown: killing them; a killed start hook leaves its release failed, locks held")
		killHooks()
		<-done
	}
	if runErr != nil {
		return fmt.Errorf("slack: %w", runErr)
	}
	a.log.Info().Msg("dobrobot stopped")
	return nil
}
