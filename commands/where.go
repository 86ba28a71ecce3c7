package commands

import (
	"slices"
	"time"
)

// where answers what runs where: for each environment, in promotion order,
// and each component (only the one named, if any), the version and ticket
// last done there, by whom and when, from the "what is where" index; then
// what is deploying now. It reads the index and the open releases, never
// the history.
func (r *cmdRun) where() error {
	t, err := r.s.whereText(r.tx, r.now, r.cmd.Component)
	if err != nil {
		return err
	}
	r.reply(t)
	return nil
}

// whereText is where's answer as of now, for component comp ("": every
// one): the App Home shows it too.
func (s *Service) whereText(tx Tx, now time.Time, comp string) (Text, error) {
	all, err := tx.Deployed()
	if err != nil {
		return nil, err
	}
	open, err := tx.Open()
	if err != nil {
		return nil, err
	}
	order := s.cfg.Policy.EnvNames()
	rank := func(env string) int {
		if i := slices.Index(order, env); i >= 0 {
			return i
		}
		return len(order) // an environment no longer configured: last
	}
	var shown []Deployed
	for _, d := range all {
		if comp == "" || d.Component == comp {
			shown = append(shown, d)
		}
	}
	slices.SortStableFunc(shown, func(a, b Deployed) int { return rank(a.Env) - rank(b.Env) })
	var t Text
	if len(shown) == 0 {
		t = t.plain("Nothing is recorded as done yet")
		if comp != "" {
			t = t.say(" for %v", Component(comp))
		}
		t = t.plain(".")
	} else {
		t = t.plain("What runs where:")
		env := ""
		for _, d := range shown {
			if d.Env != env {
				env = d.Env
				t = t.say("\n%s:", env)
			}
			t = t.say("\n• %v: ", Component(d.Component))
			if d.Build != "" {
				t = t.say("%s (%s)", versionText(d.Build), d.Ticket)
			} else {
				t = t.plain(d.Ticket)
			}
			t = t.say(", done by %v %s", Person(d.By), since(now, d.Done))
		}
	}
	var deploying []Release
	for _, o := range open {
		if o.State.HoldsLocks() && (comp == "" || slices.Contains(o.Components, comp)) {
			deploying = append(deploying, o)
		}
	}
	if len(deploying) > 0 {
		t = t.plain("\nDeploying now:")
		for _, o := range deploying {
			t = t.say("\n• %v in %s", TicketRef(o), s.envName(o))
			if o.Build != "" {
				t = t.say(", %s", versionText(o.Build))
			}
			t = t.say(" (%s, dep start %s)", o.State, since(now, o.Started))
			if comp == "" && len(o.Components) > 0 {
				t = t.say(": %v", componentsText(o))
			}
		}
	}
	return t, nil
}
