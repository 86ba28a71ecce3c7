package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
)

// tx is a commands.Tx on one bbolt transaction. Everything it returns is
// decoded from bbolt's memory map, so it stays valid after the transaction.
type tx struct {
	btx *bolt.Tx
	rc  *decodeCache[uint64, commands.Release]
	ec  *decodeCache[string, commands.InboxEvent]
	// openHint sizes Open's slice: a Release is over 500 bytes, and
	// growing the slice a doubling at a time copied the queue several times.
	openHint *atomic.Int64
	ob       txOutbox // a read-write transaction's outbox, until it ends
	done     bool     // set when Update/View's fn returned: the bbolt Tx is gone
}

var errTxDone = errors.New("storage: transaction used after its function returned")

func (t *tx) bucket(name []byte) (*bolt.Bucket, error) {
	if t.done {
		return nil, errTxDone
	}
	b := t.btx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("storage: bucket %q is missing", name)
	}
	if appendOnly(name) {
		b.FillPercent = 1.0
	}
	return b, nil
}

func appendOnly(name []byte) bool {
	switch string(name) {
	case "audit", "outbox":
		return true
	}
	return false
}

// encodeID is the 8-byte big-endian key of an ID or seq: byte order is
// numeric order.
func encodeID(id uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), id)
}

func decodeID(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// ticketKey is the tickets index key: the ticket, a zero byte (which no
// ticket holds), the release ID.
func ticketKey(ticket string, id uint64) []byte {
	k := make([]byte, 0, len(ticket)+9)
	k = append(k, ticket...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, id)
}

// lockKey orders locks by component, then release (0, a freeze, first). A
// release's lock is keyed by component and release, unique already; a
// freeze (release 0) adds its environment after the ID, "" (every
// environment) first, so that two environments may freeze one component.
// Component names hold no zero byte, so one component's keys never mix with
// another's.
func lockKey(component string, release uint64, env string) []byte {
	k := ticketKey(component, release)
	if release == 0 {
		k = append(k, env...)
	}
	return k
}

// timeKey is a 12-byte key ordered like the times: seconds since the epoch
// with the sign bit flipped, then nanoseconds.
func timeKey(t time.Time) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 12), uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(k, uint32(t.Nanosecond()))
}

func inboxIndexKey(e commands.InboxEvent) []byte { return append(timeKey(e.Received), e.ID...) }

func checkName(what, s string) error {
	if s == "" || strings.IndexByte(s, 0) >= 0 {
		return commands.Errorf(commands.EINVALID, "%q is not a valid %s name.", s, what)
	}
	return nil
}

// checkEnv refuses an environment name that would corrupt a key; "" (none,
// or every environment for a freeze) is fine.
func checkEnv(env string) error {
	if strings.IndexByte(env, 0) >= 0 {
		return commands.Errorf(commands.EINVALID, "%q is not a valid environment name.", env)
	}
	return nil
}

func (t *tx) getRelease(b *bolt.Bucket, id uint64) (commands.Release, bool, error) {
	v := b.Get(encodeID(id))
	if v == nil {
		return commands.Release{}, false, nil
	}
	r, err := t.decodeRelease(id, v, true)
	return r, err == nil, err
}

// decodeRelease returns release id stored as v, from the cache or decoded;
// keep caches what it decodes (a walk of the whole history does not, so as
// not to push out the releases commands read again and again).
func (t *tx) decodeRelease(id uint64, v []byte, keep bool) (commands.Release, error) {
	if r, ok := t.rc.get(id, v); ok {
		return r, nil
	}
	var r commands.Release
	if err := json.Unmarshal(v, &r); err != nil {
		return commands.Release{}, fmt.Errorf("storage: decode release %d: %w", id, err)
	}
	if keep {
		t.rc.put(id, v, r)
	}
	return r, nil
}

// Release returns the release with the given ID, or ENOTFOUND.
func (t *tx) Release(id uint64) (commands.Release, error) {
	b, err := t.bucket(bucketReleases)
	if err != nil {
		return commands.Release{}, err
	}
	r, ok, err := t.getRelease(b, id)
	if err != nil {
		return commands.Release{}, err
	}
	if !ok {
		return commands.Release{}, commands.Errorf(commands.ENOTFOUND, "There is no release %d.", id)
	}
	return r, nil
}

// ticketIDs walks the IDs of ticket's releases, newest first, until fn says
// stop.
func (t *tx) ticketIDs(ticket string, fn func(id uint64) (more bool, err error)) error {
	idx, err := t.bucket(bucketTickets)
	if err != nil {
		return err
	}
	prefix := append([]byte(ticket), 0)
	c := idx.Cursor()
	// Every key of ticket sorts before ticket+"\x01", and after it come
	// other tickets only.
	k, _ := c.Seek(append([]byte(ticket), 1))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, _ = c.Prev() {
		more, err := fn(binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// OpenReleases returns ticket's open releases, ascending ID. It walks the
// ticket's index entries (the ticket's history, a few keys) and reads only
// the releases the open index holds.
func (t *tx) OpenReleases(ticket string) ([]commands.Release, error) {
	open, err := t.bucket(bucketOpen)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	err = t.ticketIDs(ticket, func(id uint64) (bool, error) {
		if open.Get(encodeID(id)) != nil {
			ids = append(ids, id)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]commands.Release, 0, len(ids))
	for i := len(ids) - 1; i >= 0; i-- {
		r, err := t.Release(ids[i])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// LastRelease returns the newest release of ticket, or ENOTFOUND.
func (t *tx) LastRelease(ticket string) (commands.Release, error) {
	var found uint64
	if err := t.ticketIDs(ticket, func(id uint64) (bool, error) { found = id; return false, nil }); err != nil {
		return commands.Release{}, err
	}
	if found == 0 {
		return commands.Release{}, commands.Errorf(commands.ENOTFOUND, "%s has never been released with dobrobot.", ticket)
	}
	return t.Release(found)
}

// recentKept is the longest Recent whose releases are cached.
const recentKept = 100

// Open returns the open releases in ascending ID order, reading only the open
// index and those releases.
func (t *tx) Open() ([]commands.Release, error) {
	open, err := t.bucket(bucketOpen)
	if err != nil {
		return nil, err
	}
	rel, err := t.bucket(bucketReleases)
	if err != nil {
		return nil, err
	}
	var out []commands.Release
	if n := t.openHint.Load(); n > 0 {
		// Room for a few more: the queue grows a release at a time, and
		// one past the capacity would copy the whole slice again.
		out = make([]commands.Release, 0, n+n/8+4)
	}
	// The open releases are read with a cursor of their own: they are
	// mostly the newest, next to each other, and stepping to the next key
	// costs less than a search from the root for each.
	c, rc := open.Cursor(), rel.Cursor()
	var rk, rv []byte
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if rk != nil {
			rk, rv = rc.Next()
		}
		if !bytes.Equal(rk, k) {
			rk, rv = rc.Seek(k)
		}
		id := decodeID(k)
		if !bytes.Equal(rk, k) || rv == nil {
			return nil, fmt.Errorf("storage: open index names release %d, which does not exist", id)
		}
		r, err := t.decodeRelease(id, rv, true)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	t.openHint.Store(int64(len(out)))
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Releases returns ticket's releases, newest first, at most max (max <= 0: all).
func (t *tx) Releases(ticket string, max int) ([]commands.Release, error) {
	rel, err := t.bucket(bucketReleases)
	if err != nil {
		return nil, err
	}
	var out []commands.Release
	err = t.ticketIDs(ticket, func(id uint64) (bool, error) {
		r, ok, err := t.getRelease(rel, id)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, fmt.Errorf("storage: tickets index of %s names release %d, which does not exist", ticket, id)
		}
		out = append(out, r)
		return max <= 0 || len(out) < max, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Recent returns the newest releases of any ticket, at most max (max <= 0: all).
func (t *tx) Recent(max int) ([]commands.Release, error) {
	rel, err := t.bucket(bucketReleases)
	if err != nil {
		return nil, err
	}
	var out []commands.Release
	c := rel.Cursor()
	for k, v := c.Last(); k != nil && (max <= 0 || len(out) < max); k, v = c.Prev() {
		// Through the cache: queue reads the most recent releases after
		// every release done (the hand-offs' estimate), and decoding
		// thirty of them was a third of its time (figure 3). A long walk
		// (all of them, for a rollback's target) reads it but adds nothing.
		r, err := t.decodeRelease(decodeID(k), v, max > 0 && max <= recentKept)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// PutRelease stores r; see commands.Tx. A failed PutRelease writes nothing.
func (t *tx) PutRelease(r commands.Release) (commands.Release, error) {
	if err := checkName("ticket", r.Ticket); err != nil {
		return commands.Release{}, err
	}
	rel, err := t.bucket(bucketReleases)
	if err != nil {
		return commands.Release{}, err
	}
	open, err := t.bucket(bucketOpen)
	if err != nil {
		return commands.Release{}, err
	}
	idx, err := t.bucket(bucketTickets)
	if err != nil {
		return commands.Release{}, err
	}

	// A bbolt Put rewrites its page even when the key is there already, and
	// each page rewritten is written and fsynced at commit: index entries
	// are put only when they change.
	var indexed, wasOpen bool
	if r.ID == 0 {
		id, err := rel.NextSequence()
		if err != nil {
			return commands.Release{}, fmt.Errorf("storage: next release ID: %w", err)
		}
		r.ID, r.Version = id, 1
	} else {
		old, ok, err := t.getRelease(rel, r.ID)
		if err != nil {
			return commands.Release{}, err
		}
		if !ok {
			return commands.Release{}, commands.Errorf(commands.ENOTFOUND, "There is no release %d.", r.ID)
		}
		if old.Version != r.Version {
			return commands.Release{}, commands.Errorf(commands.ECONFLICT,
				"%s changed while your command ran (version %d, not %d): try again.", old.Ticket, old.Version, r.Version)
		}
		r.Version++
		indexed, wasOpen = old.Ticket == r.Ticket, old.State.Open()
		if old.Ticket != r.Ticket {
			if err := idx.Delete(ticketKey(old.Ticket, r.ID)); err != nil {
				return commands.Release{}, fmt.Errorf("storage: unindex release %d: %w", r.ID, err)
			}
		}
	}

	v, err := json.Marshal(r)
	if err != nil {
		return commands.Release{}, fmt.Errorf("storage: encode release %d: %w", r.ID, err)
	}
	key := encodeID(r.ID)
	if err := rel.Put(key, v); err != nil {
		return commands.Release{}, fmt.Errorf("storage: put release %d: %w", r.ID, err)
	}

	if !indexed {
		if err := idx.Put(ticketKey(r.Ticket, r.ID), []byte{}); err != nil {
			return commands.Release{}, fmt.Errorf("storage: index release %d: %w", r.ID, err)
		}
	}
	switch {
	case r.State.Open() && !wasOpen:
		err = open.Put(key, []byte{})
	case !r.State.Open() && wasOpen:
		err = open.Delete(key)
	}
	if err != nil {
		return commands.Release{}, fmt.Errorf("storage: open index of release %d: %w", r.ID, err)
	}
	return r, nil
}

// Locks returns every lock, ordered by component, then release.
func (t *tx) Locks() ([]commands.Lock, error) {
	b, err := t.bucket(bucketLocks)
	if err != nil {
		return nil, err
	}
	var out []commands.Lock
	err = b.ForEach(func(k, v []byte) error {
		var l commands.Lock
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("storage: decode lock %q: %w", k, err)
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutLock adds or replaces the lock keyed by (Component, Release), or the
// freeze keyed by (Component, Env).
func (t *tx) PutLock(l commands.Lock) error {
	if err := checkName("component", l.Component); err != nil {
		return err
	}
	if err := checkEnv(l.Env); err != nil {
		return err
	}
	b, err := t.bucket(bucketLocks)
	if err != nil {
		return err
	}
	v, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("storage: encode lock of %s: %w", l.Component, err)
	}
	if err := b.Put(lockKey(l.Component, l.Release, l.Env), v); err != nil {
		return fmt.Errorf("storage: put lock of %s: %w", l.Component, err)
	}
	return nil
}

// DeleteLock removes the lock keyed by (component, release), or the freeze
// keyed by (component, env) when release is 0, if any.
func (t *tx) DeleteLock(component string, release uint64, env string) error {
	b, err := t.bucket(bucketLocks)
	if err != nil {
		return err
	}
	if err := b.Delete(lockKey(component, release, env)); err != nil {
		return fmt.Errorf("storage: delete lock of %s: %w", component, err)
	}
	return nil
}

// AppendAudit seals e after the chain's head and stores it.
func (t *tx) AppendAudit(e commands.AuditEntry) (commands.AuditEntry, error) {
	b, err := t.bucket(bucketAudit)
	if err != nil {
		return commands.AuditEntry{}, err
	}
	seq, hash, err := t.AuditHead()
	if err != nil {
		return commands.AuditEntry{}, err
	}
	e = commands.Seal(e, seq, hash)
	v, err := json.Marshal(e)
	if err != nil {
		return commands.AuditEntry{}, fmt.Errorf("storage: encode audit entry %d: %w", e.Seq, err)
	}
	if err := b.Put(encodeID(e.Seq), v); err != nil {
		return commands.AuditEntry{}, fmt.Errorf("storage: put audit entry %d: %w", e.Seq, err)
	}
	return e, nil
}

// AuditHead returns the last entry's seq and hash, or 0 and GenesisHash.
func (t *tx) AuditHead() (uint64, string, error) {
	b, err := t.bucket(bucketAudit)
	if err != nil {
		return 0, "", err
	}
	k, v := b.Cursor().Last()
	if k == nil {
		return 0, commands.GenesisHash, nil
	}
	var e commands.AuditEntry
	if err := decodeAudit(v, &e); err != nil {
		return 0, "", fmt.Errorf("storage: decode audit entry %d: %w", decodeID(k), err)
	}
	if e.Seq != decodeID(k) {
		return 0, "", fmt.Errorf("storage: audit entry stored under seq %d says seq %d: the audit log was tampered with", decodeID(k), e.Seq)
	}
	return e.Seq, e.Hash, nil
}

// Event returns the inbox record of an event ID and whether there is one.
func (t *tx) Event(id string) (commands.InboxEvent, bool, error) {
	if err := t.flushEvent(); err != nil {
		return commands.InboxEvent{}, false, err
	}
	b, err := t.bucket(bucketInbox)
	if err != nil {
		return commands.InboxEvent{}, false, err
	}
	e, _, ok, err := t.getEvent(b, id)
	return e, ok, err
}

// getEvent returns inbox record id, decoded or from the cache, and its
// stored bytes.
func (t *tx) getEvent(b *bolt.Bucket, id string) (commands.InboxEvent, []byte, bool, error) {
	v := b.Get([]byte(id))
	if v == nil {
		return commands.InboxEvent{}, nil, false, nil
	}
	if e, ok := t.ec.get(id, v); ok {
		return e, v, true, nil
	}
	var e commands.InboxEvent
	if err := json.Unmarshal(v, &e); err != nil {
		return commands.InboxEvent{}, nil, false, fmt.Errorf("storage: decode inbox event %q: %w", id, err)
	}
	if len(v) <= eventCacheBytes {
		t.ec.put(id, v, e)
	}
	return e, v, true, nil
}

// PutEvent adds or replaces an inbox record, keeping the index of pending
// events in step. Processed events have no index: only the prune at
// start-up looks for them, by walking the inbox. The record is written when
// the transaction ends (or before anything reads the inbox), with the
// effects emitted after it in the transaction and those the record carried
// already: see outbox.go.
func (t *tx) PutEvent(e commands.InboxEvent) error {
	if e.ID == "" {
		return commands.Errorf(commands.EINVALID, "An inbox event needs an ID.")
	}
	if err := t.writable(); err != nil {
		return err
	}
	if err := t.flushEvent(); err != nil {
		return err
	}
	b, err := t.bucket(bucketInbox)
	if err != nil {
		return err
	}
	pending, err := t.bucket(bucketPending)
	if err != nil {
		return err
	}
	old, v, found, err := t.getEvent(b, e.ID)
	if err != nil {
		return err
	}
	var carried []json.RawMessage
	if found {
		if carried, err = recordEffects([]byte(e.ID), v); err != nil {
			return err
		}
		for i := range carried {
			carried[i] = bytes.Clone(carried[i]) // they alias the file's page
		}
		if !old.Processed {
			if err := pending.Delete(inboxIndexKey(old)); err != nil {
				return fmt.Errorf("storage: unindex inbox event %q: %w", e.ID, err)
			}
		}
	}
	if !e.Processed {
		if err := pending.Put(inboxIndexKey(e), []byte{}); err != nil {
			return fmt.Errorf("storage: index inbox event %q: %w", e.ID, err)
		}
	}
	t.ob.ev = &bufferedEvent{e: e, outbox: carried, carries: len(carried) > 0, dirty: true}
	return nil
}

// PendingEvents returns the unprocessed inbox records, oldest first.
func (t *tx) PendingEvents() ([]commands.InboxEvent, error) {
	if err := t.flushEvent(); err != nil {
		return nil, err
	}
	b, err := t.bucket(bucketInbox)
	if err != nil {
		return nil, err
	}
	idx, err := t.bucket(bucketPending)
	if err != nil {
		return nil, err
	}
	var out []commands.InboxEvent
	c := idx.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) < 12 {
			return nil, fmt.Errorf("storage: bad pending inbox key %q", k)
		}
		id := string(k[12:])
		e, _, ok, err := t.getEvent(b, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("storage: pending index names inbox event %q, which does not exist", id)
		}
		out = append(out, e)
	}
	return out, nil
}

// PruneEvents deletes the processed records received before before, and
// returns how many it deleted. It walks the whole inbox: it runs once, at
// start-up (Service.Recover), and an index kept for it would cost every
// command's commit more than the walk costs there. The undelivered effects
// a deleted record carries move to the outbox bucket, under the same IDs:
// they stay pending, in their order.
func (t *tx) PruneEvents(before time.Time) (int, error) {
	if err := t.flushEvent(); err != nil {
		return 0, err
	}
	b, err := t.bucket(bucketInbox)
	if err != nil {
		return 0, err
	}
	var (
		keys  [][]byte
		moved []json.RawMessage
	)
	err = b.ForEach(func(k, v []byte) error {
		var e struct {
			Received  time.Time `json:"received"`
			Processed bool      `json:"processed"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("storage: decode inbox event %q: %w", k, err)
		}
		if !e.Processed || !e.Received.Before(before) {
			return nil
		}
		effects, err := recordEffects(k, v)
		if err != nil {
			return err
		}
		for _, raw := range effects {
			moved = append(moved, bytes.Clone(raw)) // put after the delete
		}
		if len(effects) > 0 {
			t.ob.carrying--
		}
		keys = append(keys, bytes.Clone(k))
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Deleting while a bbolt cursor walks the same bucket skips keys.
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("storage: delete inbox event %q: %w", k, err)
		}
		if ev := t.ob.ev; ev != nil && ev.e.ID == string(k) {
			t.ob.ev = nil // an Emit after this must not write it back
		}
	}
	if len(moved) > 0 {
		out, err := t.bucket(bucketOutbox)
		if err != nil {
			return 0, err
		}
		for _, raw := range moved {
			id, err := effectID(raw)
			if err != nil {
				return 0, err
			}
			if err := out.Put(encodeID(id), raw); err != nil {
				return 0, fmt.Errorf("storage: move effect %d to the outbox: %w", id, err)
			}
			t.ob.moved = append(t.ob.moved, id)
		}
	}
	return len(keys), nil
}
