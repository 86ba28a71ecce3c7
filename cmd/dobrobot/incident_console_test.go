package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestConsoleIncident: through the console on a real bbolt store, incident
// marks the done release, history's filters and overrides answer from the
// audit log, and the log, with its incident entry, exports and verifies.
func TestConsoleIncident(t *testing.T) {
	cfg, db := consoleConfig(t, `components: [backend]
users: {me: U0ANN, admin: U0ADMIN}
environments:
  - {name: qa, approval: none, needs_admin: false}
  - {name: production, approval: none, needs_admin: false}
`)
	out := runConsole(t, cfg,
		"dobro PAY-1 to production version 1.0.0 on backend", "dep start PAY-1", "dep finish PAY-1",
		"incident PAY-1 in production slow checkout",
		"history on backend by @U0ANN",
		"history at 2000-01-01",
		"overrides",
	)
	wantSaid(t, out,
		"as the cause of an incident",
		"Releases matching on backend by U0ANN, newest first:",
		"• PAY-1 in production v1.0.0 (backend) — done — requested ",
		"Nothing was deploying at 2000-01-01",
		"No admin overrides since ",
	)
	want := []string{
		"request PAY-1 U0ANN", "accept PAY-1 U0ANN", "start PAY-1 U0ANN", "finish PAY-1 U0ANN", "incident PAY-1 U0ANN",
	}
	if diff := cmp.Diff(want, exported(t, db)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	if code, out, errs := run(t, "", nil, "audit", "verify", "--db", db); code != 0 {
		t.Errorf("audit verify: exit %d\n%s%s", code, out, errs)
	}
}
