package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestConsoleRollback: through the console on a real bbolt store, v1.0.0
// then v2.0.0 done in production, rollback takes backend back to v1.0.0
// in a release of the ticket that deployed it, where shows it, history in
// ENV filters, and the audit log, with its rolled_back entry, exports and
// verifies (the replay accepts the entry).
func TestConsoleRollback(t *testing.T) {
	cfg, db := consoleConfig(t, `components: [backend]
users: {me: U0ANN, admin: U0ADMIN}
environments:
  - {name: qa, approval: none, needs_admin: false}
  - {name: production, approval: none, needs_admin: false}
`)
	out := runConsole(t, cfg,
		"dobro PAY-1 to production version 1.0.0 on backend", "dep start PAY-1", "dep finish PAY-1",
		"dobro PAY-1 to production version 2.0.0 on backend", "dep start PAY-1", "dep finish PAY-1",
		"rollback backend to 3.0.0",
		"rollback backend",
		"dep start PAY-1", "dep finish PAY-1",
		"where backend",
		"history PAY-1 in qa",
	)
	wantSaid(t, out,
		"v3.0.0 was never done for backend in production",
		"Rollback of backend in production from v2.0.0 to v1.0.0: PAY-1, whose release deployed it, is in the queue (#1). Accepted: production needs no approval.",
		"• backend: v1.0.0 (PAY-1), done by @me",
		"PAY-1 has never been requested in qa.",
	)
	want := []string{
		"request PAY-1 U0ANN", "accept PAY-1 U0ANN", "start PAY-1 U0ANN", "finish PAY-1 U0ANN",
		"request PAY-1 U0ANN", "accept PAY-1 U0ANN", "start PAY-1 U0ANN", "finish PAY-1 U0ANN",
		"refused  U0ANN",
		"request PAY-1 U0ANN", "accept PAY-1 U0ANN", "rolled_back PAY-1 U0ANN", "start PAY-1 U0ANN", "finish PAY-1 U0ANN",
	}
	if diff := cmp.Diff(want, exported(t, db)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	if code, out, errs := run(t, "", nil, "audit", "verify", "--db", db); code != 0 {
		t.Errorf("audit verify: exit %d\n%s%s", code, out, errs)
	}
}
