package storage

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// BenchmarkPeekAudit reads the time and action of a stored entry of the usual size.
func BenchmarkPeekAudit(b *testing.B) {
	e := commands.AuditEntry{Seq: 123456, Time: time.Date(2026, 11, 22, 10, 4, 5, 123456789, time.UTC), Actor: "U01234567",
		Action: commands.ActionRefused, Ticket: "PAY-123", Detail: strings.Repeat("dep start: backend is locked by an earlier release. ", 4),
		PrevHash: strings.Repeat("ab", 32), Hash: strings.Repeat("cd", 32), Via: "slack"}
	v, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if _, _, ok := peekAudit(v); !ok {
			b.Fatal("no time")
		}
	}
}
