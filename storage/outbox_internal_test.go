package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestSplitRecord: the effects of a record are found by scanning, not
// decoding, so text that looks like the record's own syntax (quotes,
// escapes, brackets, commas, the "outbox" key itself) must not move a
// boundary; and rewriting a record without some effects gives what
// encoding it without them gives.
func TestSplitRecord(t *testing.T) {
	tricky := []string{`plain`, `a "quoted", [bracketed] {braced} text`, `back\slash\"`, `,"outbox":[{"id":1}]}`, "\\", `"`, `}]`, "new\nline", "ünïcode ✓"}
	ev := commands.InboxEvent{ID: "Ev1", Received: time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC), Processed: true,
		Message: commands.Message{EventID: "Ev1", User: "U0ANN", Text: `dobro ,"outbox":[ \" }]`}}
	var raws []json.RawMessage
	for i, s := range tricky {
		e := commands.Effect{ID: uint64(i + 1), Kind: commands.EffectReply, User: "U0ANN", Text: commands.Text{commands.Plain(s), {Kind: commands.SpanPerson, ID: "U0BOB"}},
			Buttons: []commands.Button{{Label: s, Command: "accept " + s}}}
		raw, err := encodeEffect(e)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	for n := 0; n <= len(raws); n++ {
		v, err := encodeRecord(ev, raws[:n])
		if err != nil {
			t.Fatal(err)
		}
		head, effects, ok := splitRecord(v)
		if !ok {
			t.Fatalf("splitRecord of a record with %d effects: not split", n)
		}
		want, _ := json.Marshal(ev)
		if got := string(head) + "}"; got != string(want) {
			t.Errorf("%d effects: the event's part is %s, want %s", n, got, want)
		}
		var got []string
		for _, r := range effects {
			got = append(got, string(r))
		}
		var wantRaws []string
		for _, r := range raws[:n] {
			wantRaws = append(wantRaws, string(r))
		}
		if diff := cmp.Diff(wantRaws, got); diff != "" {
			t.Errorf("%d effects: split (-want +got):\n%s", n, diff)
		}
		if n == 0 {
			continue
		}
		// Drop the odd IDs.
		nv, dropped, kept, err := withoutEffects([]byte("Ev1"), v, func(id uint64) bool { return id%2 == 1 })
		if err != nil {
			t.Fatal(err)
		}
		var keep []json.RawMessage
		var wantDropped []uint64
		for i, r := range raws[:n] {
			if (i+1)%2 == 1 {
				wantDropped = append(wantDropped, uint64(i+1))
			} else {
				keep = append(keep, r)
			}
		}
		wantV, _ := encodeRecord(ev, keep)
		if string(nv) != string(wantV) || kept != len(keep) || !cmp.Equal(dropped, wantDropped) {
			t.Errorf("%d effects: withoutEffects = %s, %v, %d; want %s, %v, %d", n, nv, dropped, kept, wantV, wantDropped, len(keep))
		}
	}
	for _, bad := range []string{``, `{`, `{"id":"Ev1","outbox":[{"id":1}`, `{"id":"Ev1","outbox":[{"id":1]}`, `{"id":"Ev1","outbox":[]}`} {
		if _, _, ok := splitRecord([]byte(bad)); ok {
			t.Errorf("splitRecord(%s) split it; want not", bad)
		}
	}
}

// TestEffectIndexCarried: the index's count of pending effects per inbox
// record, which lets Delivered cut a record whose every effect is
// delivered, stays what where says through emits, partial and whole
// deliveries, and a rebuild from the file.
func TestEffectIndexCarried(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	emit := func(event string, n int) []uint64 {
		t.Helper()
		var ids []uint64
		if err := db.Update(ctx, func(tx commands.Tx) error {
			if event != "" {
				if err := tx.PutEvent(commands.InboxEvent{ID: event, Message: commands.Message{EventID: event, User: "U1", Text: "queue"}, Processed: true}); err != nil {
					return err
				}
			}
			for i := range n {
				e, err := tx.Emit(commands.Effect{Kind: commands.EffectReply, User: "U1", Text: commands.Text{commands.Plain(fmt.Sprint(event, i))}})
				if err != nil {
					return err
				}
				ids = append(ids, e.ID)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	check := func(when string) {
		t.Helper()
		ix := &db.pending
		ix.mu.Lock()
		defer ix.mu.Unlock()
		want := map[string]int{}
		for _, event := range ix.where {
			if event != "" {
				want[event]++
			}
		}
		if diff := cmp.Diff(want, ix.carried); diff != "" {
			t.Errorf("%s: carried (-where says +index):\n%s", when, diff)
		}
	}
	if _, err := db.Pending(ctx, 0); err != nil { // builds the index
		t.Fatal(err)
	}
	a, b := emit("EvA", 3), emit("EvB", 2)
	loose := emit("", 1)
	check("emitted")
	if err := db.Delivered(ctx, a[0], b[0], b[1], loose[0]); err != nil {
		t.Fatal(err)
	}
	check("EvA's first and all of EvB delivered")
	if got, err := db.Pending(ctx, 0); err != nil || len(got) != 2 || got[0].ID != a[1] || got[1].ID != a[2] {
		t.Fatalf("Pending = %+v, %v; want EvA's last two", got, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Pending(ctx, 0); err != nil {
		t.Fatal(err)
	}
	check("rebuilt from the file")
	if err := db.Delivered(ctx, a[1:]...); err != nil {
		t.Fatal(err)
	}
	check("all delivered")
	if got, err := db.Pending(ctx, 0); err != nil || len(got) != 0 {
		t.Fatalf("Pending = %+v, %v; want none", got, err)
	}
}
