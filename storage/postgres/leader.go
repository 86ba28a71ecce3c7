package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
)

// DefaultLeaderTimeout is LeaderOptions.Timeout's default.
const DefaultLeaderTimeout = 5 * time.Second

// LeaderOptions tunes NewLeader.
type LeaderOptions struct {
	// Schema is the store's schema (default DefaultSchema): one leader per
	// schema.
	Schema string
	// ID names this process in the leader table and in logs; empty means
	// host:pid.
	ID string
	// Timeout is how long the database keeps the session of a leader that
	// went silent (frozen, cut off) before it ends it and so frees the lock
	// (idle_session_timeout); zero means DefaultLeaderTimeout, and less than
	// 500ms is raised to it. The leader heartbeats every Timeout/5, and
	// stops acting on its own after 3/5 of Timeout without an answer.
	// Standbys wait for the lock, which the server grants them as soon as
	// the leader's session ends.
	Timeout time.Duration
	// Log receives leadership changes.
	Log zerolog.Logger
}

// Leader campaigns for the leadership of one dobrobot schema and holds it;
// see the package documentation. Create it with NewLeader; its Epoch method
// is the store's Options.Fence.
type Leader struct {
	cfg     *pgx.ConnConfig
	schema  string
	key     int64
	q       queries
	id      string
	timeout time.Duration
	beat    time.Duration // heartbeat interval
	lease   time.Duration // how long an answered heartbeat is trusted
	log     zerolog.Logger

	mu        sync.Mutex
	epoch     int64
	leading   bool
	confirmed time.Time // when the last answered heartbeat was sent
	previous  string    // the holder of the term before epoch ("" if none or this process)

	// beforeBeat, if set, runs before each heartbeat; tests block in it to
	// freeze the leader.
	beforeBeat func()
}

// NewLeader returns a Leader for the database named by dsn, which must be a
// direct connection (or a pooler in session mode): the lock lives in the
// session. It connects only when Run runs.
func NewLeader(dsn string, o LeaderOptions) (*Leader, error) {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if !schemaName.MatchString(o.Schema) {
		return nil, fmt.Errorf("postgres: schema %q is not a plain lower-case name (letters, digits, _)", o.Schema)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: the DSN of the leader lock does not parse (%s)", redact(err))
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultLeaderTimeout
	}
	o.Timeout = max(o.Timeout, 500*time.Millisecond)
	if o.ID == "" {
		host, _ := os.Hostname()
		o.ID = host + ":" + strconv.Itoa(os.Getpid())
	}
	cfg.RuntimeParams["application_name"] = "dobrobot leader " + o.ID
	// A leader that stops talking loses its session, and its lock, within
	// Timeout. PostgreSQL 14 or newer.
	cfg.RuntimeParams["idle_session_timeout"] = strconv.FormatInt(o.Timeout.Milliseconds(), 10)
	return &Leader{
		cfg: cfg, schema: o.Schema, key: lockKey("leader", o.Schema), q: newQueries(o.Schema), id: o.ID,
		timeout: o.Timeout, beat: o.Timeout / 5, lease: o.Timeout * 3 / 5,
		log: o.Log.With().Str("leader_id", o.ID).Logger(),
	}, nil
}

// ID returns the name this process leads under.
func (l *Leader) ID() string { return l.id }

// Epoch returns the epoch of the term this process leads (or last led) and
// whether it leads now: it holds the lock and its last heartbeat was
// answered recently enough that the server cannot have ended its session.
func (l *Leader) Epoch() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch, l.leading && time.Since(l.confirmed) < l.lease
}

// Predecessor returns the ID of the instance that held the term before the
// one this process leads (or last led), or "" when there was none or it was
// this process. A predecessor that froze or was cut off may still hold its
// Slack connections when this process connects: they close once it notices
// it was deposed.
func (l *Leader) Predecessor() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.previous
}

// Leading reports whether this process leads now (Epoch's second result).
func (l *Leader) Leading() bool {
	_, ok := l.Epoch()
	return ok
}

func (l *Leader) set(epoch int64, leading bool, confirmed time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.epoch, l.leading, l.confirmed = epoch, leading, confirmed
}

func (l *Leader) confirm(at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.confirmed = at
}

func (l *Leader) stepDown() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leading = false
}

// Run campaigns until ctx ends. Whenever this process wins the lock it starts
// a new term and calls lead with the term's epoch and a context that ends
// when ctx ends or the leadership is lost; once lead returns it frees the
// lock and stands by again. lead must stop talking to Slack and running
// hooks when its context ends. An error from lead, unless the leadership
// was lost meanwhile, ends Run with that error; otherwise Run returns nil
// when ctx ends.
func (l *Leader) Run(ctx context.Context, lead func(ctx context.Context, epoch int64) error) error {
	announced := int64(-1)
	for ctx.Err() == nil {
		conn, err := l.connect(ctx)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn().Str("error", redact(err)).Msg("cannot reach the database for the leader lock; retrying")
				commands.Sleep(ctx, l.beat)
			}
			continue
		}
		epoch, err := l.campaign(ctx, conn, &announced)
		if err != nil {
			closeConn(conn)
			if ctx.Err() == nil {
				l.log.Warn().Str("error", redact(err)).Msg("lost the connection of the leader lock while standing by; reconnecting")
				commands.Sleep(ctx, l.beat)
			}
			continue
		}
		err = l.hold(ctx, conn, epoch, lead)
		closeConn(conn)
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *Leader) connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, max(l.timeout, 5*time.Second))
	defer cancel()
	return pgx.ConnectConfig(cctx, l.cfg)
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx) // ends the session: the lock, if held, goes with it
}

// campaign waits for the lock, then starts a new term and returns its
// epoch. A standby waits in pg_advisory_lock, which the server grants the
// moment the leader's session ends; the wait keeps its session busy, so
// idle_session_timeout does not end it.
func (l *Leader) campaign(ctx context.Context, conn *pgx.Conn, announced *int64) (int64, error) {
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, l.key).Scan(&got); err != nil {
		return 0, err
	}
	if !got {
		var (
			epoch  int64
			holder string
		)
		if err := conn.QueryRow(ctx, l.q.expand(`SELECT epoch, holder FROM {s}.leader WHERE id = 1`)).Scan(&epoch, &holder); err != nil {
			return 0, err
		}
		if epoch != *announced {
			*announced = epoch
			l.log.Info().Int64("epoch", epoch).Str("leader", holder).Msg("standing by: another dobrobot leads")
		}
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, l.key); err != nil {
			return 0, err
		}
	}
	return l.begin(ctx, conn)
}

// begin starts a term: it increments the epoch, which waits for any
// transaction of the previous term to end, and records the term.
func (l *Leader) begin(ctx context.Context, conn *pgx.Conn) (int64, error) {
	var (
		epoch    int64
		previous string
	)
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, l.q.bumpEpoch, l.id).Scan(&epoch); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, l.q.recordTerm, epoch, l.id); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, l.q.expand(`SELECT holder FROM {s}.terms WHERE epoch = $1`), epoch-1).Scan(&previous)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("start a leadership term: %w", err)
	}
	if previous == l.id {
		previous = ""
	}
	l.mu.Lock()
	l.previous = previous
	l.mu.Unlock()
	// The increment may have waited for the old term; heartbeat now so the
	// lease counts from here.
	sent := time.Now()
	if err := l.heartbeat(conn, epoch); err != nil {
		return 0, err
	}
	l.set(epoch, true, sent)
	l.log.Info().Int64("epoch", epoch).Msg("leading: this dobrobot won the leader lock")
	return epoch, nil
}

// heartbeat checks, on the lock's session, that the term is still current.
func (l *Leader) heartbeat(conn *pgx.Conn, epoch int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*l.beat)
	defer cancel()
	var current int64
	if err := conn.QueryRow(ctx, l.q.leaderEpoch).Scan(&current); err != nil {
		return fmt.Errorf("heartbeat: %s", redact(err))
	}
	if current != epoch {
		return fmt.Errorf("term %d has begun", current)
	}
	return nil
}

// hold runs lead for the term epoch while heartbeating on conn, and ends the
// term when lead returns.
func (l *Leader) hold(ctx context.Context, conn *pgx.Conn, epoch int64, lead func(context.Context, int64) error) error {
	leadCtx, lose := context.WithCancelCause(ctx)
	defer lose(nil)
	done := make(chan error, 1)
	go func() { done <- lead(leadCtx, epoch) }()
	tick := time.NewTicker(l.beat)
	defer tick.Stop()
	held := true
	for {
		select {
		case err := <-done:
			l.stepDown()
			if !held {
				if err != nil {
					l.log.Warn().Err(err).Int64("epoch", epoch).Msg("the lost term ended with an error")
				}
				return nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, uerr := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.key)
			cancel()
			if uerr != nil {
				l.log.Warn().Str("error", redact(uerr)).Msg("could not free the leader lock; closing its session frees it")
			}
			l.log.Info().Int64("epoch", epoch).Msg("stepped down: the leader lock is free for a standby")
			return err
		case <-tick.C:
			if !held {
				continue
			}
			if l.beforeBeat != nil {
				l.beforeBeat()
			}
			sent := time.Now()
			if err := l.heartbeat(conn, epoch); err != nil {
				held = false
				l.stepDown()
				closeConn(conn)
				l.log.Error().Str("error", err.Error()).Int64("epoch", epoch).
					Msg("lost the leadership: dropping the Slack connection and stopping hooks; standing by")
				lose(fmt.Errorf("%w: %v", ErrLost, err))
				continue
			}
			l.confirm(sent)
		}
	}
}

// ErrLost is the cause of a term's context when the leadership was lost.
var ErrLost = errors.New("postgres: leadership lost")
