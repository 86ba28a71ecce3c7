package storage

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// sameAsJSON checks that decodeAudit gives what json.Unmarshal gives for v:
// the same entry (times equal as instants and printed alike) or an error
// both times.
func sameAsJSON(t *testing.T, v []byte) {
	t.Helper()
	var want commands.AuditEntry
	wantErr := json.Unmarshal(v, &want)
	var got commands.AuditEntry
	gotErr := decodeAudit(v, &got)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("decodeAudit(%q): error %v, json.Unmarshal: %v", v, gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	if !got.Time.Equal(want.Time) || got.Time.Format(time.RFC3339Nano) != want.Time.Format(time.RFC3339Nano) {
		t.Errorf("decodeAudit(%q): time %v, json.Unmarshal: %v", v, got.Time, want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decodeAudit(%q) differs from json.Unmarshal (-json +decodeAudit):\n%s", v, diff)
	}
}

var auditSamples = []string{
	`{"seq":1,"time":"2025-03-03T09:00:00Z","actor":"U01ANN","action":"request","ticket":"PAY-1","from":"","to":"requested","detail":"components: backend","prev_hash":"0000","hash":"abcd"}`,
	`{"seq":18446744073709551615,"time":"2025-03-03T09:00:00.123456789+03:00","actor":"","action":"","ticket":"","from":"","to":"","detail":"","prev_hash":"","hash":""}`,
	`{"seq":2,"time":"2025-03-03T09:00:00Z","actor":"U1","action":"refused","ticket":"PAY-1","from":"","to":"","detail":"locked by \u003c@U0BOB\u003e \u0026 \"friends\" \\ / \/ \b\f\n\r\t é \u00e9 \ud83d\ude00 \ud83d x","prev_hash":"p","hash":"h"}`,
	` { "seq" : 3 , "time" : "2025-03-03T09:00:00Z" , "hash" : "h" } `,
	`{"seq":4,"time":"2025-03-03T09:00:00Z","actor":"U01ANN","action":"operator","ticket":"","from":"","to":"","detail":"root on host","prev_hash":"p","hash":"h","via":"console"}`,
	`{"via":"slack","seq":5}`,
	`{"seq":6,"time":"2025-03-03T09:00:00Z","actor":"U01ANN","action":"start","ticket":"PAY-1","from":"accepted","to":"deploying","detail":"","prev_hash":"p","hash":"h","via":"slack","env":"qa","version":"v2.4.0+build.7"}`,
	`{"env":"","version":"x\u00e9"}`,
	`{"version":7}`,
	`{"via":""}`,
	`{"via":"dobrobot \u00e9\n"}`,
	`{}`,
	`{"seq":1}`,
	"{\"seq\":1,\"detail\":\"bad \xff utf-8 \xe2\x82\"}",
	// Whatever the fast path does not take, json.Unmarshal judges.
	`{"SEQ":1,"Time":"2025-03-03T09:00:00Z"}`,
	`{"seq":1,"seq":2}`,
	`{"seq":1,"extra":[1,2,{"a":null}]}`,
	`{"seq":null,"actor":null}`,
	`{"seq":1.0}`,
	`{"seq":-1}`,
	`{"seq":01}`,
	`{"seq":1e3}`,
	`{"seq":"1"}`,
	`{"time":"2025-03-03 09:00:00Z"}`,
	`{"time":"2025-03-03T09:00:00.000Z"}`,
	`{"time":"2025-3-3T09:00:00Z"}`,
	`{"time":"2025-03-03T24:00:00Z"}`,
	`{"actor":7}`,
	`{"via":null}`,
	`{"via":7}`,
	`{"via":"a","via":"b"}`,
	`{"actor":"a\qb"}`,
	`{"actor":"a\u12"}`,
	"{\"actor\":\"tab\tinside\"}",
	`{"actor":"x"`,
	`{"actor":"x",}`,
	`{"actor":"x"} trailing`,
	`[1]`,
	``,
	`null`,
}

func TestDecodeAudit(t *testing.T) {
	for _, s := range auditSamples {
		sameAsJSON(t, []byte(s))
	}
	// What the store writes round-trips.
	e := commands.Seal(commands.AuditEntry{Time: time.Date(2025, 3, 3, 9, 0, 0, 5, time.UTC), Actor: "U01ANN",
		Action: commands.ActionRefused, Ticket: "PAY-1", Detail: "dep start: <@U0BOB> & co — ☃", Via: commands.SourceConsole, Env: "qa", Version: "v2.4.0"}, 41, commands.GenesisHash)
	v, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var got commands.AuditEntry
	if !fastDecodeAudit(v, &got) {
		t.Fatalf("the fast path refused what json.Marshal wrote: %s", v)
	}
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func FuzzDecodeAudit(f *testing.F) {
	for _, s := range auditSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(sameAsJSON)
}
