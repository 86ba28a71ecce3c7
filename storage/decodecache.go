package storage

import (
	"bytes"
	"maps"
	"slices"
	"sync"

	"github.com/dobrobot/dobrobot/commands"
)

// decodeCacheMax bounds each decode cache; when one is full it starts over.
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
type decodeCache[T any] struct {
	clone func(T) T // copies what a T refers to, so that the caller owns it

	mu sync.Mutex
	m  map[uint64]cached[T]
}

type cached[T any] struct {
	raw []byte
	val T
}

// get returns the value decoded from raw, if it is cached.
func (c *decodeCache[T]) get(id uint64, raw []byte) (T, bool) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || !bytes.Equal(e.raw, raw) {
		var zero T
		return zero, false
	}
	return c.clone(e.val), true
}

// put caches v as decoded from raw, which it copies.
func (c *decodeCache[T]) put(id uint64, raw []byte, v T) { c.keep(id, bytes.Clone(raw), v) }

// keep caches v as decoded from raw, which it keeps: the caller never
// changes raw again (the outbox's encoded value, which bbolt too keeps
// until the commit).
func (c *decodeCache[T]) keep(id uint64, raw []byte, v T) { c.keepOwned(id, raw, c.clone(v)) }

// keepOwned is keep for a v that the caller owns no longer: it is cached
// as it is, not copied.
func (c *decodeCache[T]) keepOwned(id uint64, raw []byte, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= decodeCacheMax {
		c.m = make(map[uint64]cached[T])
	}
	c.m[id] = cached[T]{raw: raw, val: v}
}

// lookup returns the value cached for id without comparing its bytes with
// the file's. Only the effect cache uses it: an effect is cached only once
// committed (or read from the file), never changes after, and its ID is
// never given to another effect, so the ID alone names its bytes.
func (c *decodeCache[T]) lookup(id uint64) (T, bool) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok {
		var zero T
		return zero, false
	}
	return c.clone(e.val), true
}

// forget drops the values of ids, deleted from the file.
func (c *decodeCache[T]) forget(ids ...uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		delete(c.m, id)
	}
}

// cloneEffect copies what an Effect refers to. TestCloneEffectFields fails
// when Effect gains a field this does not copy.
func cloneEffect(e commands.Effect) commands.Effect {
	e.Text = slices.Clone(e.Text)
	e.Buttons = slices.Clone(e.Buttons)
	if e.Release != nil {
		r := cloneRelease(*e.Release)
		e.Release = &r
	}
	if e.Export != nil {
		x := *e.Export // no field of it refers to memory
		e.Export = &x
	}
	return e
}

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
