package tracker

import (
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"1", time.Second, true},
		{" 10 ", 10 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
		{"99999999999", 24 * time.Hour, true},
		{"Mon, 02 Jun 2025 10:00:30 GMT", 30 * time.Second, true},
		{"Monday, 02-Jun-25 10:01:00 GMT", time.Minute, true},
		{"Mon, 02 Jun 2025 09:59:00 GMT", 0, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.header, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRetryPolicy(t *testing.T) {
	for range 50 {
		p := retryPolicy()
		for i, want := range []struct{ min, max time.Duration }{
			{100 * time.Millisecond, 150 * time.Millisecond},
			{200 * time.Millisecond, 300 * time.Millisecond},
			{400 * time.Millisecond, 600 * time.Millisecond},
			{800 * time.Millisecond, 1200 * time.Millisecond},
			{time.Second, 1500 * time.Millisecond},
			{time.Second, 1500 * time.Millisecond},
		} {
			if got := p.NextBackOff(); got < want.min || got > want.max {
				t.Fatalf("wait %d = %s, want between %s and %s", i+1, got, want.min, want.max)
			}
		}
	}
}
