package commands_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dobrobot/dobrobot/commands"
)

// Precheck answers for a form what dobro would answer for its ticket,
// and changes nothing; what is not the ticket's to decide it leaves to
// Handle.
func TestPrecheck(t *testing.T) {
	h := newHarness(t)
	h.rebuild(func(c *commands.Config) { c.Policy.Requesters = []string{ann} })
	notReady := readyTicket("PAY-7", "backend")
	notReady.Status = "In Progress"
	h.tracker.tickets["PAY-7"] = notReady
	h.tracker.errs["PAY-8"] = commands.Errorf(commands.EUNAVAILABLE, "Jira did not answer")
	h.say(ann, "dobro PAY-2") // PAY-2 is queued already

	tests := []struct {
		name, user, text string
		via              commands.Via
		want             string // error code, "" for nil
		contains         string
	}{
		{"a ready ticket", ann, "dobro PAY-1 on backend", commands.ViaSlash, "", ""},
		{"not ready", ann, "dobro PAY-7 a note", commands.ViaSlash, commands.EINVALID, "PAY-7 cannot be released: status is In Progress, needs Ready for Release. Not queued."},
		{"missing", ann, "dobro PAY-404", commands.ViaSlash, commands.ENOTFOUND, "PAY-404 was not found or is not visible to the bot. Not queued."},
		{"another project", ann, "dobro OPS-1", commands.ViaSlash, commands.ENOTFOUND, "OPS-1 was not found"},
		{"the tracker is down", ann, "dobro PAY-8", commands.ViaSlash, commands.EUNAVAILABLE, "Could not reach the tracker"},
		{"queued already: dobro answers, no refusal", ann, "dobro PAY-2", commands.ViaSlash, "", ""},
		{"not a requester: Handle refuses, the ticket is not shown", guest, "dobro PAY-7", commands.ViaSlash, "", ""},
		{"not a dobro", ann, "queue", commands.ViaSlash, "", ""},
		{"unparsable", ann, "dobro PAY-1 on ,", commands.ViaSlash, commands.EINVALID, "on needs components"},
	}
	var seq0 uint64
	_ = h.db.View(context.Background(), func(tx commands.Tx) error { seq0, _, _ = tx.AuditHead(); return nil })
	for i, tt := range tests {
		m := commands.Message{EventID: "form-" + tt.name, User: tt.user, Channel: "C0REL", Text: tt.text, Via: tt.via, Time: h.now}
		err := h.svc.Precheck(context.Background(), m)
		if got := commands.ErrorCode(err); got != tt.want || tt.contains != "" && !strings.Contains(commands.ErrorMessage(err), tt.contains) {
			t.Errorf("%d %s: Precheck(%q) = %v (%s), want %s containing %q", i, tt.name, tt.text, err, got, tt.want, tt.contains)
		}
	}
	// Nothing was written: no audit entry, no release, no inbox record.
	var seq uint64
	err := h.db.View(context.Background(), func(tx commands.Tx) error {
		seq, _, _ = tx.AuditHead()
		for _, k := range []string{"PAY-1", "PAY-7", "PAY-404"} {
			if open, err := tx.OpenReleases(k); err != nil || len(open) != 0 {
				t.Errorf("%s: open releases %+v, %v", k, open, err)
			}
		}
		if _, ok, _ := tx.Event("form-a ready ticket"); ok {
			t.Errorf("Precheck recorded its message in the inbox")
		}
		return nil
	})
	if err != nil || seq != seq0 {
		t.Errorf("audit head %d → %d (%v): Precheck wrote", seq0, seq, err)
	}

	// Out of time: EUNAVAILABLE, not a refusal.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := commands.Message{EventID: "form-late", User: ann, Channel: "C0REL", Text: "dobro PAY-7", Via: commands.ViaSlash, Time: h.now}
	if err := h.svc.Precheck(ctx, m); commands.ErrorCode(err) != commands.EUNAVAILABLE {
		t.Errorf("Precheck with its time over = %v, want EUNAVAILABLE", err)
	}
}
