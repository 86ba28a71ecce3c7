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
	Approval  Duration `yaml:"approval"`  // a request waiting for approvers: DM them again
	Repeat    Duration `yaml:"repeat"`    // then again at this interval, counted from the last one
	Claim     Duration `yaml:"claim"`     // an accepted release waiting for an admin: DM the admins again
	Start     Duration `yaml:"start"`     // a release ready to start that nobody started: DM its requester
	Deploying Duration `yaml:"deploying"` // deploying this long: ask the requester and admin
	// EscalateAfter is how many reminders of a kind go by DM alone before
	// the next ones are also said in the card's thread.
	EscalateAfter int               `yaml:"escalate_after"`
	QuietHours    *QuietHoursConfig `yaml:"quiet_hours"`
}

// QuietHoursConfig is reminders.quiet_hours: reminders falling due between
// From and To (HH:MM in TZ, default the configured timezone, else UTC)
// are held until To; with Weekends, all of Saturday and Sunday too.
type QuietHoursConfig struct {
	From     string `yaml:"from"`
	To       string `yaml:"to"`
	TZ       string `yaml:"tz"`
	Weekends bool   `yaml:"weekends"`
}

// clock parses a time of day, HH:MM, as an offset from midnight.
func clock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM, 00:00 to 23:59)", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// quiet returns the quiet hours as the core takes them; zone is the
// configured timezone, used when tz is not given.
func (q *QuietHoursConfig) quiet(zone string) (commands.QuietHours, error) {
	if q == nil {
		return commands.QuietHours{}, nil
	}
	from, err := clock(q.From)
	if err != nil {
		return commands.QuietHours{}, fmt.Errorf("reminders.quiet_hours.from: %w", err)
	}
	to, err := clock(q.To)
	if err != nil {
		return commands.QuietHours{}, fmt.Errorf("reminders.quiet_hours.to: %w", err)
	}
	name := q.TZ
	if name == "" {
		name = zone
	}
	if name == "" {
		name = "UTC"
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return commands.QuietHours{}, fmt.Errorf("reminders.quiet_hours.tz: %q is not a time zone (an IANA name such as Europe/Berlin, or UTC)", name)
	}
	return commands.QuietHours{From: from, To: to, Zone: loc, Weekends: q.Weekends}, nil
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
	}{{"approval", r.Approval}, {"repeat", r.Repeat}, {"claim", r.Claim}, {"start", r.Start}, {"deploying", r.Deploying}} {
		if d.v != 0 && time.Duration(d.v) < minReminder {
			out = append(out, fmt.Sprintf("reminders.%s is %s: use at least %s, or leave it out to turn it off", d.key, time.Duration(d.v), minReminder))
		}
	}
	if r.EscalateAfter < 0 {
		out = append(out, fmt.Sprintf("reminders.escalate_after is %d: use a count of reminders, 1 or more, or leave it out", r.EscalateAfter))
	}
	if r.QuietHours != nil {
		if r.QuietHours.From == r.QuietHours.To && !r.QuietHours.Weekends {
			out = append(out, "reminders.quiet_hours: from and to are the same time: no hour would be quiet")
		}
		// Without tz the configured timezone applies, which its own
		// check covers: here UTC stands in for it.
		if _, err := r.QuietHours.quiet(""); err != nil {
			out = append(out, err.Error())
		}
	}
	return out
}

// core returns the section as the core takes it; zone is the configured
// timezone (problems has checked the section, so no error is left).
func (r RemindersConfig) core(zone string) commands.Reminders {
	quiet, _ := r.QuietHours.quiet(zone)
	return commands.Reminders{Approval: time.Duration(r.Approval), Repeat: time.Duration(r.Repeat),
		Claim: time.Duration(r.Claim), Start: time.Duration(r.Start), Deploying: time.Duration(r.Deploying),
		EscalateAfter: r.EscalateAfter, Quiet: quiet}
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
