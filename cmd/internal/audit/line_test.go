package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// encoderLine is what audit export wrote before AppendLine: a
// json.Encoder without HTML escaping.
func encoderLine(t *testing.T, e commands.AuditEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		t.Fatalf("json.Encoder: %v", err)
	}
	return buf.Bytes()
}

func checkAuditLine(t *testing.T, e commands.AuditEntry) {
	t.Helper()
	got, ok := AppendLine(nil, e)
	if !ok {
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(e); err == nil {
			t.Errorf("AppendLine refused %+v, which encoding/json writes", e)
		}
		return
	}
	if want := encoderLine(t, e); !bytes.Equal(got, want) {
		t.Errorf("AppendLine:\n got %s\nwant %s", got, want)
	}
}

func TestAppendAuditLine(t *testing.T) {
	at := time.Date(2025, 3, 3, 9, 0, 0, 120000000, time.UTC)
	for _, e := range []commands.AuditEntry{
		{},
		commands.Seal(commands.AuditEntry{Time: at, Actor: "U01ANN", Action: commands.ActionRequest, Ticket: "PAY-1",
			To: commands.StateRequested, Detail: "components: backend"}, 0, commands.GenesisHash),
		commands.Seal(commands.AuditEntry{Time: at, Actor: "U01ANN", Action: commands.ActionOperator,
			Detail: "root on host", Via: commands.SourceConsole}, 1, commands.GenesisHash),
		{Seq: 5, Time: at, Via: "odd \x00 \xff \u2028 \"via\""},
		{Seq: 18446744073709551615, Time: at.In(time.FixedZone("X", 3*3600+30*60)), Detail: `<@U0BOB> & "co" \ / é ☃ 😀`},
		{Seq: 2, Time: at, Detail: "ctl \x00\x01\b\f\n\r\t\x1f\x7f bad \xff\xe2\x82 sep \u2028\u2029 end"},
		{Seq: 3, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Seq: 4, Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		checkAuditLine(t, e)
	}
}

func FuzzAppendAuditLine(f *testing.F) {
	f.Add(uint64(1), int64(1741000000), "U01ANN", "PAY-1", "<@U0BOB> & \"co\"\n\xff\u2028", "")
	f.Add(uint64(2), int64(1741000001), "U01ANN", "", "root on host", "console")
	f.Add(uint64(3), int64(1741000002), "", "PAY-2", "", "\"\\\x00\xff\u2029")
	f.Fuzz(func(t *testing.T, seq uint64, unix int64, actor, ticket, detail, via string) {
		checkAuditLine(t, commands.AuditEntry{Seq: seq, Time: time.Unix(unix, unix%1e9).UTC(), Actor: actor,
			Action: commands.Action(ticket), Ticket: ticket, From: commands.State(actor), To: commands.State(detail),
			Detail: detail, PrevHash: actor, Hash: detail, Via: via, Env: via, Version: ticket})
	})
}
