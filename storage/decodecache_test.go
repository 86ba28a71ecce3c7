package storage

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestCloneReleaseFields fails when Release, HookRun, HookResult or CIStatus gain a
// field that refers to shared memory (slice, map, pointer, …) that
// cloneRelease does not copy: the cache would hand out aliases.
func TestCloneReleaseFields(t *testing.T) {
	copied := map[string]bool{"Components": true, "Locks": true, "TicketComponents": true, "Approvals": true, "FixVersions": true, "Replaced": true, "Running": true, "LastHook": true, "CI": true}
	for _, typ := range []reflect.Type{reflect.TypeFor[commands.Release](), reflect.TypeFor[commands.HookRun](), reflect.TypeFor[commands.HookResult](), reflect.TypeFor[commands.CIStatus]()} {
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
	c := decodeCache[commands.Release]{clone: cloneRelease}
	r := commands.Release{ID: 7, Ticket: "PAY-7", Components: []string{"backend"}, Locks: []string{"backend"}, Approvals: []string{"U0APP"}, Replaced: map[string]uint64{"backend": 3},
		Running: &commands.HookRun{Phase: commands.PhaseStart}, LastHook: &commands.HookResult{Phase: commands.PhaseStart}, CI: &commands.CIStatus{Status: commands.BuildFailure}}
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
	got.Components[0], got.Approvals[0], got.Running.Phase, got.LastHook.Phase, got.CI.Status = "x", "x", "x", "x", "x"
	got.Replaced["backend"] = 9
	again, _ := c.get(7, []byte(`{"id":7}`))
	if diff := cmp.Diff(r, again); diff != "" {
		t.Errorf("changing a returned release changed the cache (-put +got):\n%s", diff)
	}
	for i := range decodeCacheMax + 1 {
		c.put(uint64(100+i), raw, r)
	}
	if n := len(c.m); n > decodeCacheMax {
		t.Errorf("%d releases cached, want at most %d", n, decodeCacheMax)
	}
}

// TestCloneEffectFields fails when Effect, Span or Button gain a field that
// refers to shared memory that cloneEffect does not copy.
func TestCloneEffectFields(t *testing.T) {
	copied := map[string]bool{"Release": true, "Text": true, "Buttons": true, "Export": true}
	for _, typ := range []reflect.Type{reflect.TypeFor[commands.Effect](), reflect.TypeFor[commands.Span](), reflect.TypeFor[commands.Button]()} {
		for f := range typ.Fields() {
			switch f.Type.Kind() {
			case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func, reflect.Struct, reflect.Array:
				if typ != reflect.TypeFor[commands.Effect]() || !copied[f.Name] {
					t.Errorf("%s.%s (%s) refers to memory cloneEffect does not copy", typ.Name(), f.Name, f.Type)
				}
			}
		}
	}
}

// TestEffectCache: the outbox hands out its own copy of a cached effect,
// and forgets a delivered one.
func TestEffectCache(t *testing.T) {
	c := decodeCache[commands.Effect]{clone: cloneEffect}
	e := commands.Effect{ID: 3, Kind: commands.EffectReply, Text: commands.Text{commands.Plain("hi")},
		Buttons: []commands.Button{{Label: "Accept", Command: "accept PAY-1"}},
		Release: &commands.Release{ID: 1, Components: []string{"backend"}}}
	raw := []byte(`{"id":3}`)
	c.put(3, raw, e)
	got, ok := c.get(3, raw)
	if !ok {
		t.Fatal("no hit for the same bytes")
	}
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("cached effect (-put +got):\n%s", diff)
	}
	got.Text[0].Text, got.Buttons[0].Label, got.Release.Components[0] = "x", "x", "x"
	if again, _ := c.get(3, raw); !cmp.Equal(e, again) {
		t.Errorf("changing a returned effect changed the cache: %+v", again)
	}
	c.forget(3)
	if _, ok := c.get(3, raw); ok {
		t.Error("a forgotten effect is still cached")
	}
}
