package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dobrobot/dobrobot/commands"
)

// A standby holds Slack connections too, so that a frozen leader's sockets
// are not the only ones Slack can give an event to. What it may write is one
// thing: an event it acknowledges, recorded in the shared inbox as pending,
// for the leader to carry out. That write takes neither the writer lock nor
// the fence — it needs no term — and it cannot corrupt anything: it inserts
// a row keyed by the event ID with processed false and does nothing when the
// ID is there already (recorded by the leader, by another standby, or
// processed), so it never changes a record, never touches releases, locks,
// the audit or the outbox, and a second delivery of an event is a no-op
// whoever gets it. It then notifies the leader (NOTIFY on the schema's
// inbox channel), which carries out the pending events
// (commands.Service.HandlePending) and so is woken within milliseconds.

// Inbox records events in a store's inbox for its leader; see Record. Get it
// with DB.Inbox.
type Inbox struct {
	db  *DB
	now func() time.Time
	g   commands.GroupCommit[commands.Message, bool]
}

// Inbox returns the store's recorder of events for the leader. now, if not
// nil, stands in for the clock (tests).
func (db *DB) Inbox(now func() time.Time) *Inbox {
	if now == nil {
		now = time.Now
	}
	in := &Inbox{db: db, now: now}
	in.g.Commit = in.commit
	return in
}

// Record records m, an event this process acknowledges but does not carry
// out, as pending in the inbox, and reports whether it is new there.
// Concurrent calls share one transaction. It is not fenced: a standby calls
// it. An event already recorded (pending or processed) is left as it is.
func (in *Inbox) Record(ctx context.Context, m commands.Message) (bool, error) {
	if m.EventID == "" {
		return false, commands.Errorf(commands.EINVALID, "message without an event ID")
	}
	if err := checkText("event ID", m.EventID); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return in.g.Add(ctx, m)
}

// commit records one batch of Record's messages in one transaction and
// notifies the leader when any was new.
func (in *Inbox) commit(msgs []commands.Message, ctxs []context.Context) ([]bool, error) {
	fresh := make([]bool, len(msgs))
	var live []int
	for i, c := range ctxs {
		if c.Err() == nil {
			live = append(live, i)
		}
	}
	if len(live) == 0 {
		return fresh, nil
	}
	if in.db.readOnly {
		return nil, errors.New("postgres: the store was opened read-only: writes belong to dobrobot run")
	}
	// The callers wait with their own contexts; this commit is bounded on
	// its own, as an ack is useless after Slack's 3 s anyway.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := in.now().UTC()
	err := pgx.BeginFunc(ctx, in.db.pool, func(ptx pgx.Tx) error {
		notify := false
		for _, i := range live {
			m := msgs[i]
			data, err := json.Marshal(commands.InboxEvent{ID: m.EventID, Message: m, Received: now})
			if err != nil {
				return fmt.Errorf("postgres: encode inbox event %q: %w", m.EventID, err)
			}
			tag, err := ptx.Exec(ctx, in.db.q.recordEvent, m.EventID, now.Unix(), now.Nanosecond(), data)
			if err != nil {
				return fmt.Errorf("postgres: record inbox event %q: %w", m.EventID, err)
			}
			fresh[i] = tag.RowsAffected() == 1
			notify = notify || fresh[i]
		}
		if notify {
			if _, err := ptx.Exec(ctx, `SELECT pg_notify($1, '')`, in.db.inboxChannel()); err != nil {
				return fmt.Errorf("postgres: notify the leader: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, commands.Errorf(commands.EUNAVAILABLE, "could not record the event: %s", redact(err))
	}
	return fresh, nil
}

// inboxChannel is the NOTIFY channel of the schema's inbox: short, and
// different for every schema.
func (db *DB) inboxChannel() string {
	return fmt.Sprintf("dobrobot_inbox_%016x", uint64(lockKey("inbox", db.schema)))
}

// ListenInbox calls wake whenever another process recorded an event in the
// inbox (Inbox.Record), until ctx ends. It listens on a connection of its
// own, taken out of the pool; when that connection fails it connects again
// after retry, and calls wake once it listens again, since events recorded
// meanwhile notified nobody. It returns when ctx ends.
func (db *DB) ListenInbox(ctx context.Context, retry time.Duration, wake func()) {
	for ctx.Err() == nil {
		// A failed connection is not worth an error of its own: the
		// caller's periodic scan covers the gap.
		_ = db.listen(ctx, wake)
		commands.Sleep(ctx, retry)
	}
}

// listen listens on one connection until it fails or ctx ends.
func (db *DB) listen(ctx context.Context, wake func()) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection leaves the pool for good: one that listened must not
	// serve a transaction later.
	pc := conn.Hijack()
	defer closeConn(pc)
	if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{db.inboxChannel()}.Sanitize()); err != nil {
		return err
	}
	wake()
	for {
		if _, err := pc.WaitForNotification(ctx); err != nil {
			return err
		}
		wake()
	}
}
