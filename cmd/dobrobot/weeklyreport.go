package main

import (
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
)

// ReportsConfig is the reports section (docs/configuration.md).
type ReportsConfig struct {
	// Weekly is a cron (5 fields, in the configured timezone) at which
	// last week's report is posted in the release channel; empty: never.
	Weekly string `yaml:"weekly"`
}

// weeklySchedule returns reports.weekly as the core takes it, in zone tz
// (the configured timezone, else UTC); nil when it is not set.
func (r ReportsConfig) weeklySchedule(tz string) (cron.Schedule, error) {
	if strings.TrimSpace(r.Weekly) == "" {
		return nil, nil
	}
	if tz == "" {
		tz = "UTC"
	}
	spec := r.Weekly
	if !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") {
		spec = "CRON_TZ=" + tz + " " + spec
	}
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("reports.weekly: cron %q: %w (5 fields: minute hour day-of-month month day-of-week, e.g. \"0 10 * * MON\")", r.Weekly, err)
	}
	return s, nil
}
