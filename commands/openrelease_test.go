package commands_test

import (
	"context"
	"testing"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/bolttest"
)

// TestOpenReleaseHelper: the core's lookup of a ticket's open release keeps
// today's answer without an environment (the newest open one; ENOTFOUND
// when none) and, with one, finds the release of that EnvName, so that a
// release written without Env is found in DefaultEnv.
func TestOpenReleaseHelper(t *testing.T) {
	db := bolttest.Open(t)
	ctx := context.Background()
	ids := map[string]uint64{}
	err := db.Update(ctx, func(tx commands.Tx) error {
		for _, r := range []struct {
			name, ticket, env string
			state             commands.State
		}{
			{"old default", "PAY-1", "", commands.StateRequested},
			{"qa", "PAY-1", "qa", commands.StateDeploying},
			{"staging, done", "PAY-1", "staging", commands.StateDone},
			{"done", "PAY-2", "", commands.StateDone},
		} {
			rel, err := tx.PutRelease(commands.Release{Ticket: r.ticket, Env: r.env, State: r.state})
			if err != nil {
				return err
			}
			ids[r.name] = rel.ID
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ticket, env string
		want        uint64 // 0: ENOTFOUND
	}{
		{"PAY-1", "", ids["qa"]},
		{"PAY-1", "qa", ids["qa"]},
		{"PAY-1", commands.DefaultEnv, ids["old default"]},
		{"PAY-1", "staging", 0},
		{"PAY-1", "nowhere", 0},
		{"PAY-2", "", 0},
		{"PAY-3", "", 0},
	} {
		var got commands.Release
		err := db.View(ctx, func(tx commands.Tx) (err error) {
			got, err = commands.OpenRelease(tx, tc.ticket, tc.env)
			return err
		})
		switch {
		case tc.want == 0 && commands.ErrorCode(err) != commands.ENOTFOUND:
			t.Errorf("openRelease(%s, %q) = release %d, %v; want ENOTFOUND", tc.ticket, tc.env, got.ID, err)
		case tc.want != 0 && (err != nil || got.ID != tc.want):
			t.Errorf("openRelease(%s, %q) = release %d, %v; want release %d", tc.ticket, tc.env, got.ID, err, tc.want)
		}
	}
}
