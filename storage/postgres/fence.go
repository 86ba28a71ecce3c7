package postgres

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// The store fences its own writes by term (Options.Fence). What a leader
// sends elsewhere is fenced here, with the same question — does this
// process lead now? — asked of leading (a Leader's Leading method): a
// leader that froze and woke up after a standby took over must send
// nothing before it notices.

// ErrNotLeader refuses a Slack call from a process that does not lead.
var ErrNotLeader = errors.New("this dobrobot does not lead now: it calls no Slack API")

// FenceRequests returns a transport that sends each request through base
// while leading reports true, and refuses it with ErrNotLeader after.
func FenceRequests(base http.RoundTripper, leading func() bool) http.RoundTripper {
	return fencedRequests{base: base, leading: leading}
}

// fencedRequests is FenceRequests' transport.
type fencedRequests struct {
	base    http.RoundTripper
	leading func() bool
}

// RoundTrip sends r if this process leads.
func (t fencedRequests) RoundTrip(r *http.Request) (*http.Response, error) {
	if !t.leading() {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, ErrNotLeader
	}
	return t.base.RoundTrip(r)
}

// FenceConns returns a transport like http.DefaultTransport whose
// connections check, before each write, that this process still leads. A
// process frozen after FenceRequests' check and thawed after a standby took
// over would otherwise send the request it was writing; checked right
// before the bytes leave, that window shrinks to the write call itself.
func FenceConns(leading func() bool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return fencedConn{Conn: c, leading: leading}, nil
	}
	return t
}

// fencedConn is a connection that writes only while this process leads.
type fencedConn struct {
	net.Conn
	leading func() bool
}

// Write writes p if this process leads, and fails the connection if not.
func (c fencedConn) Write(p []byte) (int, error) {
	if !c.leading() {
		_ = c.Conn.Close()
		return 0, ErrNotLeader
	}
	return c.Conn.Write(p)
}

// FencedOutbox is a store as the Slack bot of one term sees it: while this
// process does not lead, its outbox is empty, so a deposed leader neither
// sends what the new leader now delivers nor waits for it at shutdown.
//
// It implements every method of commands.Store itself rather than embedding
// the interface, so that a method added to the port later is a compile error
// here until someone decides whether the fence applies to it.
type FencedOutbox struct {
	Store   commands.Store
	Leading func() bool
}

var _ commands.Store = FencedOutbox{}

// Pending returns the outbox while this process leads, and nothing after.
func (s FencedOutbox) Pending(ctx context.Context, max int) ([]commands.Effect, error) {
	if !s.Leading() {
		return nil, ctx.Err()
	}
	return s.Store.Pending(ctx, max)
}

// PendingAfter is Pending past an effect: nothing while this process does
// not lead.
func (s FencedOutbox) PendingAfter(ctx context.Context, after uint64, max int) ([]commands.Effect, error) {
	if !s.Leading() {
		return nil, ctx.Err()
	}
	return s.Store.PendingAfter(ctx, after, max)
}

// Update is the Store's: the Store's own fence refuses the writes of a
// process that does not lead.
func (s FencedOutbox) Update(ctx context.Context, fn func(commands.Tx) error) error {
	return s.Store.Update(ctx, fn)
}

// UpdateFirst is the Store's, fenced as Update is.
func (s FencedOutbox) UpdateFirst(ctx context.Context, fn func(commands.Tx) error) error {
	return s.Store.UpdateFirst(ctx, fn)
}

// View is the Store's: reading is harmless.
func (s FencedOutbox) View(ctx context.Context, fn func(commands.Tx) error) error {
	return s.Store.View(ctx, fn)
}

// Delivered is the Store's: it is an Update, fenced by the Store.
func (s FencedOutbox) Delivered(ctx context.Context, ids ...uint64) error {
	return s.Store.Delivered(ctx, ids...)
}

// Audit is the Store's: reading is harmless.
func (s FencedOutbox) Audit(ctx context.Context, f commands.AuditFilter, fn func(commands.AuditEntry) error) error {
	return s.Store.Audit(ctx, f, fn)
}

// Close closes the Store.
func (s FencedOutbox) Close() error { return s.Store.Close() }

// Leadership reports whether l leads, and which instance holds the leader
// lock of db's schema (none while a takeover is under way) in which term:
// what /healthz says of an instance that may stand by.
func (l *Leader) Leadership(ctx context.Context, db *DB) (leading bool, holder string, term int64, err error) {
	t, err := db.Term(ctx)
	if err != nil {
		return false, "", 0, err
	}
	if t.Held {
		holder = t.Holder
	}
	return l.Leading(), holder, t.Epoch, nil
}

// ErrStandby refuses a Slack call from a standby other than the two it
// needs to hold Socket Mode connections.
var ErrStandby = errors.New("this dobrobot stands by: it calls no Slack API but auth.test and apps.connections.open")

// StandbyRequests returns a transport for a standby's Slack client: it sends
// through base only auth.test (who the bot is, to read events) and
// apps.connections.open (a Socket Mode URL), and refuses every other call
// with ErrStandby. A standby acknowledges events and never posts: this makes
// it impossible rather than merely unintended.
func StandbyRequests(base http.RoundTripper) http.RoundTripper {
	return standbyRequests{base: base}
}

// standbyRequests is StandbyRequests' transport.
type standbyRequests struct{ base http.RoundTripper }

// RoundTrip sends r if it calls one of the two methods a standby needs.
func (t standbyRequests) RoundTrip(r *http.Request) (*http.Response, error) {
	switch path.Base(r.URL.Path) {
	case "auth.test", "apps.connections.open":
		return t.base.RoundTrip(r)
	}
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return nil, ErrStandby
}
