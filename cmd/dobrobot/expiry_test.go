package main

import (
	"strings"
	"testing"
	"time"
)

// TestExpiryConfig: approval_ttl and tracker.recheck_on_start reach the
// core; absent means off, and a TTL under 1s is refused with its key.
func TestExpiryConfig(t *testing.T) {
	tests := []struct {
		yaml      string
		wantErr   string
		wantTTL   time.Duration
		wantCheck bool
	}{
		{"", "", 0, false},
		{"approval_ttl: 24h\n", "", 24 * time.Hour, false},
		{"approval_ttl: 1s\ntracker: {kind: file, recheck_on_start: true}\n", "", time.Second, true},
		{"approval_ttl: 10ms\n", "approval_ttl is 10ms: use at least 1s", 0, false},
		{"approval_ttl: later\n", `"later" is not a duration`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			c, err := parseConfig([]byte("components: [backend]\n"+tt.yaml), lookupIn(nil))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := time.Duration(c.ApprovalTTL); got != tt.wantTTL {
				t.Errorf("approval_ttl %s, want %s", got, tt.wantTTL)
			}
			if c.Tracker.RecheckOnStart != tt.wantCheck {
				t.Errorf("recheck_on_start %v, want %v", c.Tracker.RecheckOnStart, tt.wantCheck)
			}
		})
	}
}
