package adminsock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// Client talks to a running bot over its admin socket.
type Client struct {
	socket string
	hc     *http.Client
}

// Dial connects to the admin socket of the database at dbPath. It
// returns nil when no bot answers there (no socket, or one a killed bot
// left behind).
func Dial(dbPath string) *Client {
	path := SocketPath(dbPath)
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil
	}
	c.Close()
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
	return &Client{socket: path, hc: &http.Client{Transport: &http.Transport{DialContext: dial, DisableCompression: true}}}
}

// get runs a GET of path and returns the answer, which must be 200.
func (c *Client) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := "http://dobrobot" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the running dobrobot's admin socket %s: %w", c.socket, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusConflict {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("the running dobrobot's admin socket %s answered %s: %s", c.socket, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp, nil
}

// stream copies a streamed answer of path to w and reports the error the
// server put in its trailer, if any.
func (c *Client) stream(ctx context.Context, path string, q url.Values, w io.Writer) (int64, error) {
	resp, err := c.get(ctx, path, q)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("reading from the running dobrobot: %w", err)
	}
	if msg := resp.Trailer.Get(trailerError); msg != "" {
		return n, fmt.Errorf("the running dobrobot: %s", msg)
	}
	return n, nil
}

// Export streams the running bot's audit export to w.
func (c *Client) Export(ctx context.Context, f commands.AuditFilter, format string, w io.Writer) error {
	_, err := c.stream(ctx, "/v1/audit/export", exportQueryOf(f, format), w)
	return err
}

// Verify asks the running bot to verify the whole chain and the state,
// and to look for the checkpoint against if set.
func (c *Client) Verify(ctx context.Context, against *commands.Checkpoint) (commands.Checkpoint, error) {
	var q url.Values
	if against != nil {
		q = url.Values{"checkpoint": {against.String()}}
	}
	resp, err := c.get(ctx, "/v1/audit/verify", q)
	if err != nil {
		return commands.Checkpoint{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict {
		var e struct {
			Error string `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			return commands.Checkpoint{}, fmt.Errorf("the running dobrobot's answer: %w", err)
		}
		return commands.Checkpoint{}, errors.New(e.Error)
	}
	var v verifyResult
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return commands.Checkpoint{}, fmt.Errorf("the running dobrobot's answer: %w", err)
	}
	return commands.Checkpoint{Seq: v.Entries, Hash: v.Head}, nil
}

// Backup streams a copy of the running bot's database to w.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return c.stream(ctx, "/v1/backup", nil, w)
}

// Socket returns the path of the socket c talks to.
func (c *Client) Socket() string { return c.socket }
