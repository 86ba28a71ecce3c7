package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/dobrobot/dobrobot/commands"
)

// HandIn runs fn in one read-write transaction as Update does, but without
// the fence: a leader deposed while its hook ran hands the hook's result in
// through it when it wakes (commands.HandIn). It is safe without the
// fence because it takes the leader row's lock, as every Update does, so it
// is serialised with the current leader's writes, and fn changes the state
// only if what it reads there still waits for the result (the hook attempt
// ID): the check and the write are one transaction. Its audit entries and
// outbox effects carry the current term's epoch; the current leader
// delivers the effects.
//
// leads tells fn whether this process holds the current term (its Update
// would have run).
func (db *DB) HandIn(ctx context.Context, fn func(tx commands.Tx, leads bool) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.readOnly {
		return errors.New("postgres: the store was opened read-only: writes belong to dobrobot run")
	}
	ptx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return unavailable(ctx, "could not start a database transaction", err)
	}
	defer rollback(ptx)
	var epoch int64
	if err := ptx.QueryRow(ctx, db.q.lockLeader).Scan(&epoch); err != nil {
		return unavailable(ctx, "could not start a database transaction", err)
	}
	leads := true
	if db.fence != nil {
		mine, ok := db.fence()
		leads = ok && mine == epoch
	}
	t := &tx{ctx: ctx, pg: ptx, q: &db.q, epoch: epoch}
	err = fn(t, leads)
	t.done = true
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return commit(ctx, ptx)
}
