package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestConfigWeeklyReport: reports.weekly is a 5-field cron checked at load
// and read in the configured timezone (else UTC); unset, there is none.
func TestConfigWeeklyReport(t *testing.T) {
	mon := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC) // a Tuesday
	tests := []struct {
		name, extra string
		wantErr     string    // a problem the load reports; "" for none
		wantNext    time.Time // the first time after mon; zero: no schedule
	}{
		{"unset", "", "", time.Time{}},
		{"Berlin", "timezone: Europe/Berlin\nreports: {weekly: \"0 10 * * MON\"}\n", "", time.Date(2026, 11, 9, 9, 0, 0, 0, time.UTC)},
		{"UTC by default", "reports: {weekly: \"0 10 * * MON\"}\n", "", time.Date(2026, 11, 9, 10, 0, 0, 0, time.UTC)},
		{"four fields", "reports: {weekly: \"0 10 * MON\"}\n", `reports.weekly: cron "0 10 * MON"`, time.Time{}},
		{"six fields", "reports: {weekly: \"0 0 10 * * MON\"}\n", `reports.weekly: cron "0 0 10 * * MON"`, time.Time{}},
		{"bad day", "reports: {weekly: \"0 10 * * MONDAY\"}\n", `reports.weekly: cron "0 10 * * MONDAY"`, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "c.yaml")
			body := "storage: {path: " + filepath.Join(dir, "c.db") + "}\ntracker: {kind: file, tickets: [{key: PAY-1, summary: x, status: Ready}]}\nroles: {approvers: [U01], admins: [U02]}\n" + tc.extra
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(path, lookupIn(nil))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("load: %v; want a problem saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s, err := c.Reports.weeklySchedule(c.zoneName())
			if err != nil {
				t.Fatal(err)
			}
			var got time.Time
			if s != nil {
				got = s.Next(mon).UTC()
			}
			if diff := cmp.Diff(tc.wantNext, got); diff != "" {
				t.Errorf("next (-want +got):\n%s", diff)
			}
		})
	}
}
