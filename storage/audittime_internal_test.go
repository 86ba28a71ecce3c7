package storage

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// TestPeekAudit reads the time and action of stored entries without
// decoding them, and checks them against the whole decode: the same, or no
// answer (the walk then decodes the entry). Never something else.
func TestPeekAudit(t *testing.T) {
	base := commands.AuditEntry{Seq: 12, Actor: `U1 "action":"finish"`, Action: commands.ActionRequest, Ticket: "PAY-1",
		Detail: `"time":"2030-01-01T00:00:00Z"`}
	times := []time.Time{
		time.Date(2026, 11, 22, 10, 4, 5, 123456789, time.UTC),
		time.Date(2026, 11, 22, 10, 4, 5, 0, time.UTC),
		time.Date(2026, 11, 22, 10, 4, 5, 120000000, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 1, time.UTC),
		time.Date(2026, 11, 22, 10, 4, 5, 0, time.FixedZone("CET", 3600)), // not as Seal writes it: time.Parse
	}
	for _, tm := range times {
		e := base
		e.Time = tm
		v, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, action, ok := peekAudit(v)
		var want commands.AuditEntry
		if err := decodeAudit(v, &want); err != nil {
			t.Fatal(err)
		}
		if !ok || !got.Equal(want.Time) || commands.Action(action) != want.Action {
			t.Errorf("%s: peekAudit = %v, %q, %v; the decode says %v, %q", v, got, action, ok, want.Time, want.Action)
		}
	}
	for _, v := range []string{
		`{"time":"2026-11-22T10:04:05Z","seq":1,"action":"start"}`, // another order: decode it
		`{"seq":1,"time":"2026-02-30T10:04:05Z","action":"start"}`, // no such day
		`{"seq":1,"time":"2026-11-22T10:04:05.Z","action":"start"}`,
		`{"seq":1,"time":"yesterday","action":"start"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05Z`,
		`{"seq":1,"time":"2026-11-22T10:04:05Z"}`, // no action
		`{"seq":1,"time":"2026-11-22T10:04:05Z","action":"st\u0061rt"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05Z","time":"2027-11-22T10:04:05Z","action":"start"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05Z","action":"start","action":"finish"}`,
		`[]`,
	} {
		if got, action, ok := peekAudit([]byte(v)); ok {
			t.Errorf("%s: peekAudit = %v, %q, want no answer", v, got, action)
		}
	}
}

// FuzzPeekAudit: whatever the stored bytes, peekAudit either has no answer
// or gives the time and action the whole decode gives, so that a walk
// filtered by time or action never skips an entry it should have kept.
func FuzzPeekAudit(f *testing.F) {
	for _, s := range []string{
		`{"seq":1,"time":"2026-11-22T10:04:05.123456789Z","actor":"U1","action":"start"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05Z","action":"finish"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05.1Z","actor":"\",\"action\":\"x","action":"start"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05+01:00","action":"start"}`,
		`{"seq":1,"time":"2026-13-22T10:04:05Z","action":"start"}`,
		`{"seq":1,"time":"2026-11-22T24:04:05Z","action":"start"}`,
		`{"seq":1,"time":"0000-01-01T00:00:00Z","action":"start"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05Z","time":"2027-11-22T10:04:05Z","action":"start"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05Z","action":"start","action":"finish"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		got, action, ok := peekAudit(v)
		if !ok {
			return
		}
		var e commands.AuditEntry
		if err := decodeAudit(v, &e); err == nil && (!got.Equal(e.Time) || commands.Action(action) != e.Action) {
			t.Errorf("%q: peekAudit %v %q, decode %v %q", v, got, action, e.Time, e.Action)
		}
	})
}
