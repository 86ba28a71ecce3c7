package storagetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dobrobot/dobrobot/commands"
)

// testProjection: commands.VerifyStore, which dobrobot run and audit verify
// use, works through the Store port alone: on a state written with its
// audit entries it reports the head, and a lock or a freeze deleted
// without an entry is a *commands.ProjectionError naming it.
func testProjection(t *testing.T, s commands.Store, _ func() commands.Store) {
	ctx := context.Background()
	rel := write(t, s, func(tx commands.Tx) (commands.Release, error) {
		r, err := tx.PutRelease(release("PAY-1", commands.StateDeploying, 0))
		if err != nil {
			return r, err
		}
		for _, l := range []commands.Lock{
			{Component: "backend", Release: r.ID, Ticket: "PAY-1", By: "U01ANN", Since: at(3)},
			{Component: "ios", By: "U0ADMIN", Since: at(4), Reason: "quarter end"},
		} {
			if err := tx.PutLock(l); err != nil {
				return r, err
			}
		}
		for i, e := range []commands.AuditEntry{
			{Action: commands.ActionRequest, Ticket: "PAY-1", To: commands.StateRequested, Detail: "components: backend,payments"},
			{Action: commands.ActionAccept, Ticket: "PAY-1", From: commands.StateRequested, To: commands.StateAccepted},
			{Action: commands.ActionStart, Ticket: "PAY-1", From: commands.StateAccepted, To: commands.StateDeploying, Detail: "locks: backend"},
			{Action: commands.ActionLock, Detail: "ios: quarter end"},
		} {
			e.Time, e.Actor = at(i), "U01ANN"
			if _, err := tx.AppendAudit(e); err != nil {
				return r, err
			}
		}
		return r, nil
	})
	head, err := commands.VerifyStore(ctx, s, nil)
	if err != nil || head.Seq != 4 {
		t.Fatalf("VerifyStore of a sound store = %v, %v; want seq 4", head, err)
	}
	if _, err := commands.VerifyStore(ctx, s, &head); err != nil {
		t.Errorf("VerifyStore against its own head: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(tx commands.Tx) error
		want string
	}{
		{"a lock deleted", func(tx commands.Tx) error { return tx.DeleteLock("backend", rel.ID, "") },
			"backend: the audit log says PAY-1 holds it, the store has no lock"},
		{"a freeze deleted", func(tx commands.Tx) error { return tx.DeleteLock("ios", 0, "") },
			"ios: the audit log says it is frozen, the store has no freeze"},
	} {
		update(t, s, tc.edit)
		_, err := commands.VerifyStore(ctx, s, nil)
		var pe *commands.ProjectionError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: VerifyStore = %v; want a *ProjectionError saying %q", tc.name, err, tc.want)
		}
	}
}
