package commands_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestAuditHashBytes pins the hashed bytes of docs/audit.md: an entry
// without via hashes its nine fields joined by "\n", exactly as before via
// existed, so old logs keep verifying; an entry with via hashes the same
// bytes followed by "\n" and via.
func TestAuditHashBytes(t *testing.T) {
	at := time.Date(2025, 3, 3, 9, 0, 0, 120000000, time.UTC)
	e := commands.AuditEntry{Seq: 1, Time: at, Actor: "U01ANN", Action: commands.ActionRequest, Ticket: "PAY-1",
		To: commands.StateRequested, Detail: "components: backend", PrevHash: commands.GenesisHash}
	old := "1\n2025-03-03T09:00:00.12Z\nU01ANN\nrequest\nPAY-1\n\nrequested\ncomponents: backend\n" + commands.GenesisHash
	sum := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:])
	}
	for _, tc := range []struct {
		via, env, version, bytes string
	}{
		{"", "", "", old},
		{commands.SourceSlack, "", "", old + "\nslack"},
		{commands.SourceConsole, "", "", old + "\nconsole"},
		{commands.SourceDobrobot, "", "", old + "\ndobrobot"},
		// With an environment or a version, via is always hashed, even
		// empty, so that neither can pass for the other.
		{commands.SourceSlack, "qa", "v2.4.0", old + "\nslack\nqa\nv2.4.0"},
		{commands.SourceSlack, "qa", "", old + "\nslack\nqa\n"},
		{commands.SourceSlack, "", "v2.4.0", old + "\nslack\n\nv2.4.0"},
		{"", "qa", "", old + "\n\nqa\n"},
	} {
		e.Via, e.Env, e.Version = tc.via, tc.env, tc.version
		if got, want := e.ComputeHash(), sum(tc.bytes); got != want {
			t.Errorf("via %q, env %q, version %q: hash %s, want sha256(%q) = %s", tc.via, tc.env, tc.version, got, tc.bytes, want)
		}
	}
	// via is covered: changing it breaks the entry.
	sealed := commands.Seal(commands.AuditEntry{Time: at, Actor: "U01ANN", Action: commands.ActionRequest, Via: commands.SourceConsole}, 0, commands.GenesisHash)
	for _, via := range []string{"", commands.SourceSlack} {
		forged := sealed
		forged.Via = via
		if err := commands.NewVerifier().Add(forged); err == nil {
			t.Errorf("an entry sealed with via console verifies with via %q", via)
		}
	}
	if err := commands.NewVerifier().Add(sealed); err != nil {
		t.Errorf("the sealed entry: %v", err)
	}
	// env and version are covered too, and the old columns keep their
	// places: via, env and version come after hash.
	sealed = commands.Seal(commands.AuditEntry{Time: at, Actor: "U01ANN", Action: commands.ActionRequest, Ticket: "PAY-1",
		Via: commands.SourceSlack, Env: "qa", Version: "v2.4.0"}, 0, commands.GenesisHash)
	for _, forge := range []func(*commands.AuditEntry){
		func(e *commands.AuditEntry) { e.Env = "production" },
		func(e *commands.AuditEntry) { e.Env = "" },
		func(e *commands.AuditEntry) { e.Version = "v2.4.1" },
		func(e *commands.AuditEntry) { e.Env, e.Version = "", "" },
	} {
		forged := sealed
		forge(&forged)
		if err := commands.NewVerifier().Add(forged); err == nil {
			t.Errorf("an entry sealed in qa at v2.4.0 verifies as env %q, version %q", forged.Env, forged.Version)
		}
	}
	if got, want := commands.AuditColumns[10:], []string{"via", "env", "version"}; !slices.Equal(got, want) {
		t.Errorf("the CSV columns after hash are %q, want %q", got, want)
	}
	if got := sealed.Record(); len(got) != len(commands.AuditColumns) || !slices.Equal(got[10:], []string{"slack", "qa", "v2.4.0"}) {
		t.Errorf("Record() = %q, want via, env and version last, as in AuditColumns %q", got, commands.AuditColumns)
	}
}

// TestAuditEntriesRecordVia: every entry says where its action came from —
// slack for a mention, a DM or a button, console for the console, dobrobot
// for what the bot records by itself (a hook's result, a hook found running
// after a restart) — the same way for refusals (issue 12, item 9).
func TestAuditEntriesRecordVia(t *testing.T) {
	h := newHarness(t)
	h.rebuild(func(c *commands.Config) { c.Policy.Channel = "C0REL" }) // a dobro by DM needs the release channel's members (item 10)
	h.start.hold = true
	h.start.gate = make(chan commands.HookResult, 1)
	h.start.spawn = make(chan commands.Job, 1)
	send := func(user, text string, via commands.Via) {
		h.n++
		h.deliver(commands.Message{EventID: fmt.Sprintf("ev-%d", h.n), User: user, Channel: "C0REL", Text: text, Via: via, Time: h.now})
	}
	send(ann, "dobro PAY-2 no_need_admin", commands.ViaMention)
	send(approver, "accept PAY-2", commands.ViaButton)
	send(ann, "dobro PAY-4", commands.ViaDM)
	send(guest, "accept PAY-4", commands.ViaConsole) // refused: not an approver
	m := commands.Message{EventID: "start", User: ann, Text: "dep start PAY-2", Via: commands.ViaConsole}
	if _, err := h.svc.Receive(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Handle(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	<-h.start.spawn
	h.start.gate <- commands.HookResult{OK: true} // recorded by the bot: started
	h.svc.Wait()
	send(ann, "dep finish PAY-2", commands.ViaMention)

	var got []string
	err := h.db.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		got = append(got, strings.Join([]string{string(e.Action), e.Ticket, e.Via}, " "))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"request PAY-2 slack",
		"accept PAY-2 slack",
		"request PAY-4 slack",
		"refused PAY-4 console",
		"start PAY-2 console",
		"started PAY-2 dobrobot",
		"finish PAY-2 dobrobot", // written with the finish hook's result
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	h.audit() // and the chain verifies
}

// TestAuditSourceOf maps each way a message arrives to its audit source.
func TestAuditSourceOf(t *testing.T) {
	for via, want := range map[commands.Via]string{
		commands.ViaMention: "slack", commands.ViaDM: "slack", commands.ViaButton: "slack", commands.ViaSlash: "slack",
		commands.ViaConsole: "console", "": "",
	} {
		if got := commands.AuditSourceOf(via); got != want {
			t.Errorf("AuditSourceOf(%q) = %q, want %q", via, got, want)
		}
	}
}
