package main

import (
	"fmt"
	"time"
)

// QueueConfig is the queue section (docs/configuration.md): how the hand-off
// queue passes turns.
type QueueConfig struct {
	// ClaimWindow is how long a release told "you're next" has to dep
	// start before its turn passes to the next in line; absent: 15m. A
	// pointer, so that an explicit 0 is refused rather than taken as the
	// default.
	ClaimWindow *Duration `yaml:"claim_window"`
}

// defaultClaimWindow is queue.claim_window when the configuration does not
// set it (SPEC: "default 15m").
const defaultClaimWindow = 15 * time.Minute

// problems returns what is wrong with the section, one phrase each.
func (q QueueConfig) problems() []string {
	if q.ClaimWindow != nil && time.Duration(*q.ClaimWindow) < minReminder {
		return []string{fmt.Sprintf("queue.claim_window is %s: use at least %s, or leave it out for %s", time.Duration(*q.ClaimWindow), minReminder, defaultClaimWindow)}
	}
	return nil
}

// claimWindow returns queue.claim_window, or its default.
func (q QueueConfig) claimWindow() time.Duration {
	if q.ClaimWindow == nil {
		return defaultClaimWindow
	}
	return time.Duration(*q.ClaimWindow)
}
