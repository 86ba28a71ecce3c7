package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/bolttest"
)

// TestRedirect: the reply to a message the adapter takes no command from is
// queued once per event, with the event recorded processed, and the
// adapter's Notify hook is called.
func TestRedirect(t *testing.T) {
	db := bolttest.Open(t)
	notified := 0
	svc := commands.NewService(commands.Config{Store: db, Now: time.Now, Notify: func() { notified++ }})
	ctx := context.Background()
	m := commands.Message{EventID: "EvELSE", User: "U0ANN", Channel: "C0OTHER", Via: commands.ViaMention, Text: "dobro PAY-1"}
	for range 2 {
		if err := svc.Redirect(ctx, m, commands.Text{commands.Plain("not here")}); err != nil {
			t.Fatal(err)
		}
	}
	effects, err := db.Pending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []commands.Effect{{ID: 1, Kind: commands.EffectReply, Event: "EvELSE", User: "U0ANN", Channel: "C0OTHER",
		Via: commands.ViaMention, Text: commands.Text{commands.Plain("not here")}}}
	if diff := cmp.Diff(want, effects); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	if notified == 0 {
		t.Error("Notify was not called after the reply was queued")
	}
	if fresh, err := svc.Receive(ctx, m); err != nil || fresh {
		t.Errorf("Receive of the redirected event: %t, %v; want false (recorded)", fresh, err)
	}
}

// TestSetCard: the card's reference is kept on the release, and a release
// that does not exist is ENOTFOUND.
func TestSetCard(t *testing.T) {
	db := bolttest.Open(t)
	svc := commands.NewService(commands.Config{Store: db, Now: time.Now})
	ctx := context.Background()
	var id uint64
	if err := db.Update(ctx, func(tx commands.Tx) error {
		r, err := tx.PutRelease(commands.Release{Ticket: "PAY-1", State: commands.StateRequested})
		id = r.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetCard(ctx, id, "1700000000.000100"); err != nil {
		t.Fatal(err)
	}
	var got commands.Release
	if err := db.View(ctx, func(tx commands.Tx) (err error) { got, err = tx.Release(id); return err }); err != nil {
		t.Fatal(err)
	}
	if got.Card != "1700000000.000100" {
		t.Errorf("card = %q, want the ts given", got.Card)
	}
	if err := svc.SetCard(ctx, id+1, "x"); commands.ErrorCode(err) != commands.ENOTFOUND {
		t.Errorf("SetCard of a missing release: %v, want ENOTFOUND", err)
	}
}
