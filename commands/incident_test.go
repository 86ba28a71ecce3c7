package commands_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
)

// TestIncident: incident marks the ticket's last done release (in ENV) as
// an incident's cause, audited done>done with its components and the note,
// which the audit replay accepts. Every refusal says why and marks nothing:
// a ticket never requested, one not done yet, one never requested in the
// environment named, one done in two environments with none named, and a
// person who is neither its requester nor an admin.
func TestIncident(t *testing.T) {
	h, _ := rollbackHarness(t)
	h.script([]step{
		{ann, "incident PAY-1", []string{"PAY-1 has never been requested: nothing to mark."}},
		{ann, "dobro PAY-1 to production version 1.0.0", []string{"is in the queue"}},
		{ann, "incident PAY-1", []string{"PAY-1 has no done release (its last is requested): only a done release can be an incident's cause."}},
		{approver, "accept PAY-1", []string{"You accepted PAY-1."}},
		{ann, "dep start PAY-1", []string{"Deploy of PAY-1 started."}},
		{ann, "incident PAY-1 in production", []string{"PAY-1 has no done release in production (its last is deploying)"}},
		{ann, "dep finish PAY-1", []string{"PAY-1 is done."}},
		{ann, "incident PAY-1 in qa", []string{"PAY-1 has never been requested in qa: nothing to mark."}},
		{guest, "incident PAY-1", []string{"Only the requester", "or an admin can incident PAY-1."}},
		{bob, "incident PAY-1", []string{"Only the requester", "or an admin can incident PAY-1."}},
		{ann, "incident PAY-1 in production db timeouts", []string{"Marked ", "PAY-1", " in production (done ", "as the cause of an incident"}},
		{admin, "incident PAY-1", []string{"Marked ", "PAY-1", " in production"}},
		{ann, "dobro PAY-1 to qa version 1.0.0", []string{"is in the queue"}},
		{ann, "dep start PAY-1", []string{"Deploy of PAY-1 started."}},
		{ann, "dep finish PAY-1", []string{"PAY-1 is done."}},
		{ann, "incident PAY-1", []string{"PAY-1 was done in ", "say which, e.g. incident PAY-1 in "}},
		{ann, "incident PAY-1 in qa", []string{"Marked ", "PAY-1", " in qa"}},
	})
	var marks []commands.AuditEntry
	for _, e := range h.auditEntries() {
		if e.Action == commands.ActionIncident {
			marks = append(marks, e)
		}
	}
	mark := func(who, env, detail string) commands.AuditEntry {
		return commands.AuditEntry{Actor: who, Action: commands.ActionIncident, Ticket: "PAY-1", Env: env, Version: "1.0.0",
			From: commands.StateDone, To: commands.StateDone, Detail: detail}
	}
	want := []commands.AuditEntry{
		mark(ann, "production", "components: backend,payments; note: db timeouts"),
		mark(admin, "production", "components: backend,payments"),
		mark(ann, "qa", "components: backend,payments"),
	}
	if diff := cmp.Diff(want, marks, cmpAuditFacts); diff != "" {
		t.Errorf("incident entries (-want +got):\n%s", diff)
	}
	h.audit() // the chain verifies
	if err := replayMatches(h); err != nil {
		t.Error(err)
	}
}

// TestIncidentReplay: the replay accepts an incident entry only done>done.
func TestIncidentReplay(t *testing.T) {
	p := commands.NewProjection()
	for _, e := range []commands.AuditEntry{
		{Seq: 1, Action: commands.ActionRequest, Ticket: "PAY-1", From: commands.StateNone, To: commands.StateRequested},
		{Seq: 2, Action: commands.ActionCancel, Ticket: "PAY-1", From: commands.StateRequested, To: commands.StateCancelled},
		{Seq: 3, Action: commands.ActionIncident, Ticket: "PAY-1", From: commands.StateDone, To: commands.StateDone},
	} {
		if err := p.Add(e); err != nil {
			t.Fatalf("entry %d: %v", e.Seq, err)
		}
	}
	if err := p.Add(commands.AuditEntry{Seq: 4, Action: commands.ActionIncident, Ticket: "PAY-1", From: commands.StateDone, To: commands.StateRequested}); err == nil {
		t.Fatal("an incident entry done>requested replayed")
	}
}

// TestReportIncident: an incident mark is a change failure of the marked
// deployment, counted in the period it was done in, and its components
// wait from the mark until each is done again. R-1 is done on day -5 and
// fine. R-2 (backend and payments) is done on day -3 and marked on day -2
// at 10:00; R-3 (backend) is done on day -2 at 13:00 and R-4 (payments) on
// day -2 at 14:00: the restore ends with R-4, 4 h after the mark. R-0 (ios)
// is done on day -9, in the previous period, and marked on day -1: a
// failure of the previous period, whose restore starts in the current one
// and waits for ios, never done since. Current period (last 7 days): 4
// deploys, 4 ended, 1 failed, 1 incident, one restore of 4 h, 1
// unrestored (R-0's); previous: 1 deploy, 1 ended, 1 failed, 1 incident.
// incidentHistory is TestReportIncident's: R-2 (backend, payments) done on
// day -3 and marked as an incident's cause on day -2 at 10:00, restored by
// R-3 (backend) and R-4 (payments); R-0 (ios), done on day -9, marked on
// day -1 and not restored.
func incidentHistory(t *testing.T) []commands.AuditEntry {
	var entries []commands.AuditEntry
	entries = append(entries, simple(t, "R-0", "production", "ios", -9, 2).entries...)
	entries = append(entries, simple(t, "R-1", "production", "backend", -5, 2).entries...)
	entries = append(entries, newRelease(t, "R-2", "production", "backend, payments", dayAt(-3, 9)).accept(dayAt(-3, 10)).
		start(dayAt(-3, 11)).finish(dayAt(-3, 12)).entries...)
	incident := func(ticket string, at time.Time, comps string) commands.AuditEntry {
		return commands.AuditEntry{Time: at, Actor: "U1", Action: commands.ActionIncident, Ticket: ticket, Env: "production",
			From: commands.StateDone, To: commands.StateDone, Detail: "components: " + comps + "; note: 5xx"}
	}
	entries = append(entries, incident("R-2", dayAt(-2, 10), "backend,payments"))
	entries = append(entries, newRelease(t, "R-3", "production", "backend", dayAt(-2, 10)).accept(dayAt(-2, 11)).
		start(dayAt(-2, 12)).finish(dayAt(-2, 13)).entries...)
	entries = append(entries, newRelease(t, "R-4", "production", "payments", dayAt(-2, 11)).accept(dayAt(-2, 12)).
		start(dayAt(-2, 13)).finish(dayAt(-2, 14)).entries...)
	entries = append(entries, incident("R-0", dayAt(-1, 9), "ios"))

	return entries
}

func TestReportIncident(t *testing.T) {
	entries := incidentHistory(t)

	p := commands.Period{Since: reportNow.Add(-7 * 24 * time.Hour), Until: reportNow}
	b := commands.NewReportBuilder(p, "")
	for _, e := range entries {
		b.Add(e)
	}
	rep := b.Report()
	if len(rep.Envs) != 1 {
		t.Fatalf("environments %+v, want production alone", rep.Envs)
	}
	figs := func(f commands.Figures) string {
		return fmt.Sprintf("deploys %d ended %d failed %d incidents %d rolled back %d restores %d p50 %v unrestored %d",
			f.Deploys, f.Ended, f.Failed, f.Incidents, f.RolledBack, f.Restore.N, f.Restore.P50, f.Unrestored)
	}
	got := []string{figs(rep.Envs[0].Current), figs(rep.Envs[0].Previous)}
	want := []string{
		"deploys 4 ended 4 failed 1 incidents 1 rolled back 0 restores 1 p50 4h0m0s unrestored 1",
		"deploys 1 ended 1 failed 1 incidents 1 rolled back 0 restores 0 p50 0s unrestored 0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("figures, current then previous (-want +got):\n%s", diff)
	}
	if table := commands.ReportTable(rep.Envs[0]); !strings.Contains(table, "(0 rolled back), 1 incident(s)\n") {
		t.Errorf("the table does not count the incident:\n%s", table)
	}
}
