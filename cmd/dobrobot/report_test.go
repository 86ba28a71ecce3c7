package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/cmd/internal/adminsock"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// seedReportHistory writes 40 releases over 60 days before end into db's
// audit log, in production (no env, as without environments) and qa: some
// done, some failed and fixed, some rolled back, some marked as an
// incident's cause.
func seedReportHistory(t *testing.T, db *storage.DB, end time.Time) {
	t.Helper()
	err := db.Update(context.Background(), func(tx commands.Tx) error {
		for i := range 40 {
			env, ticket := "", fmt.Sprintf("PAY-%d", i+1)
			if i%3 == 0 {
				env = "qa"
			}
			at := end.Add(-time.Duration(60-i*3/2) * 24 * time.Hour)
			state := commands.StateNone
			step := func(a commands.Action, after time.Duration, detail string) error {
				to, _ := commands.Next(state, a)
				if a == commands.ActionIncident {
					to = state // the release stays done
				}
				_, err := tx.AppendAudit(commands.AuditEntry{Time: at.Add(after), Actor: "U1", Action: a, Ticket: ticket, Env: env,
					From: state, To: to, Detail: detail, Via: commands.SourceSlack})
				state = to
				return err
			}
			steps := []error{
				step(commands.ActionRequest, 0, "components: backend"),
				step(commands.ActionAccept, time.Duration(i)*time.Hour, ""),
				step(commands.ActionStart, time.Duration(i+1)*time.Hour, "locks: backend"),
			}
			switch i % 5 {
			case 1:
				steps = append(steps, step(commands.ActionFail, time.Duration(i+2)*time.Hour, "start hook failed"),
					step(commands.ActionStart, time.Duration(i+3)*time.Hour, "locks: backend"))
			case 3:
				steps = append(steps, step(commands.ActionCancel, time.Duration(i+2)*time.Hour, "cancel hook attempt x"))
			}
			if i%5 != 3 {
				steps = append(steps, step(commands.ActionFinish, time.Duration(2*i+4)*time.Hour, ""))
				if i%7 == 6 { // marked as an incident's cause: done>done
					steps = append(steps, step(commands.ActionIncident, time.Duration(2*i+6)*time.Hour, "incident: checkout down"))
				}
			}
			for _, err := range steps {
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReportCLIAndChatAgree asks for the same report in chat and with
// dobrobot report on the same database, while a "bot" holds it (through the
// admin socket) and after, and compares: the CLI's text is the chat's answer,
// and its json and csv carry the figures the report computes.
func TestReportCLIAndChatAgree(t *testing.T) {
	end := time.Now().UTC().Truncate(24 * time.Hour)
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	db, err := openDB(path)
	if err != nil {
		t.Fatal(err)
	}
	seedReportHistory(t, db, end)
	args := []string{"since", end.Add(-30 * 24 * time.Hour).Format(time.DateOnly), "until", end.Format(time.DateOnly)}

	svc := commands.NewService(commands.Config{Store: db, Now: func() time.Time { return end }, Log: zerolog.Nop()})
	ctx := context.Background()
	m := commands.Message{EventID: "ev-1", User: "U1", Channel: "C1", Text: "report " + strings.Join(args, " "), Via: commands.ViaMention, Time: end}
	if err := svc.Handle(ctx, m); err != nil {
		t.Fatal(err)
	}
	effects, err := db.Pending(ctx, 0)
	if err != nil || len(effects) != 1 || effects[0].Kind != commands.EffectReply {
		t.Fatalf("effects %+v, %v; want one reply", effects, err)
	}
	chat := effects[0].Text.String() + "\n"
	if !strings.Contains(chat, "production ") || !strings.Contains(chat, "qa ") {
		t.Fatalf("the chat report misses an environment:\n%s", chat)
	}
	p := commands.Period{Since: end.Add(-30 * 24 * time.Hour), Until: end}
	rep, err := commands.ComputeReport(ctx, db, p, "")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Envs[0].Current.Deploys == 0 || rep.Envs[0].Previous.Deploys == 0 || rep.Envs[1].Current.Failed == 0 {
		t.Fatalf("the history gives empty figures: %+v", rep)
	}

	check := func(t *testing.T) {
		code, out, errs := run(t, "", nil, append([]string{"--log-level", "error", "report", "--db", path}, args...)...)
		if code != 0 {
			t.Fatalf("report exited %d: %s", code, errs)
		}
		if diff := cmp.Diff(chat, out); diff != "" {
			t.Errorf("CLI text vs chat (-chat +cli):\n%s", diff)
		}
		code, out, errs = run(t, "", nil, append([]string{"--log-level", "error", "report", "--db", path, "--format", "json"}, args...)...)
		var rows []reportRow
		if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil {
			t.Fatalf("report --format json exited %d (%s), %v:\n%s", code, errs, err, out)
		}
		var want []reportRow
		for _, er := range rep.Envs {
			want = append(want, rowOf(er.Env, "current", er.Current), rowOf(er.Env, "previous", er.Previous))
		}
		if diff := cmp.Diff(want, rows); diff != "" {
			t.Errorf("json rows (-want +got):\n%s", diff)
		}
		incidents := 0
		for _, r := range rows {
			incidents += r.Incidents
		}
		if incidents == 0 || !strings.Contains(out, `"incidents": `) {
			t.Errorf("json rows carry no incidents (%d), though the history marks some:\n%s", incidents, out)
		}
		code, out, errs = run(t, "", nil, append([]string{"--log-level", "error", "report", "--db", path, "--format", "csv"}, args...)...)
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if code != 0 || err != nil || len(recs) != 1+len(want) {
			t.Fatalf("report --format csv exited %d (%s), %v:\n%s", code, errs, err, out)
		}
		if diff := cmp.Diff(reportColumns, recs[0]); diff != "" {
			t.Errorf("csv header (-want +got):\n%s", diff)
		}
		for i, w := range want {
			if diff := cmp.Diff(w.record(), recs[i+1]); diff != "" {
				t.Errorf("csv row %d (-want +got):\n%s", i+1, diff)
			}
		}
	}
	// While the bot holds the file, through its admin socket.
	admin, err := adminsock.Start(db, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("bot running", check)
	if err := admin.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("file", check)
}

// TestReportCLIRefusesBadInput: a bad period or environment is a usage
// error that says what is wrong.
func TestReportCLIRefusesBadInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dobrobot.db")
	db, err := openDB(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"last", "0d"}, `dobrobot: "0d" is not a number of days from 1d to 366d`},
		{[]string{"since", "2999-01-01"}, "dobrobot: That period starts in the future (2999-01-01T00:00:00Z)."},
		{[]string{"qa!"}, `dobrobot: "qa!" is neither an environment nor a period`},
	}
	for _, tt := range tests {
		code, out, errs := run(t, "", nil, append([]string{"report", "--db", path}, tt.args...)...)
		if code != exitUsage || out != "" || !strings.HasPrefix(errs, tt.want) {
			t.Errorf("report %v: exit %d, stdout %q, stderr %q; want %d and %q", tt.args, code, out, errs, exitUsage, tt.want)
		}
	}
}
