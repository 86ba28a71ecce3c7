package hook

import (
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// tail is an io.Writer that keeps only the last max bytes written to it, so a
// hook that writes without end costs at most max bytes of memory.
type tail struct {
	mu    sync.Mutex
	max   int
	buf   []byte // len(buf) < max until the buffer first fills up
	next  int    // once full, where the next byte goes: buf[next:] is the oldest
	total int64  // bytes written in all
}

func newTail(max int) *tail {
	return &tail{max: max, buf: make([]byte, 0, max)}
}

// Write keeps the end of p. It never fails.
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	t.total += int64(n)
	if t.max <= 0 {
		return n, nil
	}
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		t.next = 0
		return n, nil
	}
	if room := t.max - len(t.buf); room > 0 {
		k := min(room, len(p))
		t.buf = append(t.buf, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 {
		k := copy(t.buf[t.next:], p)
		t.next = (t.next + k) % t.max
		p = p[k:]
	}
	return n, nil
}

// String returns the kept bytes as valid UTF-8, at most max bytes, preceded by
// a line "…[truncated N bytes]" when earlier output was dropped.
func (t *tail) String() string {
	t.mu.Lock()
	b := make([]byte, 0, len(t.buf))
	b = append(b, t.buf[t.next:]...)
	b = append(b, t.buf[:t.next]...)
	dropped := t.total - int64(len(b))
	t.mu.Unlock()

	if dropped > 0 {
		// The cut may have split a character: start at the next one.
		for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
			b = b[1:]
			dropped++
		}
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	// Replacement characters are longer than the bytes they replace.
	if len(s) > t.max {
		cut := len(s) - t.max
		for cut < len(s) && !utf8.RuneStart(s[cut]) {
			cut++
		}
		s = s[cut:]
	}
	if dropped > 0 {
		s = "…[truncated " + strconv.FormatInt(dropped, 10) + " bytes]\n" + s
	}
	return s
}
