package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestQueueConfig: queue.claim_window defaults to 15m, takes durations of
// at least 1s, and refuses 0 (which would pass every turn at once) and
// shorter ones with the key named.
func TestQueueConfig(t *testing.T) {
	tests := []struct {
		yaml    string
		wantErr string
		want    time.Duration
	}{
		{"", "", 15 * time.Minute},
		{"queue: {claim_window: 30m}\n", "", 30 * time.Minute},
		{"queue: {claim_window: 1s}\n", "", time.Second},
		{"queue: {claim_window: 0s}\n", "queue.claim_window is 0s: use at least 1s, or leave it out for 15m0s", 0},
		{"queue: {claim_window: 10ms}\n", "queue.claim_window is 10ms", 0},
		{"queue: {claim_window: -5m}\n", `"-5m" is not a duration`, 0},
		{"queue: {claim: 5m}\n", "field claim not found", 0},
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
			if diff := cmp.Diff(tt.want, c.Queue.claimWindow()); diff != "" {
				t.Errorf("claim window (-want +got):\n%s", diff)
			}
		})
	}
}
