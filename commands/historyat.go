package commands

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// history at T: what was deploying at that moment, for the forensics of an
// incident ("what was deploying at 14:32?"). A release was deploying at T
// when its last dep start at or before T was not followed, by T, by its
// done, cancel or failed start. It is read from the audit log (Store.Audit
// from T minus atLookback, up to the moment every release found has ended),
// before the command's transaction, as a report is: not from the releases,
// which keep no history of their states.

// atLookback is how long before T a deployment may have started and still
// be found: longer deployments are not (a release deploying for more than
// a month has a reminder to answer first).
const atLookback = 31 * reportDay

// atWord starts history's Text when it asks for a moment (parseHistory).
const atWord = "at "

// atActions are the entries history at T reads.
var atActions = []Action{ActionStart, ActionFail, ActionFinish, ActionCancel}

// deployingAt is one release found deploying at T.
type deployingAt struct {
	ticket, env, version string
	comps                []string
	by                   string
	started              time.Time
	ended                time.Time // zero: still deploying when read
	endedHow             Action
}

// errAtDone stops the walk of the log once every release found has ended.
var errAtDone = errors.New("every release found has ended")

// parseHistoryAt reads "at T" after history: T a day or an RFC 3339 time,
// as report's dates.
func parseHistoryAt(args []string) (Command, error) {
	if len(args) != 2 {
		return Command{}, Errorf(EINVALID, "at takes one moment and nothing after: history at 2026-11-01T14:32:00Z.")
	}
	if _, err := reportDate(args[1]); err != nil {
		return Command{}, err
	}
	return Command{Verb: VerbHistory, Text: atWord + args[1]}, nil
}

// historyAtTime returns the moment a history command asks for, and whether
// it asks for one.
func historyAtTime(c Command) (time.Time, bool, error) {
	s, ok := strings.CutPrefix(c.Text, atWord)
	if c.Verb != VerbHistory || !ok {
		return time.Time{}, false, nil
	}
	t, err := reportDate(s)
	return t, true, err
}

// prepareHistoryAt reads what was deploying at the command's moment.
func (s *Service) prepareHistoryAt(ctx context.Context, c Command) (Text, error) {
	at, _, err := historyAtTime(c)
	if err != nil {
		return nil, err
	}
	if now := s.now(); at.After(now) {
		return nil, Errorf(EINVALID, "%s is in the future: history at shows what was deploying at a past moment.", at.Format(time.RFC3339))
	}
	found, err := deployingAtMoment(ctx, s.cfg.Store, at, s.cfg.Policy.DefaultEnv)
	if err != nil {
		return nil, err
	}
	when := s.clockAt(at, layoutDate)
	if len(found) == 0 {
		return say("Nothing was deploying at %s.", when), nil
	}
	b := say("Deploying at %s:", when)
	for _, d := range found {
		b = s.auditedRelease(b, d.ticket, d.env, d.version, d.comps)
		b = b.say(", started %s by %v", s.clockAt(d.started, layoutDate), Person(d.by))
		switch d.endedHow {
		case ActionFinish:
			b = b.say(", done %s", s.clockAt(d.ended, layoutDate))
		case ActionCancel:
			b = b.say(", cancelled %s", s.clockAt(d.ended, layoutDate))
		case ActionFail:
			b = b.say(", start failed %s", s.clockAt(d.ended, layoutDate))
		default:
			b = b.say(", still deploying")
		}
	}
	return b, nil
}

// deployingAtMoment returns the releases deploying at moment at, in the
// order they started, each with how and when its deployment ended (if it
// has); an entry without an environment is of defaultEnv's.
func deployingAtMoment(ctx context.Context, src AuditReader, at time.Time, defaultEnv string) ([]deployingAt, error) {
	var found []*deployingAt
	byKey := map[relKey]*deployingAt{}
	open := 0 // found and not ended yet
	err := src.Audit(ctx, AuditFilter{Since: at.Add(-atLookback), Actions: atActions}, func(e AuditEntry) error {
		if e.Ticket == "" {
			return nil
		}
		env := e.Env
		if env == "" {
			env = defaultEnv
		}
		k := relKey{e.Ticket, env}
		if !e.Time.After(at) {
			// Before T: keep each release's latest deployment.
			switch {
			case e.Action == ActionStart && e.From != StateDeploying:
				byKey[k] = &deployingAt{ticket: e.Ticket, env: env, version: e.Version, comps: listAfter(e.Detail, "locks: "), by: e.Actor, started: e.Time}
			case e.Action != ActionStart:
				delete(byKey, k)
			}
			return nil
		}
		if found == nil {
			// The first entry after T: what is left was deploying at T.
			found = []*deployingAt{}
			for _, d := range byKey {
				found = append(found, d)
			}
			open = len(found)
		}
		if d := byKey[k]; d != nil && e.Action != ActionStart && d.ended.IsZero() {
			d.ended, d.endedHow = e.Time, e.Action
			if open--; open == 0 {
				return errAtDone
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errAtDone) {
		return nil, fmt.Errorf("read the audit log for history at: %w", err)
	}
	if found == nil {
		for _, d := range byKey {
			found = append(found, d)
		}
	}
	out := make([]deployingAt, len(found))
	for i, d := range found {
		out[i] = *d
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].started.Equal(out[j].started) {
			return out[i].started.Before(out[j].started)
		}
		return out[i].ticket < out[j].ticket
	})
	return out, nil
}

// historyAt answers with what prepare read.
func (r *cmdRun) historyAt() error {
	if r.pre.historyAtErr != nil {
		if _, ok := r.pre.historyAtErr.(*Error); ok {
			return r.pre.historyAtErr
		}
		r.s.cfg.Log.Error().Err(r.pre.historyAtErr).Msg("history at failed")
		return Errorf(EUNAVAILABLE, "Could not read the audit log for history at: try again.")
	}
	r.reply(r.pre.historyAt)
	return nil
}
