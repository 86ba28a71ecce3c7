package bot

import (
	"context"

	"github.com/dobrobot/dobrobot/commands"
)

// Service is what the chat adapters ask of the core (a *commands.Service):
// they hand it messages and give it what it keeps for them, and never write
// the Store themselves.
type Service interface {
	// Receive records a message in the inbox before it is acknowledged.
	Receive(ctx context.Context, m commands.Message) (bool, error)
	// Handle runs a received message's command.
	Handle(ctx context.Context, m commands.Message) error
	// Recover handles what a previous run left unfinished.
	Recover(ctx context.Context) error
	// Redirect answers a message the adapter takes no command from.
	Redirect(ctx context.Context, m commands.Message, text commands.Text) error
	// SetCard keeps the reference of a release's card.
	SetCard(ctx context.Context, release uint64, ref string) error
	// Home returns a person's App Home, read in one transaction.
	Home(ctx context.Context, user string) (commands.HomeView, error)
	// Wait returns when the hooks and comments running have ended.
	Wait()
}

// Outbox is what the chat adapters read of the Store: the effects to
// deliver, which they mark delivered, and the releases their cards show.
// The effects it returns may be shared with the Store's cache
// (commands.Store): an adapter reads them and never changes them in place.
type Outbox interface {
	View(ctx context.Context, fn func(commands.Tx) error) error
	Pending(ctx context.Context, max int) ([]commands.Effect, error)
	PendingAfter(ctx context.Context, after uint64, max int) ([]commands.Effect, error)
	Delivered(ctx context.Context, ids ...uint64) error
}

// Recorder is what a standby bot (Slack.Standby) asks of the store: to
// record an event it acknowledges, for the leader to carry out. It changes
// nothing else (a *postgres.Inbox).
type Recorder interface {
	// Record records m as pending unless its event is recorded already,
	// and reports whether it was new.
	Record(ctx context.Context, m commands.Message) (bool, error)
}

var (
	_ Service = (*commands.Service)(nil)
	_ Outbox  = commands.Store(nil)
)
