package tracker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/tracker"
	"github.com/google/go-cmp/cmp"
)

const ticketsYAML = `# tickets for the demo
tickets:
  - key: PAY-1
    summary: Faster checkout
    status: Ready for Release
    assignee: ann@example.com
    fix_versions: ["2.4.0"]
    components: [backend, payments]
    fields: {customfield_10010: "QA passed"}
  - key: web-7
    summary: New landing page
    status: In Progress
    project: WEBSITE
    issue_type: Story
    url: https://tracker.example.com/WEB-7
`

// writeFile writes data to path and moves its modification time forward,
// so that a rewrite within the file system's time resolution still counts
// as a change.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	var next time.Time
	if fi, err := os.Stat(path); err == nil {
		next = fi.ModTime().Add(time.Second)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if !next.IsZero() {
		if err := os.Chtimes(path, next, next); err != nil {
			t.Fatal(err)
		}
	}
}

func openFile(t *testing.T, data string) (*tracker.File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tickets.yaml")
	writeFile(t, path, data)
	f, err := tracker.OpenFile(path, "https://jira.example.com/")
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	return f, path
}

// checkErr fails the test unless err has the wanted code and its message
// contains want.
func checkErr(t *testing.T, err error, code, want string) {
	t.Helper()
	if got := commands.ErrorCode(err); got != code {
		t.Errorf("error code = %q (%v), want %q", got, err, code)
	}
	if got := commands.ErrorMessage(err); !strings.Contains(got, want) {
		t.Errorf("error message = %q, want it to contain %q", got, want)
	}
}

func TestFileLookup(t *testing.T) {
	f, _ := openFile(t, ticketsYAML)
	tests := []struct {
		key  string
		want commands.Ticket
	}{
		{"PAY-1", commands.Ticket{
			Key: "PAY-1", Project: "PAY", Summary: "Faster checkout", Status: "Ready for Release",
			Assignee: "ann@example.com", FixVersions: []string{"2.4.0"}, Components: []string{"backend", "payments"},
			Fields: map[string]string{"customfield_10010": "QA passed"}, URL: "https://jira.example.com/browse/PAY-1",
		}},
		{"WEB-7", commands.Ticket{
			Key: "WEB-7", Project: "WEBSITE", Summary: "New landing page", Status: "In Progress",
			IssueType: "Story", URL: "https://tracker.example.com/WEB-7",
		}},
	}
	for _, tt := range tests {
		got, err := f.Ticket(context.Background(), tt.key)
		if err != nil {
			t.Fatalf("Ticket(%s): %v", tt.key, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Ticket(%s) (-want +got):\n%s", tt.key, diff)
		}
	}

	_, err := f.Ticket(context.Background(), "PAY-9")
	checkErr(t, err, commands.ENOTFOUND, "PAY-9 was not found or is not visible to the bot")
	_, err = f.Ticket(context.Background(), "pay-1")
	checkErr(t, err, commands.EINVALID, "is not a ticket key")
}

func TestFileTicketsAreCopies(t *testing.T) {
	f, _ := openFile(t, ticketsYAML)
	got, err := f.Ticket(context.Background(), "PAY-1")
	if err != nil {
		t.Fatal(err)
	}
	got.Components[0] = "changed"
	got.Fields["customfield_10010"] = "changed"
	again, err := f.Ticket(context.Background(), "PAY-1")
	if err != nil {
		t.Fatal(err)
	}
	if again.Components[0] != "backend" || again.Fields["customfield_10010"] != "QA passed" {
		t.Errorf("changing a returned ticket changed the tracker's: %+v", again)
	}
}

func TestFileReloadsAfterEdit(t *testing.T) {
	f, path := openFile(t, ticketsYAML)
	ctx := context.Background()
	summary := func(key string) string {
		t.Helper()
		got, err := f.Ticket(ctx, key)
		if err != nil {
			t.Fatalf("Ticket(%s): %v", key, err)
		}
		return got.Summary
	}
	if got, want := summary("PAY-1"), "Faster checkout"; got != want {
		t.Fatalf("summary = %q, want %q", got, want)
	}

	writeFile(t, path, "tickets:\n  - {key: PAY-1, summary: Even faster checkout}\n  - {key: PAY-2, summary: Added}\n")
	if got, want := summary("PAY-1"), "Even faster checkout"; got != want {
		t.Errorf("after the edit summary = %q, want %q", got, want)
	}
	if got, want := summary("PAY-2"), "Added"; got != want {
		t.Errorf("added ticket summary = %q, want %q", got, want)
	}
	_, err := f.Ticket(ctx, "WEB-7")
	checkErr(t, err, commands.ENOTFOUND, "WEB-7 was not found")

	// A broken file fails closed, naming the file and line, until it is fixed.
	writeFile(t, path, "tickets:\n  - key: PAY-1\n    summary: [unclosed\n")
	_, err = f.Ticket(ctx, "PAY-1")
	checkErr(t, err, commands.EUNAVAILABLE, path)
	checkErr(t, err, commands.EUNAVAILABLE, "yaml: line ")

	writeFile(t, path, "tickets:\n  - {key: PAY-1, summary: Fixed}\n")
	if got, want := summary("PAY-1"), "Fixed"; got != want {
		t.Errorf("after the fix summary = %q, want %q", got, want)
	}

	// A deleted file fails closed too.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err = f.Ticket(ctx, "PAY-1")
	checkErr(t, err, commands.EUNAVAILABLE, "tickets.yaml")
}

func TestFileBadYAML(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string // in the error, besides the file's name
	}{
		// yaml names the line where the construct it could not finish began.
		{"syntax", "tickets:\n  - key: PAY-1\n   summary: x\n", []string{"line 1"}},
		{"unclosed", "tickets:\n  - key: PAY-1\n    summary: [x\n", []string{"line 2"}},
		{"misspelt field", "tickets:\n  - key: PAY-1\n    fix_version: [\"1.0\"]\n", []string{"line 3", "fix_version"}},
		{"misspelt section", "ticket:\n  - key: PAY-1\n", []string{"line 1", "ticket"}},
		{"bad key", "tickets:\n  - key: PAY-1\n  - key: PAY_2\n", []string{"line 3", `"PAY_2" is not a ticket key`}},
		{"duplicate key", "tickets:\n  - key: PAY-1\n  - key: pay-1\n", []string{"line 3", "PAY-1 is listed twice"}},
		{"not a list", "tickets: PAY-1\n", []string{"line 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tickets.yaml")
			writeFile(t, path, tt.data)
			_, err := tracker.OpenFile(path, "")
			if err == nil {
				t.Fatal("OpenFile succeeded, want an error")
			}
			for _, want := range append(tt.want, path) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func TestFileMissingAndEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := tracker.OpenFile(path, ""); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("OpenFile of a missing file = %v, want an error naming it", err)
	}
	f, _ := openFile(t, "# no tickets yet\n")
	_, err := f.Ticket(context.Background(), "PAY-1")
	checkErr(t, err, commands.ENOTFOUND, "PAY-1 was not found")
}

func TestStatic(t *testing.T) {
	s, err := tracker.NewStatic([]commands.Ticket{
		{Key: "PAY-1", Summary: "Faster checkout", Components: []string{"backend"}},
		{Key: "web-2", Project: "WEBSITE", URL: "https://x.example.com/2"},
	}, "https://jira.example.com")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Ticket(context.Background(), "PAY-1")
	if err != nil {
		t.Fatal(err)
	}
	want := commands.Ticket{Key: "PAY-1", Project: "PAY", Summary: "Faster checkout",
		Components: []string{"backend"}, URL: "https://jira.example.com/browse/PAY-1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Ticket(PAY-1) (-want +got):\n%s", diff)
	}
	got, err = s.Ticket(context.Background(), "WEB-2")
	if err != nil {
		t.Fatal(err)
	}
	if got.Project != "WEBSITE" || got.URL != "https://x.example.com/2" {
		t.Errorf("Ticket(WEB-2) = %+v, want its own project and URL kept", got)
	}
	_, err = s.Ticket(context.Background(), "PAY-2")
	checkErr(t, err, commands.ENOTFOUND, "PAY-2 was not found or is not visible to the bot")
	_, err = s.Ticket(context.Background(), "PAY-1; rm -rf /")
	checkErr(t, err, commands.EINVALID, "is not a ticket key")

	for _, bad := range [][]commands.Ticket{
		{{Key: "PAY-1"}, {Key: "PAY-1"}},
		{{Key: "not a key"}},
		{{Key: ""}},
	} {
		if _, err := tracker.NewStatic(bad, ""); err == nil {
			t.Errorf("NewStatic(%v) succeeded, want an error", bad)
		}
	}
}
