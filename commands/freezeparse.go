package commands

import (
	"strings"
	"time"
)

// parseFreezeArgs reads the arguments of dep start (a ticket, [in ENV],
// then force REASON…), freeze ([in ENV] until T [reason…]) and unfreeze
// (one name).
func parseFreezeArgs(spec verbSpec, args []string, envs []string) (Command, error) {
	v := spec.Verb
	c := Command{Verb: v}
	switch spec.Args {
	case argStart:
		t, err := ticketArg(v, args)
		if err != nil {
			return Command{}, err
		}
		if c.Env, args, err = inEnv(v, args, envs); err != nil {
			return Command{}, err
		}
		c.Ticket = t
		rest := args[1:]
		if len(rest) == 0 {
			return c, nil
		}
		if !strings.EqualFold(rest[0], "force") {
			return Command{}, Errorf(EINVALID, "%s takes one ticket: %s %s (or, during a freeze, %s %s force REASON).", v, v, t, v, t)
		}
		if c.Text = freeText(rest[1:]); c.Text == "" {
			return Command{}, Errorf(EINVALID, "force needs a reason, which is audited and announced: %s %s force hotfix for the outage.", v, t)
		}
		c.Force = true
	case argFreeze:
		if len(envs) > 0 && len(args) >= 1 && strings.EqualFold(args[0], "in") {
			env, err := envArg(v, args[0], args[1:], envs)
			if err != nil {
				return Command{}, err
			}
			c.Env, args = env, args[2:]
		}
		if len(args) < 2 || !strings.EqualFold(args[0], "until") {
			return Command{}, Errorf(EINVALID, "freeze needs an end: freeze until 18:00 [reason], freeze in production until 2026-12-27T09:00 release freeze.")
		}
		if _, err := resolveUntil(args[1], time.Time{}, time.UTC); err != nil {
			return Command{}, err
		}
		c.Until, c.Text = args[1], freeText(args[2:])
	case argName:
		if len(args) == 0 {
			return Command{}, Errorf(EINVALID, "%s needs a name: %s NAME (freezes lists them).", v, v)
		}
		if len(args) > 1 {
			return Command{}, Errorf(EINVALID, "%s takes one name: %s NAME (freezes lists them).", v, v)
		}
		if !ValidComponent(strings.ToLower(args[0])) {
			return Command{}, Errorf(EINVALID, "%s is not a freeze name (letters, digits, . _ -): freezes lists them.", quoteArg(args[0]))
		}
		c.Name = strings.ToLower(args[0])
	}
	return c, nil
}

// untilLayouts are the forms of freeze's T that name a date, in the
// configured timezone.
var untilLayouts = []string{"2006-01-02T15:04", "2006-01-02"}

// resolveUntil turns freeze's T into a time after now, in zone: a clock time
// (15:04, the next one to come), a date or a date and time, or a duration
// from now (2h, 90m). A zero now checks the form only (at parse time).
func resolveUntil(s string, now time.Time, zone *time.Location) (time.Time, error) {
	bad := Errorf(EINVALID, "%s is not an end time: write 18:00, 2026-12-27, 2026-12-27T09:00 or 2h (in the configured timezone).", quoteArg(s))
	var t time.Time
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, bad
		}
		t = now.Add(d)
	} else if c, err := time.ParseInLocation("15:04", s, zone); err == nil {
		local := now.In(zone)
		t = time.Date(local.Year(), local.Month(), local.Day(), c.Hour(), c.Minute(), 0, 0, zone)
		if !t.After(now) {
			t = time.Date(local.Year(), local.Month(), local.Day()+1, c.Hour(), c.Minute(), 0, 0, zone)
		}
	} else {
		ok := false
		for _, layout := range untilLayouts {
			if t, err = time.ParseInLocation(layout, s, zone); err == nil {
				ok = true
				break
			}
		}
		if !ok {
			return time.Time{}, bad
		}
	}
	if !now.IsZero() && !t.After(now) {
		return time.Time{}, Errorf(EINVALID, "%s is already past: a freeze must end in the future.", quoteArg(s))
	}
	return t.UTC(), nil
}
