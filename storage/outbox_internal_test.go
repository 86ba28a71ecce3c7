package storage

import (
	"encoding/json"
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
