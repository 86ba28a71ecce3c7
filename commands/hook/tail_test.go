package hook

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"nothing", 8, nil, ""},
		{"fits", 8, []string{"ab", "cd"}, "abcd"},
		{"exactly full", 4, []string{"ab", "cd"}, "abcd"},
		{"wraps", 4, []string{"ab", "cd", "ef"}, "…[truncated 2 bytes]\ncdef"},
		{"wraps many times", 3, []string{"a", "b", "c", "d", "e", "f", "g"}, "…[truncated 4 bytes]\nefg"},
		{"one big write", 4, []string{"0123456789"}, "…[truncated 6 bytes]\n6789"},
		{"big write after small", 4, []string{"ab", "0123456789", "X"}, "…[truncated 9 bytes]\n789X"},
		{"cut inside a character", 4, []string{"aé€"}, "…[truncated 3 bytes]\n€"}, // "a", "é" (2 bytes) dropped
		{"invalid bytes replaced", 16, []string{"ok\xff\xfeok"}, "ok\uFFFDok"},
		{"replacement stays within max", 4, []string{"\xff\xff\xffa\xffb"}, "…[truncated 2 bytes]\n\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTail(tt.max)
			for _, w := range tt.writes {
				n, err := tl.Write([]byte(w))
				if n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			got := tl.String()
			if got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			body := got
			if i := strings.IndexByte(got, '\n'); strings.HasPrefix(got, "…[truncated") && i >= 0 {
				body = got[i+1:]
			}
			if len(body) > tt.max || !utf8.ValidString(got) {
				t.Errorf("String() = %q: %d bytes after the marker (max %d), valid UTF-8 %v", got, len(body), tt.max, utf8.ValidString(got))
			}
		})
	}
}
