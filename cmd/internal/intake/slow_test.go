package intake

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSlowClient: a client that sends its headers or its body too slowly
// is cut off by the server's timeouts, and nothing of it reaches the core.
// The test waits for the server to act (close or answer), bounded by a
// deadline of its own far above the timeouts.
func TestSlowClient(t *testing.T) {
	body := goodBody
	ts, sig := Sign(testSecret, now, []byte(body))
	tests := []struct {
		name string
		sent string // what the client sends before it stalls
	}{
		{"stalls in the headers", "POST /builds HTTP/1.1\r\nHost: intake\r\n" + TimestampHeader + ": " + ts + "\r\n"},
		{"stalls in the body", "POST /builds HTTP/1.1\r\nHost: intake\r\nContent-Type: application/json\r\n" +
			TimestampHeader + ": " + ts + "\r\n" + SignatureHeader + ": " + sig + "\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body[:len(body)/2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := &fakeCore{}
			base := start(t, core, func(o *Options) {
				o.ReadHeaderTimeout, o.ReadTimeout = 100*time.Millisecond, 300*time.Millisecond
			})
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write([]byte(tt.sent)); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				t.Fatal("the server kept a stalled client for 10 s: its read timeouts are not set")
			case err == nil:
				resp.Body.Close()
				if resp.StatusCode < 400 {
					t.Errorf("a stalled client was answered %d", resp.StatusCode)
				}
			}
			// Otherwise the server closed the connection: what it should do.
			if n := len(core.got()); n != 0 {
				t.Errorf("the core was given %d builds, want none", n)
			}
		})
	}
}
