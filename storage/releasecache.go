package storage

import (
	"bytes"
	"slices"
	"sync"

	"github.com/dobrobot/dobrobot/commands"
)

// releaseCacheMax bounds the release cache; when it is full it starts over.
// Every command reads the open releases, a few dozen in a busy queue.
const releaseCacheMax = 4096

// releaseCache keeps releases decoded, each with the exact bytes it was
// decoded from. Every command reads the whole open queue (Tx.Open), most
// inside the write transaction, and decoding the releases' JSON was the
// larger part of its time; a release whose stored bytes are unchanged is
// now copied from here instead. A hit compares the bytes, so the cache can
// never return anything but what decoding the file would.
type releaseCache struct {
	mu sync.Mutex
	m  map[uint64]cachedRelease
}

type cachedRelease struct {
	raw []byte
	rel commands.Release
}

// get returns the release decoded from raw, if it is cached.
func (c *releaseCache) get(id uint64, raw []byte) (commands.Release, bool) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || !bytes.Equal(e.raw, raw) {
		return commands.Release{}, false
	}
	return cloneRelease(e.rel), true
}

// put caches r as decoded from raw, which it copies.
func (c *releaseCache) put(id uint64, raw []byte, r commands.Release) {
	e := cachedRelease{raw: bytes.Clone(raw), rel: cloneRelease(r)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= releaseCacheMax {
		c.m = make(map[uint64]cachedRelease)
	}
	c.m[id] = e
}

// cloneRelease copies what a Release refers to, so that the caller owns its
// copy. TestCloneReleaseFields fails when Release gains a field this does
// not copy.
func cloneRelease(r commands.Release) commands.Release {
	r.Components = slices.Clone(r.Components)
	r.Locks = slices.Clone(r.Locks)
	r.TicketComponents = slices.Clone(r.TicketComponents)
	if r.Running != nil {
		run := *r.Running
		r.Running = &run
	}
	if r.LastHook != nil {
		h := *r.LastHook
		r.LastHook = &h
	}
	return r
}
