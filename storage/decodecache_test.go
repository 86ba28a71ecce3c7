package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

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
	c := decodeCache[uint64, commands.Release]{clone: cloneRelease}
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
	for i := range 2*decodeCacheMax + 1 {
		c.put(uint64(100+i), raw, r)
		if n := len(c.m) + len(c.old); n > decodeCacheMax {
			t.Fatalf("%d releases cached, want at most %d", n, decodeCacheMax)
		}
	}
	// The newest half are kept, the oldest are not.
	last := uint64(100 + 2*decodeCacheMax)
	if _, ok := c.get(last-decodeCacheMax/2+1, raw); !ok {
		t.Error("a release among the newest half is not cached")
	}
	if _, ok := c.get(last-decodeCacheMax, raw); ok {
		t.Error("a release put more than the cache's size ago is still cached")
	}
	// Put again, an entry moves to the newer generation instead of being
	// kept twice.
	c.put(last-decodeCacheMax/2-1, raw, r)
	if n := len(c.m) + len(c.old); n > decodeCacheMax {
		t.Errorf("%d releases cached after a put again, want at most %d", n, decodeCacheMax)
	}
}

// TestEffectCache: the outbox hands out the cached effect itself (effects
// are never changed once emitted), clipped so that appending to its Text or
// Buttons copies them rather than reach the cache; it forgets a delivered
// one.
func TestEffectCache(t *testing.T) {
	c := decodeCache[uint64, commands.Effect]{clone: shareEffect}
	text := make(commands.Text, 1, 4) // room past its length, as a built Text has
	text[0] = commands.Plain("hi")
	buttons := make([]commands.Button, 1, 4)
	buttons[0] = commands.Button{Label: "Accept", Command: "accept PAY-1"}
	e := commands.Effect{ID: 3, Kind: commands.EffectReply, Text: text, Buttons: buttons,
		Release: &commands.Release{ID: 1, Components: []string{"backend"}}}
	want := commands.Effect{ID: 3, Kind: commands.EffectReply, Text: commands.Text{commands.Plain("hi")},
		Buttons: []commands.Button{{Label: "Accept", Command: "accept PAY-1"}}, Release: &commands.Release{ID: 1, Components: []string{"backend"}}}
	raw := []byte(`{"id":3}`)
	c.keep(3, raw, e)
	got, ok := c.get(3, raw)
	if !ok {
		t.Fatal("no hit for the same bytes")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cached effect (-put +got):\n%s", diff)
	}
	// A reader that appends gets its own array: the next reader, and what
	// the emitter's array holds past its length, are unchanged.
	_ = append(got.Text, commands.Plain("mine"))
	_ = append(got.Buttons, commands.Button{Label: "Mine"})
	if again, _ := c.get(3, raw); !cmp.Equal(want, again) {
		t.Errorf("appending to a returned effect changed the cache: %+v", again)
	}
	if text[:2][1].Text != "" || buttons[:2][1].Label != "" {
		t.Errorf("appending to a returned effect wrote into the emitter's array: %q, %q", text[:2][1].Text, buttons[:2][1].Label)
	}
	c.forget(3)
	if _, ok := c.get(3, raw); ok {
		t.Error("a forgotten effect is still cached")
	}
}

// TestInboxEventSharesNothing fails when InboxEvent or Message gain a field
// that refers to memory: the inbox records' cache hands out its values as
// they are (sameEvent).
func TestInboxEventSharesNothing(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[commands.InboxEvent](), reflect.TypeFor[commands.Message]()} {
		for f := range typ.Fields() {
			if f.Type == reflect.TypeFor[time.Time]() || f.Type == reflect.TypeFor[commands.Message]() {
				continue // immutable, or checked on its own
			}
			switch f.Type.Kind() {
			case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func, reflect.Struct, reflect.Array:
				t.Errorf("%s.%s (%s) refers to memory the inbox cache would share", typ.Name(), f.Name, f.Type)
			}
		}
	}
}

// TestEventCache: reading an inbox record through the cache gives what
// decoding the file gives, after a put, a rewrite, a rolled-back put and a
// delivery that rewrites the record without its effects; a record too long
// to cache is read from the file.
func TestEventCache(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "dobrobot.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	fromFile := func(id string) (commands.InboxEvent, bool) {
		t.Helper()
		var e commands.InboxEvent
		var ok bool
		if err := db.bolt.View(func(btx *bolt.Tx) error {
			v := btx.Bucket(bucketInbox).Get([]byte(id))
			if ok = v != nil; ok {
				return json.Unmarshal(v, &e)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return e, ok
	}
	check := func(when, id string) {
		t.Helper()
		want, wantOK := fromFile(id)
		var got commands.InboxEvent
		var ok bool
		if err := db.View(ctx, func(tx commands.Tx) error {
			var err error
			got, ok, err = tx.Event(id)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if ok != wantOK || !cmp.Equal(want, got) {
			t.Errorf("%s: Event(%s) = %+v, %t; the file holds %+v, %t", when, id, got, ok, want, wantOK)
		}
	}
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	ev := commands.InboxEvent{ID: "Ev1", Message: commands.Message{EventID: "Ev1", User: "U01ANN", Text: "queue"}, Received: at}
	put := func(e commands.InboxEvent, fail bool, emit ...commands.Effect) error {
		return db.Update(ctx, func(tx commands.Tx) error {
			if err := tx.PutEvent(e); err != nil {
				return err
			}
			for _, x := range emit {
				if _, err := tx.Emit(x); err != nil {
					return err
				}
			}
			if fail {
				// Reading it back writes the record into the transaction
				// (and the cache) before the transaction fails.
				if got, ok, err := tx.Event(e.ID); err != nil || !ok || got.Processed != e.Processed {
					return fmt.Errorf("read back in its transaction: %+v, %t, %v", got, ok, err)
				}
				return errors.New("rolled back")
			}
			return nil
		})
	}
	if err := put(ev, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.events.lookup("Ev1"); !ok {
		t.Error("a record just put is not cached")
	}
	check("put", "Ev1")
	done := ev
	done.Processed = true
	if err := put(done, true); err == nil || err.Error() != "rolled back" {
		t.Fatalf("the failing transaction: %v", err)
	}
	check("after a rolled-back rewrite", "Ev1")
	if got, _ := fromFile("Ev1"); got.Processed {
		t.Fatal("the rolled-back rewrite is in the file")
	}
	long := commands.Text{commands.Plain(strings.Repeat("x", 2*eventCacheBytes))}
	if err := put(done, false, commands.Effect{Kind: commands.EffectReply, User: "U01ANN", Text: long}); err != nil {
		t.Fatal(err)
	}
	check("rewritten, carrying a long reply", "Ev1")
	if _, ok := db.events.lookup("Ev1"); ok {
		t.Error("the cache still holds the record as it was before its rewrite")
	}
	pending, err := db.Pending(ctx, 0)
	if err != nil || len(pending) != 1 {
		t.Fatalf("Pending = %d effects, %v; want the reply", len(pending), err)
	}
	if err := db.Delivered(ctx, pending[0].ID); err != nil {
		t.Fatal(err)
	}
	check("after its reply was delivered", "Ev1")
	check("never put", "Ev2")
}
