package commands

import (
	"slices"
	"time"
)

// The queue is a hand-off: a release that waits for a component another one
// holds, or that an earlier release will take first, is told its place for
// that component and, once the bot has seen deploys finish, about when its
// turn comes (SPEC: "Locks and queue", the pipeline's hand-off queue).

// recentForEstimate is how many of the most recent releases queue reads to
// learn how long a deploy takes: the finished ones among them count.
const recentForEstimate = 30

// typicalDeploy returns the median time from dep start to done of the
// finished releases in recent, and false when there are none.
func typicalDeploy(recent []Release) (time.Duration, bool) {
	var ds []time.Duration
	for _, r := range recent {
		if r.State == StateDone && !r.Started.IsZero() && r.Updated.After(r.Started) {
			ds = append(ds, r.Updated.Sub(r.Started))
		}
	}
	if len(ds) == 0 {
		return 0, false
	}
	slices.Sort(ds)
	return ds[len(ds)/2], true
}

// place is where a waiting release stands for one of its components.
type place struct {
	component string
	position  int      // 1: next; 2: one release ahead; …
	ahead     []string // the tickets ahead, the holder first
}

// handoff is what queue says of one waiting release: its places for the
// components it waits for, and when its turn should come.
type handoff struct {
	places    []place
	in        time.Duration // from now; valid when estimated
	estimated bool
}

// handoffs returns, for each open release that waits behind another one for
// a component (ID → handoff), its places and, given typical (the usual time
// from dep start to done; ok false when unknown), the estimated wait: for
// each component, the time left of the release that holds it (typical less
// how long it has run, at least zero) plus typical for each release ahead
// that will take it first; the longest of its components. A release that
// holds its locks, or waits for nobody, has no entry; a frozen component is
// left out (nobody knows when it is unfrozen).
func handoffs(open []Release, locks []Lock, closing map[uint64]Release, now time.Time, typical time.Duration, ok bool) map[uint64]handoff {
	holder := map[string]uint64{} // component → the release holding it
	frozen := map[string]bool{}
	for _, l := range locks {
		switch {
		case l.Frozen():
			frozen[l.Component] = true
		default:
			holder[l.Component] = l.Release
		}
	}
	byID := make(map[uint64]Release, len(open)+len(closing))
	for _, r := range closing {
		byID[r.ID] = r
	}
	for _, r := range open {
		byID[r.ID] = r
	}
	holds := func(r Release) bool {
		return slices.ContainsFunc(r.Locks, func(c string) bool { return holder[c] == r.ID })
	}
	left := func(id uint64) time.Duration {
		r, found := byID[id]
		if !found || r.Started.IsZero() {
			return typical
		}
		return max(0, typical-now.Sub(r.Started))
	}
	out := map[uint64]handoff{}
	for _, r := range open {
		if holds(r) || frozen[AllComponents] {
			continue
		}
		var h handoff
		for _, c := range r.Locks {
			if frozen[c] {
				continue
			}
			var ahead []string
			var wait time.Duration
			if id, held := holder[c]; held && id != r.ID {
				ahead = append(ahead, ticketOf(byID, id))
				wait += left(id)
			}
			for _, o := range open {
				if o.ID >= r.ID {
					break // open is in queue order: by ID
				}
				if slices.Contains(o.Locks, c) && holder[c] != o.ID && !holds(o) {
					ahead = append(ahead, o.Ticket)
					wait += typical
				}
			}
			if len(ahead) == 0 {
				continue
			}
			h.places = append(h.places, place{component: c, position: len(ahead) + 1, ahead: ahead})
			h.in = max(h.in, wait)
		}
		if len(h.places) > 0 {
			h.estimated = ok
			out[r.ID] = h
		}
	}
	return out
}

// ticketOf names release id, which holds a lock: an open release, or a
// cancelled one that keeps its locks until its cancel hook ends.
func ticketOf(byID map[uint64]Release, id uint64) string {
	if r, ok := byID[id]; ok {
		return r.Ticket
	}
	return "another release"
}

// text renders h for the queue: "#2 for backend (after PAY-1), its turn in
// about 24 min".
func (h handoff) text() Text {
	var t Text
	for i, p := range h.places {
		if i > 0 {
			t = t.plain(", ")
		}
		t = t.say("#%d for %v (after %s)", p.position, Component(p.component), joinTickets(p.ahead))
	}
	if h.estimated {
		if h.in < time.Minute {
			t = t.plain(", its turn any minute now")
		} else {
			t = t.say(", its turn in about %s", Ago(h.in))
		}
	}
	return t
}

func joinTickets(ts []string) string {
	switch len(ts) {
	case 0:
		return ""
	case 1:
		return ts[0]
	}
	s := ""
	for i, t := range ts {
		switch {
		case i == 0:
			s = t
		case i == len(ts)-1:
			s += " and " + t
		default:
			s += ", " + t
		}
	}
	return s
}
