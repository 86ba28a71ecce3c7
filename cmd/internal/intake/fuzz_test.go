package intake

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// FuzzDecodeReport: any body gets a report or an error, never a panic; a
// report it accepts has an id and a known status, and reads back the same
// once written again.
func FuzzDecodeReport(f *testing.F) {
	for _, seed := range []string{
		goodBody,
		`{"id":"gh-1","branch":"feature/REL-77-search","status":"pending"}`,
		`{"id":"x","status":"failure","components":["backend","payments"]}`,
		`{"id":"x","status":"green"}`,
		`{"id":"","status":"success"}`,
		`{"id":"x","status":"success"}{}`,
		`{"id":"x","status":"success","extra":1}`,
		`{"id":"x\u0000","status":"success"}`,
		`[]`, `null`, `{`, ``, `"id"`,
		`{"id":1,"status":"success"}`,
		`{"id":"x","status":"success","components":null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := DecodeReport(body)
		if err != nil {
			return
		}
		if rep.ID == "" {
			t.Fatalf("accepted a report without an id: %q", body)
		}
		switch commands.BuildStatus(rep.Status) {
		case commands.BuildSuccess, commands.BuildFailure, commands.BuildPending:
		default:
			t.Fatalf("accepted the status %q", rep.Status)
		}
		again, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeReport(again)
		if err != nil {
			t.Fatalf("a report it accepted, written again, is refused: %v\n%s", err, again)
		}
		if diff := cmp.Diff(rep, back); diff != "" {
			t.Fatalf("a report written and read again differs (-first +again):\n%s", diff)
		}
	})
}
