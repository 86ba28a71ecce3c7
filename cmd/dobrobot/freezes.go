package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/dobrobot/dobrobot/commands"
)

// FreezeConfig is one entry of the freezes section (docs/configuration.md):
// a recurring window (cron and duration) or a one-off one (from and until).
type FreezeConfig struct {
	Name string `yaml:"name"`
	// Cron is the start of each window: 5 fields (minute hour day-of-month
	// month day-of-week), in TZ.
	Cron     string   `yaml:"cron"`
	Duration Duration `yaml:"duration"`
	// From and Until bound a one-off window: 2026-12-24T00:00, in TZ.
	From  string `yaml:"from"`
	Until string `yaml:"until"`
	// TZ is the zone of Cron or of From and Until; default the top-level
	// timezone, else UTC.
	TZ           string   `yaml:"tz"`
	Environments []string `yaml:"environments"` // default: every one
	Components   []string `yaml:"components"`   // default: all
	Reason       string   `yaml:"reason"`
	Announce     Duration `yaml:"announce"` // tell the channel this long before a start
}

// cronParser reads the standard 5 fields (and a CRON_TZ= prefix), nothing
// else: no seconds, no descriptors that hide what they mean.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// oneOffLayouts are the forms of a one-off window's from and until.
var oneOffLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"}

// location returns the configured timezone; validate has checked it.
func (c *Config) location() *time.Location {
	loc, err := time.LoadLocation(c.zoneName())
	if err != nil {
		return time.UTC
	}
	return loc
}

func (c *Config) zoneName() string {
	if c.Timezone == "" {
		return "UTC"
	}
	return c.Timezone
}

// timeProblems checks timezone and freezes, one phrase each.
func (c *Config) timeProblems() []string {
	var out []string
	if _, err := time.LoadLocation(c.zoneName()); err != nil {
		out = append(out, fmt.Sprintf("timezone: %q is not a time zone (an IANA name such as Europe/Berlin, or UTC)", c.Timezone))
	}
	envs := []string{commands.DefaultEnv}
	if len(c.Environments) > 0 {
		envs = envs[:0]
		for _, e := range c.Environments {
			envs = append(envs, e.Name)
		}
	}
	seen := map[string]bool{}
	for i, f := range c.Freezes {
		key := fmt.Sprintf("freezes[%d]", i)
		if f.Name != "" {
			key = fmt.Sprintf("freezes.%s", f.Name)
		}
		if seen[strings.ToLower(f.Name)] {
			out = append(out, fmt.Sprintf("%s: the name is used twice: give each window its own", key))
		}
		seen[strings.ToLower(f.Name)] = true
		for _, e := range f.Environments {
			if !slices.Contains(envs, e) {
				out = append(out, fmt.Sprintf("%s.environments: %q is not an environment (%s)", key, e, strings.Join(envs, ", ")))
			}
		}
		for _, comp := range f.Components {
			if !commands.ValidComponent(comp) {
				out = append(out, fmt.Sprintf("%s.components: %q is not a component name (letters, digits, . _ -; or all)", key, comp))
			}
		}
		if _, err := f.window(c.Timezone); err != nil {
			out = append(out, key+": "+err.Error())
		}
	}
	return out
}

// window returns f as the core takes it; tz is the top-level timezone, the
// default of f's own.
func (f FreezeConfig) window(tz string) (commands.FreezeWindow, error) {
	w := commands.FreezeWindow{Name: f.Name, Envs: f.Environments, Components: f.Components, Reason: f.Reason, Announce: time.Duration(f.Announce)}
	if !commands.ValidComponent(strings.ToLower(f.Name)) {
		return w, fmt.Errorf("name %q: give each window a name of letters, digits, . _ -", f.Name)
	}
	w.Name = strings.ToLower(f.Name)
	zone := f.TZ
	if zone == "" {
		zone = tz
	}
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return w, fmt.Errorf("tz %q is not a time zone (an IANA name such as Europe/Berlin)", zone)
	}
	switch {
	case f.Cron != "" && (f.From != "" || f.Until != ""):
		return w, fmt.Errorf("give cron and duration (a recurring window) or from and until (a one-off one), not both")
	case f.Cron != "":
		spec := f.Cron
		if !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") {
			spec = "CRON_TZ=" + loc.String() + " " + spec
		}
		if w.Cron, err = cronParser.Parse(spec); err != nil {
			return w, fmt.Errorf("cron %q: %w (5 fields: minute hour day-of-month month day-of-week, e.g. \"0 18 * * FRI\")", f.Cron, err)
		}
		if f.Duration < Duration(time.Second) {
			return w, fmt.Errorf("a recurring window needs a duration of at least 1s (e.g. duration: 63h)")
		}
		w.Duration = time.Duration(f.Duration)
	case f.From != "" && f.Until != "":
		if f.Duration != 0 {
			return w, fmt.Errorf("a one-off window has from and until, not duration")
		}
		if w.From, err = parseOneOff(f.From, loc); err != nil {
			return w, fmt.Errorf("from: %w", err)
		}
		if w.Until, err = parseOneOff(f.Until, loc); err != nil {
			return w, fmt.Errorf("until: %w", err)
		}
		if !w.Until.After(w.From) {
			return w, fmt.Errorf("until (%s) must come after from (%s)", f.Until, f.From)
		}
	default:
		return w, fmt.Errorf("give cron and duration (a recurring window) or from and until (a one-off one)")
	}
	return w, nil
}

func parseOneOff(s string, loc *time.Location) (time.Time, error) {
	for _, layout := range oneOffLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: write 2026-12-24T00:00 (in tz) or RFC 3339", s)
}

// freezes returns the freezes section as the core takes it; validate has
// checked every window.
func (c *Config) freezes() []commands.FreezeWindow {
	var out []commands.FreezeWindow
	for _, f := range c.Freezes {
		if w, err := f.window(c.Timezone); err == nil {
			out = append(out, w)
		}
	}
	return out
}
