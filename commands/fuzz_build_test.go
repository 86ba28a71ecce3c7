package commands_test

import (
	"context"
	"testing"

	"github.com/dobrobot/dobrobot/commands"
)

// FuzzBuild hands Service.Build whatever fields the intake could pass:
// it never fails or panics on bad input, a delivery answered invalid or
// refused leaves no audit entry, and the audit log still replays to the
// store.
func FuzzBuild(f *testing.F) {
	f.Add("7", "PAY-2", "qa", "1.0.0", "0123abc", "https://ci.example.com/7", "success")
	f.Add("8", "PAY-2", "production", "1.0.1", "", "", "failure")
	f.Add("9", "PAY-1", "", "", "", "javascript:alert(1)", "pending")
	f.Add("", "PAY-1;rm", "staging", "1 0", "\x1b[2J", "https://x/\n", "green")
	f.Add("\u202e", "pay-1", "QA", "v2.4.0-rc.1", "c", "http://ci/<x>", "success")
	f.Fuzz(func(t *testing.T, id, ticket, env, version, commit, url, status string) {
		h, _ := buildHarness(t)
		b := commands.Build{Delivery: "builds:fuzz", BodyHash: "h", Source: "builds", ID: id, Ticket: ticket,
			Env: env, Version: version, Commit: commit, URL: url, Status: commands.BuildStatus(status)}
		before := len(h.ciAudit())
		got, err := h.svc.Build(context.Background(), b)
		h.svc.Wait()
		h.drain()
		if err != nil {
			t.Fatalf("Build(%+v): %v", b, err)
		}
		after := len(h.ciAudit())
		switch got.Outcome {
		case commands.BuildInvalid, commands.BuildRefused:
			if after != before {
				t.Errorf("Build(%+v) answered %s but wrote %d audit entries", b, got.Outcome, after-before)
			}
		case commands.BuildChanged:
			if after == before {
				t.Errorf("Build(%+v) answered changed and wrote no audit entry", b)
			}
		default:
			t.Errorf("Build(%+v) answered %q", b, got.Outcome)
		}
	})
}
