package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
)

// An event's effects are stored with it (schema 5, issue 13). A command's
// transaction puts its inbox record (processed) and then emits its effects;
// those effects go inside that record, under the key "outbox", instead of
// into the outbox bucket. A transition then writes one B+tree fewer (the
// outbox's root, branch and leaf pages, each a write the commit's fsync
// waits for). Effects emitted with no event put before them in the
// transaction (hook results, alerts, checkpoints) go to the outbox bucket as
// before. Effect IDs come from one counter in the meta bucket, which lives
// inline in the root page and so costs no page of its own. Which effects are
// pending, and where each is, is kept in memory (effectIndex), built from
// the file on the first Pending, PendingAfter or Delivered.

// Meta keys of the outbox.
var (
	// keyEffectSeq holds the last effect ID given out (8 bytes, big-endian).
	keyEffectSeq = []byte("effect_seq")
	// keyCarrying holds how many inbox records carry undelivered effects
	// (8 bytes, big-endian): when none do, building the index skips the
	// walk of the inbox.
	keyCarrying = []byte("events_with_effects")
)

// recordOutbox is how encodeRecord writes the start of a record's effects.
// Inside a JSON string a quote is always escaped, and no other object in a
// record has an "outbox" key, so these bytes appear in a record only there.
var recordOutbox = []byte(`,"outbox":[`)

// migrateEffectsWithEvents upgrades schema 3 to 4: effect IDs now come
// from a counter in the meta bucket, which starts where the outbox bucket's
// sequence is, so that no ID is given out twice; no record carries effects
// yet.
func migrateEffectsWithEvents(tx *bolt.Tx) error {
	meta, out := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox)
	if meta == nil || out == nil {
		return fmt.Errorf("the meta or outbox bucket is missing")
	}
	if err := meta.Put(keyEffectSeq, encodeID(out.Sequence())); err != nil {
		return err
	}
	return meta.Put(keyCarrying, encodeID(0))
}

// eventRecord is an inbox record as stored: the event, then the effects
// emitted with it that are not delivered yet (each its outbox JSON, as
// encodeEffect wrote it). Decoding a record into a commands.InboxEvent
// ignores them.
type eventRecord struct {
	commands.InboxEvent
	Outbox []json.RawMessage `json:"outbox,omitempty"`
}

// encodeRecord returns the stored form of an inbox record: e's JSON with
// the effects appended as its last key, copied as they are (json.Marshal
// would check and compact each again).
func encodeRecord(e commands.InboxEvent, outbox []json.RawMessage) ([]byte, error) {
	v, err := json.Marshal(e)
	if err != nil || len(outbox) == 0 {
		return v, err
	}
	n := len(v) + len(`,"outbox":[]`) + len(outbox)
	for _, raw := range outbox {
		n += len(raw)
	}
	b := make([]byte, 0, n)
	b = append(b, v[:len(v)-1]...)
	b = append(b, `,"outbox":[`...)
	for i, raw := range outbox {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, raw...)
	}
	return append(b, ']', '}'), nil
}

// decodeRecord decodes a stored inbox record.
func decodeRecord(id, v []byte) (eventRecord, error) {
	var r eventRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return eventRecord{}, fmt.Errorf("storage: decode inbox event %q: %w", id, err)
	}
	return r, nil
}

// recordEffects returns the effects a stored inbox record carries, without
// decoding the record: they are read and rewritten far more often than the
// event. What it returns may alias v.
func recordEffects(id, v []byte) ([]json.RawMessage, error) {
	if !bytes.Contains(v, recordOutbox) {
		return nil, nil
	}
	if _, effects, ok := splitRecord(v); ok {
		return effects, nil
	}
	r, err := decodeRecord(id, v)
	return r.Outbox, err
}

// splitRecord splits a record as encodeRecord writes it into the event's
// JSON without its closing brace and the effects it carries, scanning only
// for the effects' boundaries (strings, nesting), not decoding them. It
// reports false for anything else.
func splitRecord(v []byte) (head []byte, effects []json.RawMessage, ok bool) {
	i := bytes.Index(v, recordOutbox)
	if i < 0 {
		if len(v) < 2 || v[len(v)-1] != '}' {
			return nil, nil, false
		}
		return v[:len(v)-1], nil, true
	}
	if !bytes.HasSuffix(v, []byte("]}")) {
		return nil, nil, false
	}
	body := v[i+len(recordOutbox) : len(v)-2]
	depth, start := 0, 0
	inString, escaped := false, false
	for j, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth < 0 {
				return nil, nil, false
			}
		case ',':
			if depth == 0 {
				effects = append(effects, body[start:j])
				start = j + 1
			}
		}
	}
	if depth != 0 || inString || start >= len(body) {
		return nil, nil, false
	}
	return v[:i], append(effects, body[start:]), true
}

// withoutEffects returns the record v without the effects whose IDs drop
// says, and how many it keeps; nil if it carries none of them.
func withoutEffects(key, v []byte, drop func(id uint64) bool) (nv []byte, dropped []uint64, kept int, err error) {
	head, effects, ok := splitRecord(v)
	if !ok {
		r, err := decodeRecord(key, v)
		if err != nil {
			return nil, nil, 0, err
		}
		effects = r.Outbox
	}
	var keep []json.RawMessage
	for _, raw := range effects {
		id, err := effectID(raw)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("storage: an effect of inbox event %q: %w", key, err)
		}
		if drop(id) {
			dropped = append(dropped, id)
		} else {
			keep = append(keep, raw)
		}
	}
	if len(dropped) == 0 {
		return nil, nil, len(keep), nil
	}
	if !ok {
		r, _ := decodeRecord(key, v)
		nv, err = encodeRecord(r.InboxEvent, keep)
		return nv, dropped, len(keep), err
	}
	// The event's bytes are kept as they are: no decoding, no encoding.
	n := len(head) + 1
	if len(keep) > 0 {
		n += len(recordOutbox) + 1 + len(keep)
		for _, raw := range keep {
			n += len(raw)
		}
	}
	nv = append(make([]byte, 0, n), head...)
	if len(keep) > 0 {
		nv = append(nv, recordOutbox...)
		for i, raw := range keep {
			if i > 0 {
				nv = append(nv, ',')
			}
			nv = append(nv, raw...)
		}
		nv = append(nv, ']')
	}
	return append(nv, '}'), dropped, len(keep), nil
}

// withoutOutbox returns the record v, as encodeRecord writes it, without
// any of its effects, and the IDs of drop, all of which the caller knows to
// be every effect v carries; nil if v is not written that way.
func withoutOutbox(v []byte, drop map[uint64]bool) (nv []byte, dropped []uint64) {
	i := bytes.Index(v, recordOutbox)
	if i < 0 || !bytes.HasSuffix(v, []byte("]}")) {
		return nil, nil
	}
	nv = append(append(make([]byte, 0, i+1), v[:i]...), '}')
	dropped = make([]uint64, 0, len(drop))
	for id := range drop {
		dropped = append(dropped, id)
	}
	slices.Sort(dropped)
	return nv, dropped
}

// effectID returns the ID of an effect's stored JSON. encodeEffect writes
// the ID first; anything else is decoded.
func effectID(raw []byte) (uint64, error) {
	const prefix = `{"id":`
	if bytes.HasPrefix(raw, []byte(prefix)) {
		rest := raw[len(prefix):]
		end := bytes.IndexAny(rest, ",}")
		if end > 0 {
			if id, err := strconv.ParseUint(string(rest[:end]), 10, 64); err == nil {
				return id, nil
			}
		}
	}
	var e struct {
		ID uint64 `json:"id"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return 0, fmt.Errorf("storage: decode stored effect: %w", err)
	}
	return e.ID, nil
}

// bufferedEvent is the inbox record a read-write transaction put last: the
// effects emitted after it are added to it, and it is written once, when
// the transaction ends or before anything reads the inbox.
type bufferedEvent struct {
	e       commands.InboxEvent
	outbox  []json.RawMessage
	carries bool // the stored record carries effects (counted in keyCarrying)
	dirty   bool // not written since it last changed
}

// emitted is an effect emitted in a transaction, for the index and the
// cache once the transaction has committed.
type emitted struct {
	id    uint64
	event string // the inbox record it is stored in; "" for the outbox bucket
	raw   []byte
	e     commands.Effect
}

// txOutbox is what a read-write transaction keeps for the outbox until it
// ends.
type txOutbox struct {
	seq       uint64
	seqRead   bool
	seqDirty  bool
	carrying  int64 // change to keyCarrying
	ev        *bufferedEvent
	emitted   []emitted
	delivered []uint64
	moved     []uint64 // from a pruned inbox record to the outbox bucket
}

func (t *tx) writable() error {
	if t.done {
		return errTxDone
	}
	if !t.btx.Writable() {
		return fmt.Errorf("storage: %w", bolt.ErrTxNotWritable)
	}
	return nil
}

// nextEffectID gives out the next effect ID, read from the meta bucket once
// per transaction and written back when it ends.
func (t *tx) nextEffectID() (uint64, error) {
	if !t.ob.seqRead {
		meta, err := t.bucket(bucketMeta)
		if err != nil {
			return 0, err
		}
		if v := meta.Get(keyEffectSeq); v != nil {
			t.ob.seq = decodeID(v)
		} else {
			// A file created by this version, before its first effect:
			// start where the outbox bucket's own sequence is.
			out, err := t.bucket(bucketOutbox)
			if err != nil {
				return 0, err
			}
			t.ob.seq = out.Sequence()
		}
		t.ob.seqRead = true
	}
	t.ob.seq++
	t.ob.seqDirty = true
	return t.ob.seq, nil
}

// Emit stores e under the next effect ID: inside the inbox record put last
// in this transaction if there is one, else in the outbox bucket. It is
// pending once the transaction commits.
func (t *tx) Emit(e commands.Effect) (commands.Effect, error) {
	if err := t.writable(); err != nil {
		return commands.Effect{}, err
	}
	id, err := t.nextEffectID()
	if err != nil {
		return commands.Effect{}, fmt.Errorf("storage: next effect ID: %w", err)
	}
	e.ID = id
	v, err := encodeEffect(e)
	if err != nil {
		return commands.Effect{}, fmt.Errorf("storage: encode effect %d: %w", id, err)
	}
	var event string
	if ev := t.ob.ev; ev != nil {
		ev.outbox = append(ev.outbox, v)
		ev.dirty = true
		event = ev.e.ID
	} else {
		b, err := t.bucket(bucketOutbox)
		if err != nil {
			return commands.Effect{}, err
		}
		if err := b.Put(encodeID(id), v); err != nil {
			return commands.Effect{}, fmt.Errorf("storage: put effect %d: %w", id, err)
		}
	}
	// The sender reads it next, at once: once committed, it need not
	// decode what was just encoded.
	t.ob.emitted = append(t.ob.emitted, emitted{id: id, event: event, raw: v, e: shareEffect(e)})
	return e, nil
}

// flushEvent writes the buffered inbox record if it changed since it was
// last written.
func (t *tx) flushEvent() error {
	ev := t.ob.ev
	if ev == nil || !ev.dirty {
		return nil
	}
	b, err := t.bucket(bucketInbox)
	if err != nil {
		return err
	}
	v, err := encodeRecord(ev.e, ev.outbox)
	if err != nil {
		return fmt.Errorf("storage: encode inbox event %q: %w", ev.e.ID, err)
	}
	if err := b.Put([]byte(ev.e.ID), v); err != nil {
		return fmt.Errorf("storage: put inbox event %q: %w", ev.e.ID, err)
	}
	if len(v) <= eventCacheBytes {
		// v is bbolt's until the commit and never changed: kept as it is.
		t.ec.keep(ev.e.ID, v, ev.e)
	} else {
		t.ec.forget(ev.e.ID) // what it holds is no longer in the file
	}
	if !ev.carries && len(ev.outbox) > 0 {
		ev.carries = true
		t.ob.carrying++
	}
	ev.dirty = false
	return nil
}

// finish writes what the transaction buffered: the last inbox record and
// the meta counters. Update calls it when fn succeeded, before the commit.
func (t *tx) finish() error {
	if err := t.flushEvent(); err != nil {
		return err
	}
	if !t.ob.seqDirty && t.ob.carrying == 0 {
		return nil
	}
	meta, err := t.bucket(bucketMeta)
	if err != nil {
		return err
	}
	if t.ob.seqDirty {
		if err := meta.Put(keyEffectSeq, encodeID(t.ob.seq)); err != nil {
			return fmt.Errorf("storage: put effect sequence: %w", err)
		}
	}
	if t.ob.carrying != 0 {
		n := int64(decodeID(meta.Get(keyCarrying))) + t.ob.carrying
		if n < 0 {
			return fmt.Errorf("storage: the count of inbox events carrying effects went below zero (%d)", n)
		}
		if err := meta.Put(keyCarrying, encodeID(uint64(n))); err != nil {
			return fmt.Errorf("storage: put the count of inbox events carrying effects: %w", err)
		}
	}
	return nil
}

// effectIndex is the in-memory index of pending effects: every effect
// committed and not delivered, by ID, with where it is stored. It is built
// from the file on first use and then kept in step by each commit that
// emits or delivers effects.
type effectIndex struct {
	mu    sync.Mutex
	built bool
	ids   []uint64          // ascending
	where map[uint64]string // the inbox record's event ID; "" for the outbox bucket
	// carried is how many pending effects each inbox record holds, for
	// Delivered to see, without a walk of where, that a batch delivers
	// all of a record's.
	carried map[string]int
}

// set records that effect id is pending in event's record ("" for the
// outbox bucket), wherever it was before. ix.mu is held.
func (ix *effectIndex) set(id uint64, event string) {
	ix.remove(id)
	ix.where[id] = event
	if event != "" {
		ix.carried[event]++
	}
}

// remove forgets effect id. ix.mu is held.
func (ix *effectIndex) remove(id uint64) {
	event, ok := ix.where[id]
	if !ok {
		return
	}
	delete(ix.where, id)
	if event != "" {
		if ix.carried[event]--; ix.carried[event] <= 0 {
			delete(ix.carried, event)
		}
	}
}

// commit commits t and, if it emitted or delivered effects, brings the
// index and the effect cache up to date. Update calls it holding the write
// lock, so that nothing commits between. The index's lock is held from
// before the commit until the index has it: a reader that sees the commit
// in the file (a processed event) and then asks what is pending sees its
// effects, as it would in one read snapshot.
func (db *DB) commit(t *tx) error {
	ob := &t.ob
	if len(ob.emitted) == 0 && len(ob.delivered) == 0 && len(ob.moved) == 0 {
		return t.btx.Commit()
	}
	ix := &db.pending
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := t.btx.Commit(); err != nil {
		return err
	}
	for _, em := range ob.emitted {
		db.effects.keepOwned(em.id, em.raw, em.e)
	}
	db.effects.forget(ob.delivered...)
	if !ix.built {
		return nil // built from the file later, this commit included
	}
	for _, em := range ob.emitted {
		ix.set(em.id, em.event)
		// IDs are given out under the write lock and committed in order.
		if n := len(ix.ids); n == 0 || ix.ids[n-1] < em.id {
			ix.ids = append(ix.ids, em.id)
		} else if i, found := slices.BinarySearch(ix.ids, em.id); !found {
			ix.ids = slices.Insert(ix.ids, i, em.id)
		}
	}
	for _, id := range ob.moved {
		if _, ok := ix.where[id]; ok {
			ix.set(id, "")
		}
	}
	if len(ob.delivered) > 0 {
		for _, id := range ob.delivered {
			ix.remove(id)
		}
		ix.ids = slices.DeleteFunc(ix.ids, func(id uint64) bool { _, ok := ix.where[id]; return !ok })
	}
	return nil
}

// buildIndex builds the index of pending effects from the file, once. It
// holds the write lock meanwhile, so that no commit falls between the walk
// and the index.
func (db *DB) buildIndex(ctx context.Context) error {
	ix := &db.pending
	ix.mu.Lock()
	built := ix.built
	ix.mu.Unlock()
	if built {
		return nil
	}
	if err := db.wlock.lock(ctx, false); err != nil {
		return err
	}
	defer db.wlock.unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.built {
		return nil
	}
	where := map[uint64]string{}
	err := db.bolt.View(func(btx *bolt.Tx) error {
		out, inbox, meta := btx.Bucket(bucketOutbox), btx.Bucket(bucketInbox), btx.Bucket(bucketMeta)
		if out == nil || inbox == nil || meta == nil {
			return fmt.Errorf("storage: database %s is missing the outbox, inbox or meta bucket", db.path)
		}
		c := out.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			where[decodeID(k)] = ""
		}
		if decodeID(meta.Get(keyCarrying)) == 0 {
			return nil
		}
		return inbox.ForEach(func(k, v []byte) error {
			raws, err := recordEffects(k, v)
			if err != nil {
				return err
			}
			for _, raw := range raws {
				id, err := effectID(raw)
				if err != nil {
					return fmt.Errorf("storage: an effect of inbox event %q: %w", k, err)
				}
				where[id] = string(k)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	ids := make([]uint64, 0, len(where))
	for id := range where {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	carried := map[string]int{}
	for _, event := range where {
		if event != "" {
			carried[event]++
		}
	}
	ix.ids, ix.where, ix.carried, ix.built = ids, where, carried, true
	return nil
}

// Pending returns up to max pending effects, oldest first; max <= 0 returns
// them all.
func (db *DB) Pending(ctx context.Context, max int) ([]commands.Effect, error) {
	return db.PendingAfter(ctx, 0, max) // effect IDs start at 1
}

// PendingAfter is Pending for the effects whose ID is greater than after,
// oldest first: a sender that remembers the last effect it took reads only
// the new ones, not the whole backlog of a paced channel at every wake-up.
// Effects come from the cache when they are there (an effect never changes
// once committed), and are read from the file otherwise.
func (db *DB) PendingAfter(ctx context.Context, after uint64, max int) ([]commands.Effect, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := db.buildIndex(ctx); err != nil {
		return nil, err
	}
	type loc struct {
		id    uint64
		event string
	}
	ix := &db.pending
	ix.mu.Lock()
	i, _ := slices.BinarySearch(ix.ids, after+1)
	n := len(ix.ids) - i
	if max > 0 && n > max {
		n = max
	}
	if n == 0 {
		ix.mu.Unlock()
		return nil, nil
	}
	want := make([]loc, n)
	for j := range want {
		id := ix.ids[i+j]
		want[j] = loc{id, ix.where[id]}
	}
	ix.mu.Unlock()

	out := make([]commands.Effect, n)
	found := make([]bool, n)
	var missed bool
	for j, w := range want {
		out[j], found[j] = db.effects.lookup(w.id)
		missed = missed || !found[j]
	}
	if !missed {
		return out, nil
	}
	// Read what the cache misses (after a restart, or once it started
	// over) from the file, keeping it here too: the cache may start over
	// again while this reads.
	loaded := map[uint64]commands.Effect{}
	err := db.View(ctx, func(t commands.Tx) error {
		out, err := t.(*tx).bucket(bucketOutbox)
		if err != nil {
			return err
		}
		inbox, err := t.(*tx).bucket(bucketInbox)
		if err != nil {
			return err
		}
		for j, w := range want {
			if found[j] {
				continue
			}
			if _, ok := loaded[w.id]; ok {
				continue
			}
			if w.event == "" {
				if v := out.Get(encodeID(w.id)); v != nil {
					if err := db.loadEffect(w.id, v, loaded); err != nil {
						return err
					}
				}
				continue
			}
			// Load every effect of the record: the others are likely
			// wanted next.
			raws, err := recordEffects([]byte(w.event), inbox.Get([]byte(w.event)))
			if err != nil {
				return err
			}
			for _, raw := range raws {
				id, err := effectID(raw)
				if err != nil {
					return fmt.Errorf("storage: an effect of inbox event %q: %w", w.event, err)
				}
				if err := db.loadEffect(id, raw, loaded); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// An effect delivered meanwhile is no longer in the file: leave it out.
	kept := out[:0]
	for j, w := range want {
		if found[j] {
			kept = append(kept, out[j])
		} else if e, ok := loaded[w.id]; ok {
			kept = append(kept, e)
		}
	}
	return kept, nil
}

// loadEffect decodes a committed effect's stored JSON into the cache and
// into loaded.
func (db *DB) loadEffect(id uint64, raw []byte, loaded map[uint64]commands.Effect) error {
	var e commands.Effect
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("storage: decode effect %d: %w", id, err)
	}
	db.effects.put(id, raw, e)
	loaded[id] = e
	return nil
}

// Delivered removes effects from the outbox bucket, or from the inbox
// records they are stored in (each record rewritten once); unknown IDs are
// ignored.
func (db *DB) Delivered(ctx context.Context, ids ...uint64) error {
	if len(ids) == 0 {
		return ctx.Err()
	}
	if err := db.buildIndex(ctx); err != nil {
		return err
	}
	return db.Update(ctx, func(ct commands.Tx) error {
		t := ct.(*tx)
		// The index is read under the write lock: no commit changes it
		// meanwhile.
		byEvent := map[string]map[uint64]bool{}
		var events []string
		ix := &db.pending
		ix.mu.Lock()
		for _, id := range ids {
			event, ok := ix.where[id]
			switch {
			case !ok:
				continue
			case event == "":
				t.ob.delivered = append(t.ob.delivered, id)
			default:
				if byEvent[event] == nil {
					byEvent[event] = map[uint64]bool{}
					events = append(events, event)
				}
				byEvent[event][id] = true
			}
		}
		// A record all of whose pending effects are delivered is cut at
		// its outbox key, not scanned effect by effect (a long reply is
		// tens of KB).
		carried := make(map[string]int, len(events))
		for _, event := range events {
			carried[event] = ix.carried[event]
		}
		ix.mu.Unlock()

		if len(t.ob.delivered) > 0 {
			b, err := t.bucket(bucketOutbox)
			if err != nil {
				return err
			}
			for _, id := range t.ob.delivered {
				if err := b.Delete(encodeID(id)); err != nil {
					return fmt.Errorf("storage: delete outbox effect %d: %w", id, err)
				}
			}
		}
		if len(events) == 0 {
			return nil
		}
		inbox, err := t.bucket(bucketInbox)
		if err != nil {
			return err
		}
		for _, event := range events {
			key := []byte(event)
			v := inbox.Get(key)
			if v == nil {
				return fmt.Errorf("storage: inbox event %q, which holds pending effects, is missing", event)
			}
			drop := byEvent[event]
			var nv []byte
			var dropped []uint64
			var kept int
			if carried[event] == len(drop) {
				nv, dropped = withoutOutbox(v, drop)
			}
			if nv == nil {
				nv, dropped, kept, err = withoutEffects(key, v, func(id uint64) bool { return drop[id] })
				if err != nil {
					return err
				}
			}
			if len(dropped) == 0 {
				continue
			}
			t.ob.delivered = append(t.ob.delivered, dropped...)
			if err := inbox.Put(key, nv); err != nil {
				return fmt.Errorf("storage: put inbox event %q: %w", event, err)
			}
			if kept == 0 {
				t.ob.carrying--
			}
		}
		return nil
	})
}
