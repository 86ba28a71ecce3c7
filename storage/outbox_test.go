package storage_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// Tests of "an event's effects are stored with it" (storage/outbox.go,
// docs/architecture.md "Storage"): where effects are stored, that they are
// delivered once each and in ID order wherever they are, and what a
// rollback, a restart, a prune and an upgrade do to them.

// stored is where the file holds effects: the IDs in the outbox bucket, and
// the IDs each inbox record carries.
type stored struct {
	Outbox   []uint64
	Events   map[string][]uint64
	Carrying uint64 // the meta bucket's count of records carrying effects
}

func whereStored(t *testing.T, db *storage.DB) stored {
	t.Helper()
	s := stored{Events: map[string][]uint64{}}
	err := db.Bolt().View(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("outbox")).ForEach(func(k, _ []byte) error {
			s.Outbox = append(s.Outbox, binary.BigEndian.Uint64(k))
			return nil
		}); err != nil {
			return err
		}
		if v := tx.Bucket([]byte("meta")).Get([]byte("events_with_effects")); v != nil {
			s.Carrying = binary.BigEndian.Uint64(v)
		}
		return tx.Bucket([]byte("inbox")).ForEach(func(k, v []byte) error {
			var r struct {
				Outbox []struct {
					ID uint64 `json:"id"`
				} `json:"outbox"`
			}
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			for _, e := range r.Outbox {
				s.Events[string(k)] = append(s.Events[string(k)], e.ID)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("reading where effects are stored: %v", err)
	}
	return s
}

func pendingIDs(t *testing.T, db *storage.DB) []uint64 {
	t.Helper()
	es, err := db.Pending(context.Background(), 0)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	var ids []uint64
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

func emitNote(t *testing.T, db *storage.DB, text string) commands.Effect {
	t.Helper()
	var out commands.Effect
	if err := db.Update(context.Background(), func(tx commands.Tx) (err error) {
		out, err = tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U0ADMIN", Text: commands.Text{commands.Plain(text)}})
		return err
	}); err != nil {
		t.Fatalf("Emit %q: %v", text, err)
	}
	return out
}

func outboxService(db *storage.DB) *commands.Service {
	return commands.NewService(commands.Config{Store: db, Tracker: readyTracker{}, Now: time.Now, Log: zerolog.Nop(),
		Policy: commands.Policy{Approvers: []string{"U0APPROVER"}, Admins: []string{"U0ADMIN"}, Components: []string{"backend"}, Channel: "C0RELEASE"}})
}

func handle(t *testing.T, svc *commands.Service, event, user, text string) {
	t.Helper()
	m := commands.Message{EventID: event, User: user, Channel: "C0RELEASE", Text: text, Via: commands.ViaMention}
	if err := svc.Handle(context.Background(), m); err != nil {
		t.Fatalf("Handle(%s %q): %v", event, text, err)
	}
}

// TestEffectsStoredWithEvent: a command's effects live in its inbox record,
// not in the outbox bucket; an effect emitted without an event goes to the
// outbox bucket; Pending lists both in ID order, and Delivered removes them
// from where they are, rewriting a record without the delivered ones.
func TestEffectsStoredWithEvent(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "dobrobot.db"))
	defer db.Close()
	ctx := context.Background()
	svc := outboxService(db)

	first := emitNote(t, db, "before")
	handle(t, svc, "Ev1", "U0ANN", "dobro REL-1 no_need_admin")
	middle := emitNote(t, db, "between")
	handle(t, svc, "Ev2", "U0APPROVER", "accept REL-1")
	last := emitNote(t, db, "after")

	got := whereStored(t, db)
	ev1, ev2 := got.Events["Ev1"], got.Events["Ev2"]
	if len(ev1) == 0 || len(ev2) == 0 {
		t.Fatalf("the commands' records carry no effects: %+v", got)
	}
	want := stored{Outbox: []uint64{first.ID, middle.ID, last.ID}, Events: map[string][]uint64{"Ev1": ev1, "Ev2": ev2}, Carrying: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("where the effects are stored (-want +got):\n%s", diff)
	}
	order := append(append(append(append([]uint64{first.ID}, ev1...), middle.ID), ev2...), last.ID)
	for i := 1; i < len(order); i++ {
		if order[i] <= order[i-1] {
			t.Fatalf("effect IDs in the order they were emitted are not increasing: %v", order)
		}
	}
	es, err := db.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, e := range es {
		ids = append(ids, e.ID)
		if e.Kind == commands.EffectDM && e.User == "U0ADMIN" {
			continue // a note
		}
		if e.Event != "Ev1" && e.Event != "Ev2" {
			t.Errorf("effect %d of a command names event %q", e.ID, e.Event)
		}
	}
	if diff := cmp.Diff(order, ids); diff != "" {
		t.Errorf("Pending (-want +got):\n%s", diff)
	}
	if got, err := db.PendingAfter(ctx, middle.ID, 1); err != nil || len(got) != 1 || got[0].ID != ev2[0] {
		t.Errorf("PendingAfter(%d, 1) = %v, %v; want Ev2's first effect %d", middle.ID, got, err, ev2[0])
	}

	// Deliver Ev1's first effect, the middle note and all of Ev2's.
	if err := db.Delivered(ctx, append([]uint64{ev1[0], middle.ID}, ev2...)...); err != nil {
		t.Fatal(err)
	}
	want = stored{Outbox: []uint64{first.ID, last.ID}, Events: map[string][]uint64{"Ev1": ev1[1:]}, Carrying: 1}
	if len(ev1) == 1 {
		want.Events, want.Carrying = map[string][]uint64{}, 0
	}
	if diff := cmp.Diff(want, whereStored(t, db)); diff != "" {
		t.Errorf("after a delivery, where the effects are stored (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append(append([]uint64{first.ID}, ev1[1:]...), last.ID), pendingIDs(t, db)); diff != "" {
		t.Errorf("Pending after a delivery (-want +got):\n%s", diff)
	}
	// The record without its effects is the event as it was put.
	if err := db.View(ctx, func(tx commands.Tx) error {
		ev, ok, err := tx.Event("Ev2")
		if err == nil && (!ok || !ev.Processed || ev.Message.Text != "accept REL-1") {
			err = fmt.Errorf("Event(Ev2) = %+v, %t after its effects were delivered", ev, ok)
		}
		return err
	}); err != nil {
		t.Error(err)
	}
	if err := db.Delivered(ctx, pendingIDs(t, db)...); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stored{Events: map[string][]uint64{}}, whereStored(t, db)); diff != "" {
		t.Errorf("after delivering everything (-want +got):\n%s", diff)
	}
}

// TestRolledBackEffectsNeverSeen: a transaction that fails leaves no
// pending effect, wherever it would have been stored, and its IDs, given
// again to the next effects, never show what it emitted.
func TestRolledBackEffectsNeverSeen(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "dobrobot.db"))
	defer db.Close()
	ctx := context.Background()
	if got := pendingIDs(t, db); len(got) != 0 { // builds the index
		t.Fatalf("Pending of a new file: %v", got)
	}
	boom := errors.New("boom")
	note := func(text string) commands.Effect {
		return commands.Effect{Kind: commands.EffectDM, User: "U0ANN", Text: commands.Text{commands.Plain(text)}}
	}
	var ghosts []uint64
	err := db.Update(ctx, func(tx commands.Tx) error {
		e, err := tx.Emit(note("ghost in the outbox"))
		if err != nil {
			return err
		}
		ghosts = append(ghosts, e.ID)
		if err := tx.PutEvent(commands.InboxEvent{ID: "EvGHOST", Received: t0, Processed: true}); err != nil {
			return err
		}
		if e, err = tx.Emit(note("ghost in a record")); err != nil {
			return err
		}
		ghosts = append(ghosts, e.ID)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("the failing Update returned %v", err)
	}
	if got := pendingIDs(t, db); len(got) != 0 {
		t.Errorf("Pending after a rollback = %v, want nothing", got)
	}
	if diff := cmp.Diff(stored{Events: map[string][]uint64{}}, whereStored(t, db)); diff != "" {
		t.Errorf("the file after a rollback (-want +got):\n%s", diff)
	}

	real := []commands.Effect{emitNote(t, db, "real one"), emitNote(t, db, "real two")}
	es, err := db.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, e := range es {
		texts = append(texts, fmt.Sprint(e.ID, " ", e.Text.String()))
	}
	want := []string{fmt.Sprint(real[0].ID, " real one"), fmt.Sprint(real[1].ID, " real two")}
	if diff := cmp.Diff(want, texts); diff != "" {
		t.Errorf("Pending after a rollback and two effects (-want +got):\n%s (ghost IDs were %v)", diff, ghosts)
	}
}

// TestRestartDeliversOnce: after a reopen (the index and the cache start
// empty), the effects pending in the outbox bucket and in inbox records are
// listed once each, in ID order, and a delivery there is kept; IDs go on
// increasing across restarts.
func TestRestartDeliversOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	db := mustOpen(t, path)
	ctx := context.Background()
	svc := outboxService(db)
	emitNote(t, db, "one")
	handle(t, svc, "Ev1", "U0ANN", "dobro REL-1 no_need_admin")
	emitNote(t, db, "two")
	handle(t, svc, "Ev2", "U0BOB", "dobro REL-2 no_need_admin")
	handle(t, svc, "Ev3", "U0APPROVER", "accept REL-1")
	all := pendingIDs(t, db)
	// Deliver one of each place before the restart.
	ev1 := whereStored(t, db).Events["Ev1"]
	if err := db.Delivered(ctx, all[0], ev1[0]); err != nil {
		t.Fatal(err)
	}
	var left []uint64
	for _, id := range all {
		if id != all[0] && id != ev1[0] {
			left = append(left, id)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	var seen []uint64
	for restart := range 3 {
		db = mustOpen(t, path)
		if restart == 2 {
			if got := pendingIDs(t, db); len(got) != 0 {
				t.Errorf("after delivering everything and a restart, Pending = %v", got)
			}
			e := emitNote(t, db, "three")
			if e.ID <= all[len(all)-1] {
				t.Errorf("an effect emitted after restarts got ID %d, not above %d", e.ID, all[len(all)-1])
			}
			db.Close()
			break
		}
		// A sender's walk: take what is pending after the last taken, two
		// at a time, and deliver it.
		var after uint64
		for {
			es, err := db.PendingAfter(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) == 0 {
				break
			}
			for _, e := range es {
				seen = append(seen, e.ID)
				after = e.ID
			}
			if restart == 0 {
				break // the rest after the next restart
			}
			if err := db.Delivered(ctx, es[0].ID, es[len(es)-1].ID); err != nil {
				t.Fatal(err)
			}
		}
		if restart == 0 {
			if diff := cmp.Diff(left, pendingIDs(t, db)); diff != "" {
				t.Errorf("after a restart, Pending (-want +got):\n%s", diff)
			}
			seen = nil
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(left, seen); diff != "" {
		t.Errorf("delivered after the restart (-want +got):\n%s", diff)
	}
}

// TestPruneKeepsPendingEffects: pruning a processed event whose effects are
// not delivered yet does not lose them: they move to the outbox bucket
// under their IDs and stay pending, in order, across a restart.
func TestPruneKeepsPendingEffects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	db := mustOpen(t, path)
	ctx := context.Background()
	svc := outboxService(db)
	handle(t, svc, "Ev1", "U0ANN", "dobro REL-1 no_need_admin")
	note := emitNote(t, db, "note")
	handle(t, svc, "Ev2", "U0APPROVER", "accept REL-1")
	before := pendingIDs(t, db) // the index is built: the prune must keep it in step
	ev2 := whereStored(t, db).Events["Ev2"]
	if err := db.Delivered(ctx, ev2...); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Update(ctx, func(tx commands.Tx) (err error) {
		n, err = tx.PruneEvents(time.Now().Add(time.Hour))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("PruneEvents = %d, want 2", n)
	}
	var want []uint64
	for _, id := range before {
		if !slices.Contains(ev2, id) {
			want = append(want, id)
		}
	}
	if diff := cmp.Diff(stored{Outbox: want, Events: map[string][]uint64{}}, whereStored(t, db)); diff != "" {
		t.Errorf("after the prune, where the effects are (-want +got):\n%s (the note was %d)", diff, note.ID)
	}
	if diff := cmp.Diff(want, pendingIDs(t, db)); diff != "" {
		t.Errorf("Pending after the prune (-want +got):\n%s", diff)
	}
	db.Close()
	db = mustOpen(t, path)
	defer db.Close()
	if diff := cmp.Diff(want, pendingIDs(t, db)); diff != "" {
		t.Errorf("Pending after the prune and a restart (-want +got):\n%s", diff)
	}
	if err := db.Delivered(ctx, want...); err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(t, db); len(got) != 0 {
		t.Errorf("Pending after delivering the moved effects = %v", got)
	}
}

// TestUpgradeKeepsOldOutbox opens the schema 2 fixture (upgraded through
// schema 3 to 4) with effects left undelivered in its outbox bucket, as a
// bot stopped during a Slack outage leaves them: they are pending after the
// upgrade, in order and as written, and the effects emitted after it get
// higher IDs, in the outbox bucket or in their event.
func TestUpgradeKeepsOldOutbox(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "schema2-demo.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var old []commands.Effect
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("outbox"))
		if n := b.Stats().KeyN; n != 0 {
			return fmt.Errorf("the fixture's outbox holds %d effects already", n)
		}
		for i := range 3 {
			id, err := b.NextSequence()
			if err != nil {
				return err
			}
			e := commands.Effect{ID: id, Kind: commands.EffectDM, User: "U0ANN", Text: commands.Text{commands.Plain(fmt.Sprint("old ", i))}}
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put(binary.BigEndian.AppendUint64(nil, id), v); err != nil {
				return err
			}
			old = append(old, e)
		}
		return nil
	})

	db := mustOpen(t, path)
	defer db.Close()
	var schema string
	var seq uint64
	if err := db.Bolt().View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		schema = string(meta.Get([]byte("schema")))
		seq = binary.BigEndian.Uint64(meta.Get([]byte("effect_seq")))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(storage.SchemaVersion); schema != want || seq != old[2].ID {
		t.Errorf("after the upgrade: schema %q, effect_seq %d; want %q, %d (the old outbox's sequence)", schema, seq, want, old[2].ID)
	}
	if err := db.Check(); err != nil {
		t.Errorf("Check after the upgrade: %v", err)
	}
	ctx := context.Background()
	got, err := db.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(old, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Pending after the upgrade (-want +got):\n%s", diff)
	}
	handle(t, outboxService(db), "EvNEW", "U0ANN", "dobro REL-9 no_need_admin")
	note := emitNote(t, db, "new note")
	ids := pendingIDs(t, db)
	if len(ids) < 5 || ids[3] <= old[2].ID || ids[len(ids)-1] != note.ID {
		t.Errorf("Pending after new effects = %v: want the old %d, %d, %d, then the command's, then the note %d",
			ids, old[0].ID, old[1].ID, old[2].ID, note.ID)
	}
	if err := db.Delivered(ctx, ids...); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stored{Events: map[string][]uint64{}}, whereStored(t, db)); diff != "" {
		t.Errorf("after delivering everything (-want +got):\n%s", diff)
	}
}

// TestConcurrentDelivery: commands emitting into their records and notes
// into the outbox bucket while a sender takes and delivers what is pending:
// every effect committed is delivered exactly once, in ID order.
func TestConcurrentDelivery(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "dobrobot.db"))
	defer db.Close()
	ctx := context.Background()
	const writers, each = 3, 15
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		emitted []uint64
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := db.Update(ctx, func(tx commands.Tx) error {
					if i%3 != 0 {
						if err := tx.PutEvent(commands.InboxEvent{ID: fmt.Sprintf("Ev%d-%d", w, i), Received: t0, Processed: true}); err != nil {
							return err
						}
					}
					var ids []uint64
					for range 2 {
						e, err := tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U0ANN", Text: commands.Text{commands.Plain("x")}})
						if err != nil {
							return err
						}
						ids = append(ids, e.ID)
					}
					mu.Lock()
					emitted = append(emitted, ids...)
					mu.Unlock()
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var (
		delivered []uint64
		after     uint64
	)
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		es, err := db.PendingAfter(ctx, after, 5)
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for _, e := range es {
			ids = append(ids, e.ID)
			after = e.ID
		}
		if err := db.Delivered(ctx, ids...); err != nil {
			t.Fatal(err)
		}
		delivered = append(delivered, ids...)
		if finished && len(es) == 0 {
			break
		}
	}
	for i := 1; i < len(delivered); i++ {
		if delivered[i] <= delivered[i-1] {
			t.Fatalf("delivered out of order or twice: %v", delivered)
		}
	}
	slices.Sort(emitted)
	if diff := cmp.Diff(emitted, delivered); diff != "" {
		t.Errorf("delivered (-emitted +delivered):\n%s", diff)
	}
	if got := pendingIDs(t, db); len(got) != 0 {
		t.Errorf("Pending at the end = %v", got)
	}
	if s := whereStored(t, db); len(s.Outbox) != 0 || len(s.Events) != 0 || s.Carrying != 0 {
		t.Errorf("the file at the end: %+v", s)
	}
}

// TestPendingSeesWhatIsCommitted: a reader that sees an event processed in
// the file and then asks what is pending sees the effects committed with
// it, as in one read snapshot (the bot's tests wait on exactly this: a
// processed event with nothing pending means its replies were sent).
func TestPendingSeesWhatIsCommitted(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "dobrobot.db"))
	defer db.Close()
	ctx := context.Background()
	pendingIDs(t, db) // build the index: the commits must keep it in step
	const n = 200
	done := make(chan error, 1)
	go func() {
		for i := range n {
			err := db.Update(ctx, func(tx commands.Tx) error {
				if err := tx.PutEvent(commands.InboxEvent{ID: fmt.Sprint("Ev", i), Received: t0, Processed: true}); err != nil {
					return err
				}
				_, err := tx.Emit(commands.Effect{Kind: commands.EffectDM, Event: fmt.Sprint("Ev", i), User: "U0ANN", Text: commands.Text{commands.Plain("done")}})
				return err
			})
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < n; {
		var processed bool
		if err := db.View(ctx, func(tx commands.Tx) error {
			ev, ok, err := tx.Event(fmt.Sprint("Ev", i))
			processed = ok && ev.Processed
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !processed {
			continue
		}
		es, err := db.Pending(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(es, func(e commands.Effect) bool { return e.Event == fmt.Sprint("Ev", i) }) {
			t.Fatalf("Ev%d is processed in the file, but its effect is not pending: %d pending", i, len(es))
		}
		i++
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPendingAfterRestartReadsMoreThanTheCache: after a restart every
// pending effect is read from the file; one record carrying more effects
// than the effect cache holds (it starts over when full) still lists them
// all.
func TestPendingAfterRestartReadsMoreThanTheCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	db := mustOpen(t, path)
	const n = 5000 // above decodeCacheMax
	err := db.Update(context.Background(), func(tx commands.Tx) error {
		if err := tx.PutEvent(commands.InboxEvent{ID: "EvBIG", Received: t0, Processed: true}); err != nil {
			return err
		}
		for i := range n {
			if _, err := tx.Emit(commands.Effect{Kind: commands.EffectDM, User: "U0ANN", Text: commands.Text{commands.Plain(fmt.Sprint(i))}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = mustOpen(t, path)
	defer db.Close()
	if got := len(pendingIDs(t, db)); got != n {
		t.Errorf("after a restart, Pending lists %d effects, want %d", got, n)
	}
}
