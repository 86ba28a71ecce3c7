package commands

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// overrides [since T]: every admin override the audit log holds, newest
// first: starts forced during a freeze (ActionForce), hotfixes let go first
// (ActionHotfix), and starts, finishes and cancels by someone other than
// the release's requester and admin, which the core's audit detail marks
// with overrideWord's "admin override" (a configured deployer's are not
// overrides: the role allows them). Anyone may ask: overrides are meant
// to be seen.

// VerbOverrides lists the admin overrides (overrides.go).
const VerbOverrides Verb = "overrides"

// overridesDays is how far back overrides reads without since.
const overridesDays = 30

// overridesMax is how many overrides the answer lists.
const overridesMax = 20

// overrideDetail is overrideWord's word for an admin's override.
const overrideDetail = "admin override"

// overrideActions are the entries overrides reads.
var overrideActions = []Action{ActionForce, ActionHotfix, ActionStart, ActionFinish, ActionCancel}

// parseOverrides reads overrides' words: nothing, or since T.
func parseOverrides(args []string) (Command, error) {
	c := Command{Verb: VerbOverrides}
	switch {
	case len(args) == 0:
	case len(args) == 2 && strings.EqualFold(args[0], "since"):
		if _, err := reportDate(args[1]); err != nil {
			return Command{}, err
		}
		c.Text = "since " + args[1]
	default:
		return Command{}, Errorf(EINVALID, "overrides takes nothing, or since and a date: overrides since 2026-11-01.")
	}
	return c, nil
}

// isOverride reports whether e records an admin override.
func isOverride(e AuditEntry) bool {
	switch e.Action {
	case ActionForce, ActionHotfix:
		return true
	case ActionStart, ActionFinish, ActionCancel:
		return strings.Contains(e.Detail, overrideDetail)
	}
	return false
}

// prepareOverrides reads the overrides the command asks for.
func (s *Service) prepareOverrides(ctx context.Context, c Command) (Text, error) {
	now := s.now()
	since := now.Add(-overridesDays * reportDay)
	if t, ok := strings.CutPrefix(c.Text, "since "); ok {
		var err error
		if since, err = reportDate(t); err != nil {
			return nil, err
		}
	}
	var found []AuditEntry
	err := s.cfg.Store.Audit(ctx, AuditFilter{Since: since, Until: now.Add(time.Nanosecond), Actions: overrideActions}, func(e AuditEntry) error {
		if isOverride(e) {
			found = append(found, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the audit log for overrides: %w", err)
	}
	from := s.clockAt(since, layoutDate)
	if len(found) == 0 {
		return say("No admin overrides since %s.", from), nil
	}
	b := say("Admin overrides since %s, newest first", from)
	if len(found) > overridesMax {
		b = b.say(" (the last %d of %d)", overridesMax, len(found))
	}
	b = b.say(":")
	for i := len(found) - 1; i >= 0 && i >= len(found)-overridesMax; i-- {
		e := found[i]
		what := map[Action]string{ActionForce: "forced a start during a freeze", ActionHotfix: "let a hotfix go first",
			ActionStart: "started another's release", ActionFinish: "finished another's release", ActionCancel: "cancelled another's release"}[e.Action]
		b = b.say("\n• %s — %v %s: %s", s.clockAt(e.Time, layoutDate), Person(e.Actor), what, e.Ticket)
		if s.envConfigured() && e.Env != "" {
			b = b.say(" in %s", e.Env)
		}
		if e.Detail != "" {
			b = b.say(" (%s)", e.Detail)
		}
	}
	return b, nil
}

// overrides answers with what prepare read.
func (r *cmdRun) overrides() error {
	if r.pre.overridesErr != nil {
		if _, ok := r.pre.overridesErr.(*Error); ok {
			return r.pre.overridesErr
		}
		r.s.cfg.Log.Error().Err(r.pre.overridesErr).Msg("overrides failed")
		return Errorf(EUNAVAILABLE, "Could not read the audit log for overrides: try again.")
	}
	r.reply(r.pre.overrides)
	return nil
}
