package storage

import (
	"bytes"
	"cmp"
	"maps"
	"slices"
	"sync"

	"github.com/dobrobot/dobrobot/commands"
)

// decodeCacheMax bounds each decode cache; it keeps two generations of
// half as many each, and drops the older when the newer is full.
// Every command reads the open releases, a few dozen in a busy queue, and
// the outbox holds the effects not yet delivered, a few in a steady stream
// and up to a burst's worth behind a paced channel.
const decodeCacheMax = 4096

// decodeCache keeps values decoded from the file, each with the exact bytes
// it was decoded from, keyed by ID. Every command reads the whole open
// queue (Tx.Open), most inside the write transaction, and decoding the
// releases' JSON was the larger part of its time; the sender reads every
// effect a command emits, and decoding its spans was the larger part of the
// bot's CPU in a burst. A value whose stored bytes are unchanged is copied
// from here instead. A hit compares the bytes, so the cache can never return
// anything but what decoding the file would: an entry put by a transaction
// that was rolled back is a miss, or, with the same bytes, the same value.
type decodeCache[K comparable, T any] struct {
	clone func(T) T // copies what a T refers to, so that the caller owns it
	max   int       // at most this many entries; 0: decodeCacheMax

	// Two generations: a full m becomes old, and old is dropped. Starting
	// over from empty instead lost, in a burst, the inbox records received
	// and not yet handled, each then decoded again.
	mu     sync.Mutex
	m, old map[K]cached[T]
}

// entry returns id's entry, from either generation. c.mu is held.
func (c *decodeCache[K, T]) entry(id K) (cached[T], bool) {
	if e, ok := c.m[id]; ok {
		return e, true
	}
	e, ok := c.old[id]
	return e, ok
}

type cached[T any] struct {
	raw []byte
	val T
}

// get returns the value decoded from raw, if it is cached.
func (c *decodeCache[K, T]) get(id K, raw []byte) (T, bool) {
	c.mu.Lock()
	e, ok := c.entry(id)
	c.mu.Unlock()
	if !ok || !bytes.Equal(e.raw, raw) {
		var zero T
		return zero, false
	}
	return c.clone(e.val), true
}

// put caches v as decoded from raw, which it copies.
func (c *decodeCache[K, T]) put(id K, raw []byte, v T) { c.keep(id, bytes.Clone(raw), v) }

// keep caches v as decoded from raw, which it keeps: the caller never
// changes raw again (the outbox's encoded value, which bbolt too keeps
// until the commit).
func (c *decodeCache[K, T]) keep(id K, raw []byte, v T) { c.keepOwned(id, raw, c.clone(v)) }

// keepOwned is keep for a v that the caller owns no longer: it is cached
// as it is, not copied.
func (c *decodeCache[K, T]) keepOwned(id K, raw []byte, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[K]cached[T])
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= cmp.Or(c.max, decodeCacheMax)/2 {
		c.old, c.m = c.m, make(map[K]cached[T], len(c.m))
	}
	delete(c.old, id)
	c.m[id] = cached[T]{raw: raw, val: v}
}

// lookup returns the value cached for id without comparing its bytes with
// the file's. Only the effect cache uses it: an effect is cached only once
// committed (or read from the file), never changes after, and its ID is
// never given to another effect, so the ID alone names its bytes.
func (c *decodeCache[K, T]) lookup(id K) (T, bool) {
	c.mu.Lock()
	e, ok := c.entry(id)
	c.mu.Unlock()
	if !ok {
		var zero T
		return zero, false
	}
	return c.clone(e.val), true
}

// forget drops the values of ids, deleted from the file.
func (c *decodeCache[K, T]) forget(ids ...K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		delete(c.m, id)
		delete(c.old, id)
	}
}

// shareEffect is the effect cache's clone: effects are never changed once
// emitted (commands.Store's Pending and Emit say so), so the cache and every
// reader share one; a long reply's Text is a thousand spans, and copying it
// in and out of the cache was a tenth of the bot's allocations. Its slices
// are clipped to their length, so that appending to one (the console adds
// an export's path to its Text) copies it rather than write past the end
// into memory another reader sees.
func shareEffect(e commands.Effect) commands.Effect {
	e.Text = e.Text[:len(e.Text):len(e.Text)]
	e.Buttons = e.Buttons[:len(e.Buttons):len(e.Buttons)]
	return e
}

// eventCacheMax bounds the inbox records' cache, and eventCacheBytes the
// records it keeps: the records of events received and not yet handled,
// each a few hundred bytes; a record that carries a long reply until it is
// delivered is read by the sender, not from here. 512 covers a steady
// stream and a few hundred envelopes of a burst; 2,048 (a whole burst of
// make bench) grew the bot's heap by 3 MB in figure 6 for 3 % of a burst's
// CPU.
const (
	eventCacheMax   = 512
	eventCacheBytes = 2048
)

// sameEvent is the inbox records' clone: an InboxEvent refers to no memory.
func sameEvent(e commands.InboxEvent) commands.InboxEvent { return e }

// cloneRelease copies what a Release refers to, so that the caller owns its
// copy. TestCloneReleaseFields fails when Release gains a field this does
// not copy.
func cloneRelease(r commands.Release) commands.Release {
	r.Components = slices.Clone(r.Components)
	r.Locks = slices.Clone(r.Locks)
	r.TicketComponents = slices.Clone(r.TicketComponents)
	r.Approvals = slices.Clone(r.Approvals)
	r.FixVersions = slices.Clone(r.FixVersions)
	r.Replaced = maps.Clone(r.Replaced)
	if r.Running != nil {
		run := *r.Running
		r.Running = &run
	}
	if r.LastHook != nil {
		h := *r.LastHook
		r.LastHook = &h
	}
	if r.CI != nil {
		ci := *r.CI
		r.CI = &ci
	}
	return r
}
