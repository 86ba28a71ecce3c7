package storage

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestCloneReleaseFields fails when Release, HookRun or HookResult gain a
// field that refers to shared memory (slice, map, pointer, …) that
// cloneRelease does not copy: the cache would hand out aliases.
func TestCloneReleaseFields(t *testing.T) {
	copied := map[string]bool{"Components": true, "Locks": true, "TicketComponents": true, "Running": true, "LastHook": true}
	for _, typ := range []reflect.Type{reflect.TypeFor[commands.Release](), reflect.TypeFor[commands.HookRun](), reflect.TypeFor[commands.HookResult]()} {
		for f := range typ.Fields() {
			if f.Type == reflect.TypeFor[time.Time]() {
				continue // immutable
			}
			switch f.Type.Kind() {
			case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func, reflect.Struct, reflect.Array:
				if typ != reflect.TypeFor[commands.Release]() || !copied[f.Name] {
					t.Errorf("%s.%s (%s) refers to memory cloneRelease does not copy", typ.Name(), f.Name, f.Type)
				}
			}
		}
	}
}

// TestReleaseCache: a hit needs the same bytes, and what it returns is the
// caller's own copy.
func TestReleaseCache(t *testing.T) {
	var c releaseCache
	r := commands.Release{ID: 7, Ticket: "PAY-7", Components: []string{"backend"}, Locks: []string{"backend"},
		Running: &commands.HookRun{Phase: commands.PhaseStart}, LastHook: &commands.HookResult{Phase: commands.PhaseStart}}
	raw := []byte(`{"id":7}`)
	c.put(7, raw, r)
	raw[0] = 'X' // the cache keeps its own copy of the bytes
	if _, ok := c.get(7, []byte(`{"id":8}`)); ok {
		t.Error("a hit for other bytes")
	}
	got, ok := c.get(7, []byte(`{"id":7}`))
	if !ok {
		t.Fatal("no hit for the same bytes")
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("cached release (-put +got):\n%s", diff)
	}
	got.Components[0], got.Running.Phase, got.LastHook.Phase = "x", "x", "x"
	again, _ := c.get(7, []byte(`{"id":7}`))
	if diff := cmp.Diff(r, again); diff != "" {
		t.Errorf("changing a returned release changed the cache (-put +got):\n%s", diff)
	}
	for i := range releaseCacheMax + 1 {
		c.put(uint64(100+i), raw, r)
	}
	if n := len(c.m); n > releaseCacheMax {
		t.Errorf("%d releases cached, want at most %d", n, releaseCacheMax)
	}
}
