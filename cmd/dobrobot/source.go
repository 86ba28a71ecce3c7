package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dobrobot/dobrobot/cmd/internal/adminsock"
	"github.com/dobrobot/dobrobot/cmd/internal/audit"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/failpoint"
	"github.com/dobrobot/dobrobot/storage"
)

// source is where a maintenance verb reads the database: the file itself
// when no bot holds it, else the running bot's admin socket.
type source struct {
	path  string
	db    *storage.DB
	admin *adminsock.Client
}

// Close closes the database if it was opened.
func (s *source) Close() error {
	if s.db != nil {
		return s.db.Close()
	}
	return nil
}

// openSource finds the database named by --db, the config or the demo, and
// reaches it through a running bot's admin socket if one answers, else by
// opening the file.
func (a *app) openSource(flag string) (*source, error) {
	path := flag
	if path == "" {
		c, err := a.loadConfig()
		if err != nil {
			return nil, err
		}
		path = dbPath(c)
	}
	if !fileExists(path) {
		return nil, usagef("no database at %s (set storage.path, --config or --db)", path)
	}
	if c := adminsock.Dial(path); c != nil {
		a.log.Debug().Str("socket", c.Socket()).Msg("the database is in use: going through the running dobrobot")
		return &source{path: path, admin: c}, nil
	}
	db, err := openDB(path)
	if errors.Is(err, storage.ErrLocked) {
		return nil, fmt.Errorf("%w; no running dobrobot answers on %s (is it an older version, or another program holding the file?)", err, adminsock.SocketPath(path))
	}
	if err != nil {
		return nil, err
	}
	return &source{path: path, db: db}, nil
}

// verifyAtOpen verifies the whole audit chain of store and replays it
// against the stored releases, locks and freezes, refusing a database that
// disagrees with its own log: run does it at start-up, and the console when
// it opens a database.
func (a *app) verifyAtOpen(ctx context.Context, store commands.Store) error {
	start := time.Now()
	head, err := commands.VerifyStore(ctx, store, nil)
	switch {
	case err != nil && audit.Tampered(err):
		return fmt.Errorf("the audit log does not verify (%w): the database was changed outside dobrobot or is damaged. "+
			"It was left as it is; run dobrobot audit verify on it, and restore the last good backup (docs/operations.md)", err)
	case err != nil:
		return fmt.Errorf("verifying the audit log: %w", err)
	}
	a.log.Info().Uint64("entries", head.Seq).Str("head", head.String()).Dur("took", time.Since(start)).
		Msg("the audit chain verifies and the stored releases, locks and freezes are what it replays to")
	return nil
}

// startup runs the checks and starts the services of `dobrobot run` that
// come with its database: it warns of armed failpoints, verifies the whole
// audit chain and replays it against the stored releases, locks and
// freezes (refusing a database that disagrees with its own log), and serves
// the admin socket of a bbolt database. The returned function stops what
// was started.
func (a *app) startup(ctx context.Context, store commands.Store) (func(), error) {
	if fps := failpoint.Armed(); len(fps) > 0 {
		a.log.Warn().Strs("failpoints", fps).Msg("failpoints armed: this test build kills itself when it reaches them")
	}
	if err := a.verifyAtOpen(ctx, store); err != nil {
		return nil, err
	}
	db, ok := store.(*storage.DB)
	if !ok {
		return func() {}, nil
	}
	admin, err := adminsock.Start(db, a.log)
	if err != nil {
		a.log.Warn().Err(err).Msg("no admin socket: audit export, audit verify and backup will not work while the bot runs")
		return func() {}, nil
	}
	return func() {
		if err := admin.Close(); err != nil {
			a.log.Warn().Err(err).Msg("closing the admin socket")
		}
	}, nil
}
