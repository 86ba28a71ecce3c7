package commands

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// ReportText renders a report as a short heading and, per environment, a
// small table in an output block: monospace in Slack and in a terminal
// alike, so that its columns line up in both. env is the environment asked
// for, "" for all.
func ReportText(rep Report, env string) Text {
	p := rep.Period
	n := p.Until.Sub(p.Since)
	t := say("DORA report, %s to %s (%s), each figure with the number of releases it rests on, next to the %s before.",
		p.Since.Format("2006-01-02 15:04"), p.Until.Format("2006-01-02 15:04 MST"), spanWords(n), spanWords(n))
	if len(rep.Envs) == 0 {
		if env != "" {
			return t.say("\nNothing was released in %s in that period or the one before it.", env)
		}
		return t.say("\nNothing was released in that period or the one before it.")
	}
	for _, er := range rep.Envs {
		t = t.add(Output(ReportTable(er)))
	}
	return t
}

// spanWords says how long a period is: "30 days", or hours when it is not
// a number of days.
func spanWords(d time.Duration) string {
	if d%reportDay == 0 {
		if d == reportDay {
			return "1 day"
		}
		return fmt.Sprintf("%d days", d/reportDay)
	}
	return fmt.Sprintf("%.1f hours", d.Hours())
}

// ReportTable is one environment's figures as lines of aligned columns:
// the key, this period, the period before.
func ReportTable(er EnvReport) string {
	cur, prev := er.Current, er.Previous
	rows := [][3]string{
		{er.Env, "this period", "the one before"},
		{"deploys", deploysCell(cur), deploysCell(prev)},
		{"lead time p50/p90", durCell(cur.Lead, cur.LeadUnknown, "unknown"), durCell(prev.Lead, prev.LeadUnknown, "unknown")},
		{"change failure rate", rateCell(cur), rateCell(prev)},
		{"time to restore p50/p90", durCell(cur.Restore, cur.Unrestored, "open"), durCell(prev.Restore, prev.Unrestored, "open")},
	}
	var w [2]int
	for _, r := range rows {
		for i := range w {
			w[i] = max(w[i], utf8.RuneCountInString(r[i]))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(pad(r[0], w[0]+2) + pad(r[1], w[1]+2) + r[2])
		b.WriteString("\n")
	}
	if cur.Failed > 0 {
		fmt.Fprintf(&b, "%s%d start hook, %d finish hook, %d cancelled (%d rolled back)",
			pad("failures", w[0]+2), cur.StartFailed, cur.HookFailed, cur.Cancelled, cur.RolledBack)
		if cur.Incidents > 0 { // said only when there are some: older reports read as before
			fmt.Fprintf(&b, ", %d incident(s)", cur.Incidents)
		}
		b.WriteString("\n")
	}
	unit := "day"
	if cur.Bucket == 7*reportDay {
		unit = "week"
	}
	fmt.Fprintf(&b, "%s%s (max %d a %s)", pad("deploys per "+unit, w[0]+2), Sparkline(cur.PerBucket), maxOf(cur.PerBucket), unit)
	return b.String()
}

func pad(s string, w int) string {
	return s + strings.Repeat(" ", max(w-utf8.RuneCountInString(s), 0))
}

func deploysCell(f Figures) string {
	return fmt.Sprintf("%d (%.1f/day, %.1f/week)", f.Deploys, f.PerWeek()/7, f.PerWeek())
}

// durCell shows p50/p90 and how many durations they rest on, and how many
// releases are left out and why.
func durCell(d Durations, left int, why string) string {
	s := "–"
	if d.N > 0 {
		s = ShortDuration(d.P50) + " / " + ShortDuration(d.P90)
	}
	if left > 0 {
		return fmt.Sprintf("%s (%d; %d %s)", s, d.N, left, why)
	}
	return fmt.Sprintf("%s (%d)", s, d.N)
}

func rateCell(f Figures) string {
	r, ok := f.FailureRate()
	if !ok {
		return "– (0)"
	}
	return fmt.Sprintf("%.0f%% (%d of %d)", math.Round(r*100), f.Failed, f.Ended)
}

// ShortDuration writes d compactly: 45s, 12m, 3h, 3h 20m, 10d 3h.
func ShortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	}
	days, h := int(d/reportDay), int(d%reportDay/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd %dh", days, h)
}

// sparks are the eight heights of a sparkline's bar, lowest first.
var sparks = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws counts as one bar each, scaled to the largest: 0 is the
// lowest bar, any other count at least the second.
func Sparkline(counts []int) string {
	top := maxOf(counts)
	var b strings.Builder
	for _, c := range counts {
		i := 0
		if top > 0 && c > 0 {
			i = max(1, int(math.Round(float64(c)*7/float64(top))))
		}
		b.WriteRune(sparks[i])
	}
	return b.String()
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
