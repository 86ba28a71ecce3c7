package commands

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// history's filters: history [TICKET] [in ENV] [on COMPONENT] [by USER]
// [since T] [until T], in any order. Without on, by, since and until it is
// the history of the releases as before (reads.go); with any of them it is
// read from the audit log, before the command's transaction, as a report
// is: a release matches when it was requested in [since, until) (since
// defaults to historyLookback before until), by USER (its requester: a
// Slack mention arrives as the user's ID), in ENV, touching COMPONENT.

// historyLookback bounds the walk of the log when no since is given.
const historyLookback = 90 * reportDay

// historyMax is how many releases history lists, newest first.
const historyMax = 10

// userID is what by accepts: a user's ID as the adapters pass it.
var userID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// parseHistory reads history's words. Filters other than in go, in a fixed
// order, to Component (on) and Text ("by U since T until T"), so that the
// command renders back as text that parses to it.
func parseHistory(args []string, envs []string) (Command, error) {
	c := Command{Verb: VerbHistory}
	const how = "history [TICKET] [in ENV] [on COMPONENT] [by @person] [since T] [until T], or history at T"
	if len(args) > 0 && strings.EqualFold(args[0], "at") {
		return parseHistoryAt(args)
	}
	if len(args) > 0 && !isHistoryWord(args[0]) {
		t, err := ticketArg(VerbHistory, args)
		if err != nil {
			return Command{}, err
		}
		c.Ticket, args = t, args[1:]
	}
	var by, since, until string
	seen := map[string]bool{}
	for len(args) > 0 {
		kw := strings.ToLower(args[0])
		if !isHistoryWord(kw) && ValidTicket(strings.ToUpper(args[0])) {
			return Command{}, Errorf(EINVALID, "history takes at most one ticket: history or history PAY-123.")
		}
		if !isHistoryWord(kw) || kw == "at" {
			return Command{}, Errorf(EINVALID, "%s is not a history filter: %s.", quoteArg(args[0]), how)
		}
		if len(args) < 2 {
			return Command{}, Errorf(EINVALID, "%s needs a value: %s.", kw, how)
		}
		if seen[kw] {
			return Command{}, Errorf(EINVALID, "%s is given twice: %s.", kw, how)
		}
		seen[kw] = true
		val := args[1]
		switch kw {
		case "in":
			if len(envs) == 0 {
				return Command{}, Errorf(EINVALID, "in needs environments configured: %s.", how)
			}
			env, err := envArg(VerbHistory, args[0], args[1:], envs)
			if err != nil {
				return Command{}, err
			}
			c.Env = env
		case "on":
			comp := strings.ToLower(val)
			if !ValidComponent(comp) {
				return Command{}, Errorf(EINVALID, "%s is not a component name (letters, digits, . _ -).", quoteArg(val))
			}
			c.Component = comp
		case "by":
			u := strings.TrimPrefix(val, "@")
			if !userID.MatchString(u) {
				return Command{}, Errorf(EINVALID, "%s is not a person: by @someone.", quoteArg(val))
			}
			by = u
		case "since", "until":
			if _, err := reportDate(val); err != nil {
				return Command{}, err
			}
			if kw == "since" {
				since = val
			} else {
				until = val
			}
		}
		args = args[2:]
	}
	if since != "" && until != "" {
		s, _ := reportDate(since)
		u, _ := reportDate(until)
		if !s.Before(u) {
			return Command{}, Errorf(EINVALID, "since must come before until (since %s until %s).", since, until)
		}
	}
	var parts []string
	for _, p := range [][2]string{{"by", by}, {"since", since}, {"until", until}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+p[1])
		}
	}
	c.Text = strings.Join(parts, " ")
	return c, nil
}

func isHistoryWord(w string) bool {
	switch strings.ToLower(w) {
	case "in", "on", "by", "since", "until", "at":
		return true
	}
	return false
}

// historyFilter is a filtered history's question.
type historyFilter struct {
	ticket, env, comp, by string
	since, until          time.Time
}

// filtered reports whether c asks for a filtered history, and its filter.
func filtered(c Command, now time.Time) (historyFilter, bool, error) {
	if c.Verb != VerbHistory || strings.HasPrefix(c.Text, atWord) || (c.Component == "" && c.Text == "") {
		return historyFilter{}, false, nil
	}
	f := historyFilter{ticket: c.Ticket, env: c.Env, comp: c.Component, until: now}
	w := strings.Fields(c.Text)
	for i := 0; i+1 < len(w); i += 2 {
		switch w[i] {
		case "by":
			f.by = w[i+1]
		case "since", "until":
			t, err := reportDate(w[i+1])
			if err != nil {
				return f, true, err
			}
			if w[i] == "since" {
				f.since = t
			} else {
				f.until = t
			}
		}
	}
	if f.since.IsZero() {
		f.since = f.until.Add(-historyLookback)
	}
	return f, true, nil
}

// histRel is one release as the log tells it.
type histRel struct {
	ticket, env, version, requester string
	comps                           []string
	requested, ended                time.Time
	state                           State
}

// prepareHistory reads the releases a filtered history asks for.
func (s *Service) prepareHistory(ctx context.Context, c Command) (Text, error) {
	f, _, err := filtered(c, s.now())
	if err != nil {
		return nil, err
	}
	var found []*histRel
	open := map[relKey]*histRel{}
	err = s.cfg.Store.Audit(ctx, AuditFilter{Since: f.since, Until: f.until, Ticket: f.ticket}, func(e AuditEntry) error {
		if e.Ticket == "" {
			return nil
		}
		env := e.Env
		if env == "" {
			env = s.cfg.Policy.DefaultEnv
		}
		k := relKey{e.Ticket, env}
		if e.Action == ActionRequest {
			h := &histRel{ticket: e.Ticket, env: env, version: e.Version, requester: e.Actor, comps: listAfter(e.Detail, "components: "), requested: e.Time, state: e.To}
			open[k] = h
			if (f.env == "" || f.env == env) && (f.by == "" || f.by == e.Actor) && (f.comp == "" || contains(h.comps, f.comp)) {
				found = append(found, h)
			}
			return nil
		}
		if h := open[k]; h != nil && e.To != StateNone && e.Action != ActionRefused {
			h.state = e.To
			if !e.To.Open() {
				h.ended = e.Time
				delete(open, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the audit log for history: %w", err)
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].requested.After(found[j].requested) })
	if len(found) > historyMax {
		found = found[:historyMax]
	}
	what := "Releases " + historyWhat(c)
	if len(found) == 0 {
		return say("No releases %s.", historyWhat(c)), nil
	}
	b := say("%s, newest first:", what)
	for _, h := range found {
		b = s.auditedRelease(b, h.ticket, h.env, h.version, h.comps)
		b = b.say(" — %s — requested %s by %v", h.state, s.clockAt(h.requested, layoutDate), Person(h.requester))
		if !h.ended.IsZero() {
			b = b.say(", ended %s", s.clockAt(h.ended, layoutDate))
		}
	}
	return b, nil
}

// historyWhat says what a filtered history asked for, as typed.
func historyWhat(c Command) string {
	s := strings.TrimPrefix(c.String(), string(VerbHistory))
	return "matching" + s
}

// historyFiltered answers with what prepare read.
func (r *cmdRun) historyFiltered() error {
	if r.pre.historyAtErr != nil {
		if _, ok := r.pre.historyAtErr.(*Error); ok {
			return r.pre.historyAtErr
		}
		r.s.cfg.Log.Error().Err(r.pre.historyAtErr).Msg("history failed")
		return Errorf(EUNAVAILABLE, "Could not read the audit log for history: try again.")
	}
	r.reply(r.pre.historyAt)
	return nil
}

// auditedRelease appends a list line's head for a release read from the
// audit log: "• PAY-1 in qa v2.4.0 (backend, payments)", the environment
// only when environments are configured. history's filters and history at
// T list releases so.
func (s *Service) auditedRelease(b Text, ticket, env, version string, comps []string) Text {
	b = b.say("\n• %s", ticket)
	if s.envConfigured() {
		b = b.say(" in %s", env)
	}
	if version != "" {
		b = b.say(" %s", versionText(version))
	}
	if len(comps) > 0 {
		b = b.say(" (%s)", strings.Join(comps, ", "))
	}
	return b
}
