package commands

import (
	"context"
	"time"
)

// WatchAudit returns store with Update and UpdateFirst calling fn, once a
// transaction has committed, with the audit entries it appended, in seq
// order: the feed of what is computed incrementally from the log (the
// /metrics gauges), without a read of the log per look. fn must be quick;
// it runs after the commit, on the committing goroutine.
func WatchAudit(store Store, fn func([]AuditEntry)) Store {
	return &watchedStore{Store: store, fn: fn}
}

type watchedStore struct {
	Store
	fn func([]AuditEntry)
}

// watchedTx records the entries its transaction appends.
type watchedTx struct {
	Tx
	got []AuditEntry
}

func (t *watchedTx) AppendAudit(e AuditEntry) (AuditEntry, error) {
	out, err := t.Tx.AppendAudit(e)
	if err == nil {
		t.got = append(t.got, out)
	}
	return out, err
}

func (s *watchedStore) Update(ctx context.Context, fn func(Tx) error) error {
	return s.watch(ctx, s.Store.Update, fn)
}

func (s *watchedStore) UpdateFirst(ctx context.Context, fn func(Tx) error) error {
	return s.watch(ctx, s.Store.UpdateFirst, fn)
}

func (s *watchedStore) watch(ctx context.Context, update func(context.Context, func(Tx) error) error, fn func(Tx) error) error {
	var wt *watchedTx
	err := update(ctx, func(tx Tx) error {
		wt = &watchedTx{Tx: tx} // afresh on each attempt: a retried transaction appends again
		return fn(wt)
	})
	if err == nil && wt != nil && len(wt.got) > 0 {
		s.fn(wt.got)
	}
	return err
}

// PrimeRolling fills r from store's log with what a report of the window
// ending at now reads (Period.ReadFrom: the window before it and the lead
// look-back, for the requests of the releases done in it), and returns
// the seq of the last entry read: entries up to it must not be fed again.
func PrimeRolling(ctx context.Context, store AuditReader, r *RollingFigures, now time.Time) (uint64, error) {
	p := Period{Since: now.Add(-r.window), Until: now}
	var last uint64
	err := store.Audit(ctx, AuditFilter{Since: p.ReadFrom(), Actions: ReportActions}, func(e AuditEntry) error {
		r.Add(e)
		last = max(last, e.Seq)
		return nil
	})
	return last, err
}
