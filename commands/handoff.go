package commands

import (
	"slices"
	"sync"
	"time"
)

// The queue is a hand-off: a release that waits for a component another one
// holds, or that an earlier release will take first, is told its place for
// that component and, once the bot has seen deploys finish, about when its
// turn comes (SPEC: "Locks and queue", the pipeline's hand-off queue).

// recentForEstimate is how many of the most recent releases queue reads to
// learn how long a deploy takes: the finished ones among them count.
const recentForEstimate = 30

// estimateFor is how long the usual deploy's length is kept before queue
// reads the recent releases again, so that a queue does not decode 30
// releases every time (figure 3 measured 0.48 ms p50 reading them at every
// queue, 0.45–0.46 ms keeping them: within the noise); a finish in this
// Service forgets it at once, and one handed in by another instance shows
// within this long.
const estimateFor = time.Minute

// deployEstimate caches typicalDeploy's answer.
type deployEstimate struct {
	mu      sync.Mutex
	at      time.Time // when it was read; zero: never, or forgotten
	typical time.Duration
	known   bool
}

// typicalDeploy returns the usual deploy's length (typicalDeploy of the
// recent releases), read through tx at most every estimateFor.
func (s *Service) typicalDeploy(tx Tx, now time.Time) (time.Duration, bool, error) {
	e := &s.deploys
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.at.IsZero() && now.Sub(e.at) >= 0 && now.Sub(e.at) < estimateFor {
		return e.typical, e.known, nil
	}
	recent, err := tx.Recent(recentForEstimate)
	if err != nil {
		return 0, false, err
	}
	e.typical, e.known = typicalDeploy(recent)
	e.at = now
	return e.typical, e.known, nil
}

// forgetDeploys makes the next queue read the recent releases again: a
// release was just done.
func (s *Service) forgetDeploys() {
	s.deploys.mu.Lock()
	s.deploys.at = time.Time{}
	s.deploys.mu.Unlock()
}

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
	ahead     []string // the first tickets ahead, the holder first
	more      int      // how many more are ahead than ahead names
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
// left out (nobody knows when it is unfrozen). It takes O(releases ×
// components): each component's line is built once.
func handoffs(open []Release, locks []Lock, closing map[uint64]Release, now time.Time, typical time.Duration, ok bool) map[uint64]handoff {
	holder := map[string]uint64{} // component → the release holding it
	frozen := map[string]bool{}
	for _, l := range locks {
		if l.Frozen() {
			frozen[l.Component] = true
		} else {
			holder[l.Component] = l.Release
		}
	}
	if frozen[AllComponents] {
		return nil
	}
	// Releases by ID, as pointers: a Release is a few hundred bytes, and a
	// copy of each in a map was most of this function's time in a burst.
	byID := make(map[uint64]*Release, len(open)+len(closing))
	for id := range closing {
		r := closing[id]
		byID[r.ID] = &r
	}
	holding := make([]bool, len(open))
	for i := range open {
		r := &open[i]
		byID[r.ID] = r
		holding[i] = slices.ContainsFunc(r.Locks, func(c string) bool { return holder[c] == r.ID })
	}
	// Each component's line: its holder, then the releases that will take
	// it, in queue order (queueOrder, as the queue passes open).
	type inLine struct {
		component string
		release   uint64
	}
	line := map[string][]uint64{}
	at := map[inLine]int{} // place in the component's line, from 0
	for c, id := range holder {
		line[c] = []uint64{id}
	}
	for i, r := range open {
		if holding[i] {
			continue
		}
		for _, c := range r.Locks {
			at[inLine{c, r.ID}] = len(line[c])
			line[c] = append(line[c], r.ID)
		}
	}
	left := func(id uint64) time.Duration {
		r, found := byID[id]
		if !found || r.Started.IsZero() {
			return typical
		}
		return max(0, typical-now.Sub(r.Started))
	}
	out := map[uint64]handoff{}
	for i, r := range open {
		if holding[i] {
			continue
		}
		var h handoff
		for _, c := range r.Locks {
			ids := line[c]
			n := at[inLine{c, r.ID}] // releases ahead
			if frozen[c] || n == 0 {
				continue
			}
			wait := typical * time.Duration(n)
			if id, held := holder[c]; held {
				wait += left(id) - typical
			}
			ahead := make([]string, 0, min(n, shownAhead)+1)
			for _, id := range ids[:min(n, shownAhead)] {
				ahead = append(ahead, ticketOf(byID, id))
			}
			h.places = append(h.places, place{component: c, position: n + 1, ahead: ahead, more: n - len(ahead)})
			h.in = max(h.in, wait)
		}
		if len(h.places) > 0 {
			h.estimated = ok
			out[r.ID] = h
		}
	}
	return out
}

// shownAhead is how many of the releases ahead queue names; the others are
// counted ("after PAY-1, PAY-2 and 5 more").
const shownAhead = 2

// ticketOf names release id, which holds a lock: an open release, or a
// cancelled one that keeps its locks until its cancel hook ends.
func ticketOf(byID map[uint64]*Release, id uint64) string {
	if r, ok := byID[id]; ok {
		return r.Ticket
	}
	return "another release"
}

// text renders h for the queue: "#2 for backend (after PAY-1), its turn in
// about 24 min".
func (h handoff) text() Text {
	var w textWriter
	h.writeTo(&w)
	return w.text()
}

// writeTo writes h.text() to w.
func (h handoff) writeTo(w *textWriter) {
	for i, p := range h.places {
		if i > 0 {
			w.words(", ")
		}
		w.words("#")
		w.int(p.position)
		w.words(" for ")
		w.add(Component(p.component))
		w.words(" (after ")
		for k, t := range p.ahead {
			switch {
			case k == 0:
			case k == len(p.ahead)-1 && p.more == 0:
				w.words(" and ")
			default:
				w.words(", ")
			}
			w.plain(t)
		}
		if p.more > 0 {
			if len(p.ahead) > 0 {
				w.words(" and ")
			}
			w.int(p.more)
			w.words(" more")
		}
		w.words(")")
	}
	if h.estimated {
		if h.in < time.Minute {
			w.words(", its turn any minute now")
		} else {
			w.words(", its turn in about ")
			w.words(Ago(h.in))
		}
	}
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
