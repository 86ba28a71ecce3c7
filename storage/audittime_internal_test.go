package storage

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// TestAuditTime reads the time of stored entries without decoding them, and
// checks it against the whole decode: the same instant, or no answer (the
// walk then decodes the entry). Never a different time.
func TestAuditTime(t *testing.T) {
	base := commands.AuditEntry{Seq: 12, Actor: "U1", Action: commands.ActionRequest, Ticket: "PAY-1"}
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
		got, ok := auditTime(v)
		var want commands.AuditEntry
		if err := decodeAudit(v, &want); err != nil {
			t.Fatal(err)
		}
		if !ok || !got.Equal(want.Time) {
			t.Errorf("%s: auditTime = %v, %v; the decode says %v", v, got, ok, want.Time)
		}
	}
	for _, v := range []string{
		`{"time":"2026-11-22T10:04:05Z","seq":1}`, // another order: decode it
		`{"seq":1,"time":"2026-02-30T10:04:05Z"}`, // no such day
		`{"seq":1,"time":"2026-11-22T10:04:05.Z"}`,
		`{"seq":1,"time":"yesterday"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05Z`,
		`[]`,
	} {
		if got, ok := auditTime([]byte(v)); ok {
			t.Errorf("%s: auditTime = %v, want no answer", v, got)
		}
	}
}

// FuzzAuditTime: whatever the stored bytes, auditTime either has no answer
// or gives the time the whole decode gives, so that a walk filtered by time
// never skips an entry it should have kept.
func FuzzAuditTime(f *testing.F) {
	for _, s := range []string{
		`{"seq":1,"time":"2026-11-22T10:04:05.123456789Z","actor":"U1"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05Z"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05.1Z"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05+01:00"}`,
		`{"seq":1,"time":"2026-13-22T10:04:05Z"}`,
		`{"seq":1,"time":"2026-11-22T24:04:05Z"}`,
		`{"seq":1,"time":"0000-01-01T00:00:00Z"}`,
		`{"seq":1,"time":"2026-11-22T10:04:05Z","time":"2027-11-22T10:04:05Z"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		got, ok := auditTime(v)
		if !ok {
			return
		}
		var e commands.AuditEntry
		if err := decodeAudit(v, &e); err == nil && !got.Equal(e.Time) {
			t.Errorf("%q: auditTime %v, decode %v", v, got, e.Time)
		}
	})
}
