package commands

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Service runs commands: it parses a Message, authorises the actor, looks the
// ticket up, applies the transition in one Store transaction together with its
// audit entries and outbox effects, and runs hooks after the commit.
type Service struct {
	Store   Store
	Tracker Tracker
	Hooks   Hooks
	Groups  Groups // nil: user-group IDs in the policy match nobody
	Policy  Policy
	Now     func() time.Time
	Log     zerolog.Logger
	// Notify, if set, is called after a commit put effects in the outbox.
	Notify func()

	hooks sync.WaitGroup
}

// Receive records m in the inbox and reports whether it is new. A chat adapter
// calls it before acknowledging an event and calls Handle only when it is new;
// a redelivered event (same EventID) reports false and has no further effect.
func (s *Service) Receive(ctx context.Context, m Message) (bool, error) {
	panic("not yet")
}

// Handle runs the command in m once: a message already processed is skipped.
// What to tell whom is committed to the outbox; the returned error is only for
// failures the adapter should log (the user was told "internal error").
func (s *Service) Handle(ctx context.Context, m Message) error {
	panic("not yet")
}

// Recover runs after a start: it handles inbox events received but not yet
// processed, and reports releases whose hook was running when the bot stopped
// (their outcome is unknown; they are not re-run).
func (s *Service) Recover(ctx context.Context) error {
	panic("not yet")
}

// Wait blocks until every hook started by the Service has ended and its result
// was recorded.
func (s *Service) Wait() { s.hooks.Wait() }
