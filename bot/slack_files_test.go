package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// lineExporter writes one line per entry: "format seq action ticket".
func lineExporter(db *storage.DB) Exporter {
	return func(ctx context.Context, f commands.AuditFilter, format string, w io.Writer) error {
		return db.Audit(ctx, f, func(e commands.AuditEntry) error {
			_, err := fmt.Fprintf(w, "%s %d %s %s\n", format, e.Seq, e.Action, e.Ticket)
			return err
		})
	}
}

// TestAuditUpload: an admin's audit command in the DM uploads the export
// into that DM with files upload v2, named dobrobot-audit-<date>.<format>;
// a slash command typed in the DM does the same. In a channel, or by
// anyone but an admin, it is refused with a reason and nothing is
// uploaded. An export with no entry, one that fails, and an upload Slack
// refuses for good are said in words.
func TestAuditUpload(t *testing.T) {
	fs := fakeslack.New(t)
	fs.SetChannelMembers(releaseChannel, ann, bob, adm)
	var fail atomic.Bool
	h := startBot(t, fs, filepath.Join(t.TempDir(), "bot.db"), &testTracker{}, func(b *Slack, c *commands.Config) {
		db := c.Store.(*storage.DB)
		lines := lineExporter(db)
		b.Export = func(ctx context.Context, f commands.AuditFilter, format string, w io.Writer) error {
			if fail.Load() {
				io.WriteString(w, "half an export")
				return errors.New("the store went away")
			}
			return lines(ctx, f, format, w)
		}
	})
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-1")))
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(ann, releaseChannel, "dobro PAY-2")))
	h.settle(t)
	admDM := fakeslack.DMChannel(adm)
	today := time.Now().UTC().Format(time.DateOnly)

	do(t, fs, fs.EventEnvelope(fakeslack.DM(adm, "audit --format jsonl PAY-2")))
	slash(t, fs, fakeslack.Slash{User: adm, Channel: admDM, Text: "audit"})
	h.settle(t)
	type upload struct{ Name, Comment, Content string }
	var got []upload
	for _, u := range fs.Uploads(admDM) {
		got = append(got, upload{u.Filename, u.Comment, string(u.Content)})
	}
	want := []upload{
		{"dobrobot-audit-" + today + ".jsonl", "The audit log as JSONL, entries of PAY-2.", "jsonl 2 request PAY-2\n"},
		{"dobrobot-audit-" + today + ".csv", "The audit log as CSV.", "csv 1 request PAY-1\ncsv 2 request PAY-2\n"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("uploads into the admin's DM (-want +got):\n%s", diff)
	}

	// Refused: in the release channel, by slash command there, and to
	// anyone but an admin, even in a DM.
	do(t, fs, fs.EventEnvelope(fakeslack.Mention(adm, releaseChannel, "audit")))
	h.settle(t) // the two answers to adm are compared in order: the second command comes after the first's
	slash(t, fs, fakeslack.Slash{User: adm, Channel: releaseChannel, Text: "audit --format jsonl"})
	do(t, fs, fs.EventEnvelope(fakeslack.DM(bob, "audit")))
	slash(t, fs, fakeslack.Slash{User: ann, Channel: fakeslack.DMChannel(ann), Text: "audit"})
	h.settle(t)
	if n := len(fs.Uploads("")); n != 2 {
		t.Errorf("%d uploads after the refused commands, want still 2", n)
	}
	var eph []string
	for _, m := range fs.Ephemerals(adm) {
		eph = append(eph, m.Text)
	}
	wantEph := []string{
		"I send the audit log only in a direct message: write audit to me in a DM.",
		"I send the audit log only in a direct message: write audit --format jsonl to me in a DM.",
	}
	if diff := cmp.Diff(wantEph, eph); diff != "" {
		t.Errorf("the admin's answers in the channel (-want +got):\n%s", diff)
	}
	for _, u := range []string{bob, ann} {
		dm := fs.Messages(fakeslack.DMChannel(u))
		if len(dm) == 0 || dm[len(dm)-1].Text != "Only admins can export the audit log: ask one of them." {
			t.Errorf("%s's DM: %q", u, texts(dm))
		}
	}

	// Nothing matches: said, not uploaded. The export fails: said, not
	// uploaded, not retried.
	do(t, fs, fs.EventEnvelope(fakeslack.DM(adm, "audit PAY-404")))
	h.settle(t)
	fail.Store(true)
	do(t, fs, fs.EventEnvelope(fakeslack.DM(adm, "audit")))
	h.settle(t)
	if n := len(fs.Uploads("")); n != 2 {
		t.Errorf("%d uploads, want still 2", n)
	}
	dm := fs.Messages(admDM)
	if len(dm) != 2 || !strings.Contains(dm[0].Text, "No entry matches") ||
		!strings.Contains(dm[1].Text, "Could not export the audit log: the store went away. Nothing was sent") {
		t.Errorf("the admin's DM: %q", texts(dm))
	}
	if n := len(fs.Calls("files.getUploadURLExternal")); n != 2 {
		t.Errorf("files.getUploadURLExternal called %d times, want 2", n)
	}
	// An app installed before files:write: the admin hears why.
	fail.Store(false)
	fs.Fail("files.getUploadURLExternal", fakeslack.Failure{Error: "missing_scope", Times: 1})
	do(t, fs, fs.EventEnvelope(fakeslack.DM(adm, "audit")))
	h.settle(t)
	if dm := fs.Messages(admDM); len(dm) != 3 || !strings.Contains(dm[2].Text, "Slack refused the upload of the audit log (missing_scope)") {
		t.Errorf("the admin's DM after a missing scope: %q", texts(dm))
	}
	if n := len(fs.Uploads("")); n != 2 {
		t.Errorf("%d uploads, want still 2", n)
	}

	left, _ := filepath.Glob(filepath.Join(os.TempDir(), "dobrobot-audit-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %q", left)
	}
}

// TestConsoleAuditFile: in the console an admin's audit writes the export
// to a new file, named as in Slack, and prints where; a second export of
// the same day does not overwrite the first.
func TestConsoleAuditFile(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "console.db"))
	dir := t.TempDir()
	var out syncBuffer
	c := &Console{Store: db, In: strings.NewReader("dobro PAY-1\n/as admin\naudit\naudit --format jsonl\naudit\n/as me\naudit\n"),
		Out: &out, Names: map[string]string{"admin": adm}, Export: lineExporter(db), Dir: dir}
	c.Service = commands.NewService(commands.Config{Store: db, Tracker: &testTracker{}, Log: c.Log, Notify: c.Notify, Groups: ConsoleGroups{},
		Policy: commands.Policy{Admins: []string{adm}, Components: []string{"backend"}}})
	if err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Format(time.DateOnly)
	for _, f := range []struct{ name, content string }{
		{"dobrobot-audit-" + day + ".csv", "csv 1 request PAY-1\n"},
		{"dobrobot-audit-" + day + ".jsonl", "jsonl 1 request PAY-1\n"},
		{"dobrobot-audit-" + day + "-2.csv", "csv 1 request PAY-1\n"},
	} {
		path := filepath.Join(dir, f.name)
		b, err := os.ReadFile(path)
		if err != nil || string(b) != f.content {
			t.Errorf("%s: %q, %v; want %q", f.name, b, err, f.content)
		}
		if want := fmt.Sprintf("⇩ file for admin: The audit log as %s. Written to %s (%d bytes).", strings.ToUpper(filepath.Ext(f.name)[1:]), path, len(f.content)); !strings.Contains(out.String(), want) {
			t.Errorf("the console did not print %q:\n%s", want, out.String())
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("%d files written, want 3", len(entries))
	}
	if !strings.Contains(out.String(), "→ to me only: Only admins can export the audit log") {
		t.Errorf("a non-admin's audit was not refused:\n%s", out.String())
	}
}
