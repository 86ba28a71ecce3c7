package main

import (
	"context"
	"fmt"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// RemindersConfig is the reminders section (docs/reminders.md): when the bot
// follows up by itself. An absent or zero duration turns its reminder off.
type RemindersConfig struct {
	Approval Duration `yaml:"approval"` // a request waiting for approvers: DM them again
	Repeat   Duration `yaml:"repeat"`   // then again at this interval, counted from the last one
}

// minReminder is the shortest reminder duration accepted: short enough for
// a console demo (approval: 2s), long enough that a typo (1ns) cannot make
// the bot DM people in a loop.
const minReminder = time.Second

// problems returns what is wrong with the section, one phrase each.
func (r RemindersConfig) problems() []string {
	var out []string
	for _, d := range []struct {
		key string
		v   Duration
	}{{"approval", r.Approval}, {"repeat", r.Repeat}} {
		if d.v != 0 && time.Duration(d.v) < minReminder {
			out = append(out, fmt.Sprintf("reminders.%s is %s: use at least %s, or leave it out to turn it off", d.key, time.Duration(d.v), minReminder))
		}
	}
	return out
}

// core returns the section as the core takes it.
func (r RemindersConfig) core() commands.Reminders {
	return commands.Reminders{Approval: time.Duration(r.Approval), Repeat: time.Duration(r.Repeat)}
}

// runSchedule runs svc's scheduler (reminders as they fall due) until ctx
// ends or the returned function is called, which waits for it. On
// PostgreSQL serve calls it inside the leader's term only, so only the
// leader fires due times.
func runSchedule(ctx context.Context, svc *commands.Service) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.Schedule(ctx)
	}()
	return func() { cancel(); <-done }
}
