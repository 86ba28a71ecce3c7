package fakeslack

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// ErrNoConnection is returned by Send when no socket is open.
var ErrNoConnection = errors.New("fakeslack: no open Socket Mode connection")

// Envelope is one Socket Mode message from Slack to the app.
type Envelope struct {
	Type                   string          `json:"type"` // events_api, interactive, slash_commands
	EnvelopeID             string          `json:"envelope_id"`
	Payload                json.RawMessage `json:"payload"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	RetryAttempt           int             `json:"retry_attempt"`
	RetryReason            string          `json:"retry_reason"`
}

// EventID returns the event_id of an events_api envelope's payload ("" for others).
func (e Envelope) EventID() string {
	var p struct {
		EventID string `json:"event_id"`
	}
	_ = json.Unmarshal(e.Payload, &p)
	return p.EventID
}

// Sent records an envelope the server sent.
type Sent struct {
	EnvelopeID   string
	Type         string
	EventID      string
	RetryAttempt int
	Time         time.Time
	Conn         int // which socket, numbered from 1 in the order they opened
}

// Ack records an acknowledgement the app sent back.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage
	Time       time.Time
	Conn       int
	// Late is set on the ack of a slash command or an interaction that
	// came more than 3 s after its envelope was sent, by the fake's clock
	// (SetClock, Advance): Slack has then told the user that the app did
	// not respond, and ignores the ack's payload.
	Late bool
}

type conn struct {
	id       int
	ws       *websocket.Conn
	helloed  bool // guarded by Server.mu
	draining bool // sent a disconnect message; guarded by Server.mu
	wmu      sync.Mutex
	done     chan struct{}
	once     sync.Once
}

func (c *conn) write(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
		_ = c.ws.Close()
	})
}

type retryPolicy struct {
	ackTimeout time.Duration
	schedule   []time.Duration
}

// connectionsOpenLocked answers apps.connections.open with a new single-use URL.
func (s *Server) connectionsOpenLocked() apiResult {
	s.opens++
	ticket := fmt.Sprintf("ticket-%d-%x", s.opens, rand.Uint64())
	s.tickets[ticket] = true
	u := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link/?ticket=" + ticket + "&app_id=" + AppID
	return ok(map[string]any{"url": u})
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket]
	delete(s.tickets, ticket)
	closed := s.closed
	s.mu.Unlock()
	if !valid || closed {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.nextConn++
	c := &conn{id: s.nextConn, ws: ws, done: make(chan struct{})}
	s.conns[c.id] = c
	s.bg.Add(2)
	s.mu.Unlock()

	go s.readLoop(c)
	go s.pingLoop(c)

	// The socket counts as connected from the moment hello is on its way:
	// holding the write lock meanwhile keeps any envelope behind the hello.
	c.wmu.Lock()
	s.mu.Lock()
	hello := map[string]any{"type": "hello", "num_connections": len(s.conns),
		"connection_info": map[string]any{"app_id": AppID},
		"debug_info":      map[string]any{"host": "fake-applink", "approximate_connection_time": 18060}}
	c.helloed = true
	s.hellos++
	s.changedLocked()
	s.mu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err = c.ws.WriteJSON(hello)
	c.wmu.Unlock()
	if err != nil {
		c.close()
	}
}

func (s *Server) readLoop(c *conn) {
	defer s.bg.Done()
	defer func() {
		c.close()
		s.mu.Lock()
		delete(s.conns, c.id)
		s.changedLocked()
		s.mu.Unlock()
	}()
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		var a struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(data, &a); err != nil || a.EnvelopeID == "" {
			s.errorf("the app sent a message that is not an ack: %q", data)
			continue
		}
		s.mu.Lock()
		if s.dropAcks > 0 {
			s.dropAcks--
			s.mu.Unlock()
			return // the deferred close drops the socket
		}
		late := s.checkAckLocked(a.EnvelopeID, a.Payload)
		s.acks = append(s.acks, Ack{EnvelopeID: a.EnvelopeID, Payload: a.Payload, Time: now, Conn: c.id, Late: late})
		s.changedLocked()
		s.mu.Unlock()
	}
}

// DropNextAcks makes the next n acks the server reads get lost with their
// socket, which it closes at once without a disconnect message: as when a
// connection drops while an ack is on the wire. Slack does not send a
// click again, so only the app can make up for it.
func (s *Server) DropNextAcks(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAcks = n
}

func (s *Server) pingLoop(c *conn) {
	defer s.bg.Done()
	for {
		s.mu.Lock()
		every, withhold := s.pingEvery, s.noPing
		s.mu.Unlock()
		select {
		case <-c.done:
			return
		case <-time.After(every):
		}
		if withhold {
			continue
		}
		if err := c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)); err != nil {
			return
		}
	}
}

// WithholdPings stops (true) or resumes (false) the websocket pings, as a
// half-open connection would.
func (s *Server) WithholdPings(withhold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noPing = withhold
}

// SetPingInterval sets how often the server pings each socket (2 s unless set).
func (s *Server) SetPingInterval(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pingEvery = d
}

// Connections returns how many sockets are open and were sent hello.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stateLocked().Connections
}

// Opens returns how many apps.connections.open calls succeeded.
func (s *Server) Opens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// Hellos returns how many hello messages the server sent.
func (s *Server) Hellos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hellos
}

// WaitConnections waits up to timeout for at least n open sockets that were
// sent hello, and for at least hellos hellos in all.
func (s *Server) WaitConnections(n, hellos int, timeout time.Duration) error {
	if !s.WaitFor(timeout, func(st State) bool { return st.Connections >= n && st.Hellos >= hellos }) {
		return fmt.Errorf("fakeslack: waited %v for %d connections and %d hellos, have %d and %d",
			timeout, n, hellos, s.Connections(), s.Hellos())
	}
	return nil
}

// newEnvelopeIDLocked returns a fresh envelope ID shaped like Slack's UUIDs.
func (s *Server) newEnvelopeIDLocked() string {
	s.nextEnv++
	return fmt.Sprintf("%08x-%04x-4%03x-8000-%012x", rand.Uint32(), rand.Uint32()&0xffff, s.nextEnv&0xfff, s.nextEnv)
}

// Send pushes env to one open socket chosen at random, giving it a fresh
// envelope ID if it has none, and returns the envelope as sent. With
// SetRetries on, an Events API envelope that is not acked is redelivered,
// and one whose socket was closing is not an error: it comes again, as from
// Slack. Without retries, a failed write is returned.
func (s *Server) Send(env Envelope) (Envelope, error) { return s.send(env, true) }

// Redeliver sends a copy of env as Slack retries an event: a new envelope
// ID, the next retry_attempt and the given retry_reason ("timeout" if "").
func (s *Server) Redeliver(env Envelope, reason string) (Envelope, error) {
	if reason == "" {
		reason = "timeout"
	}
	env.EnvelopeID = ""
	env.RetryAttempt++
	env.RetryReason = reason
	return s.send(env, false)
}

func (s *Server) send(env Envelope, retry bool) (Envelope, error) {
	s.mu.Lock()
	if env.EnvelopeID == "" {
		env.EnvelopeID = s.newEnvelopeIDLocked()
	}
	// Noted before it is written: the app may ack before the write returns.
	s.sentAt[env.EnvelopeID] = sentEnv{typ: env.Type, kind: interactionType(env), at: s.nowLocked()}
	var live []*conn
	for _, c := range s.conns {
		if c.helloed && (!c.draining || s.toDraining) {
			live = append(live, c)
		}
	}
	s.mu.Unlock()
	if len(live) == 0 {
		return env, ErrNoConnection
	}
	c := live[rand.IntN(len(live))]
	now := time.Now()
	if err := c.write(env); err != nil {
		// The socket is closing (a refresh, or the bot hanging up). Slack
		// then treats the event as sent and not acknowledged: with retries
		// on, it comes again on another connection.
		s.mu.Lock()
		defer s.mu.Unlock()
		if retry && s.retry != nil && env.Type == "events_api" && !s.closed {
			s.bg.Add(1)
			go s.retryLoop(env, s.retry)
			return env, nil
		}
		return env, fmt.Errorf("fakeslack: sending envelope %s: %w", env.EnvelopeID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, Sent{EnvelopeID: env.EnvelopeID, Type: env.Type, EventID: env.EventID(),
		RetryAttempt: env.RetryAttempt, Time: now, Conn: c.id})
	s.changedLocked()
	if retry && s.retry != nil && env.Type == "events_api" && !s.closed {
		s.bg.Add(1)
		go s.retryLoop(env, s.retry)
	}
	return env, nil
}

// SetRetries makes the server redeliver an Events API envelope that was not
// acked within ackTimeout, like Slack: once after each delay in schedule
// (Slack's is 0, 1 min, 5 min; tests compress it). No arguments turn it off.
func (s *Server) SetRetries(ackTimeout time.Duration, schedule ...time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ackTimeout <= 0 {
		s.retry = nil
		return
	}
	s.retry = &retryPolicy{ackTimeout: ackTimeout, schedule: schedule}
}

func (s *Server) retryLoop(env Envelope, p *retryPolicy) {
	defer s.bg.Done()
	chain := []string{env.EnvelopeID}
	acked := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, a := range s.acks {
			if slices.Contains(chain, a.EnvelopeID) {
				return true
			}
		}
		return s.closed
	}
	for _, delay := range p.schedule {
		if s.sleep(p.ackTimeout) || acked() {
			return
		}
		if s.sleep(delay) {
			return
		}
		// Slack holds a retry while the app has no socket open.
		for {
			next := env
			next.EnvelopeID = ""
			next.RetryAttempt++
			next.RetryReason = "timeout"
			sent, err := s.send(next, false)
			if err == nil {
				env = sent
				chain = append(chain, sent.EnvelopeID)
				break
			}
			if s.sleep(20 * time.Millisecond) {
				return
			}
		}
	}
}

// sleep waits d and reports whether the server closed meanwhile.
func (s *Server) sleep(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(left, 10*time.Millisecond))
	}
}

// Disconnect sends a disconnect message with reason (warning,
// refresh_requested, link_disabled) on every open socket and closes them
// after closeAfter (never if closeAfter is negative).
func (s *Server) Disconnect(reason string, closeAfter time.Duration) {
	s.mu.Lock()
	var targets []*conn
	for _, c := range s.conns {
		if c.helloed {
			targets = append(targets, c)
		}
	}
	s.mu.Unlock()
	s.disconnect(targets, reason, closeAfter)
}

// RouteToDraining sets whether envelopes still go to a socket that was sent
// a disconnect message, until it closes. By default they do not: Slack asks
// a connection to go before it closes it so that the app can open another,
// and delivers to the app's active connections. On, it is the worst case:
// what the app reads on a socket it is leaving may be lost (events come
// again; clicks do not).
func (s *Server) RouteToDraining(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.toDraining = on
}

// Refresh does what Disconnect does to the oldest open socket only, as
// Slack refreshes each of an app's connections on its own schedule. It
// reports whether there was a socket to refresh.
func (s *Server) Refresh(reason string, closeAfter time.Duration) bool {
	s.mu.Lock()
	var oldest *conn
	for _, c := range s.conns {
		if c.helloed && (oldest == nil || c.id < oldest.id) {
			oldest = c
		}
	}
	s.mu.Unlock()
	if oldest == nil {
		return false
	}
	s.disconnect([]*conn{oldest}, reason, closeAfter)
	return true
}

func (s *Server) disconnect(targets []*conn, reason string, closeAfter time.Duration) {
	msg := map[string]any{"type": "disconnect", "reason": reason,
		"debug_info": map[string]any{"host": "fake-applink"}}
	s.mu.Lock()
	for _, c := range targets {
		c.draining = true
	}
	s.mu.Unlock()
	for _, c := range targets {
		_ = c.write(msg)
	}
	if closeAfter < 0 {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.bg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		s.sleep(closeAfter)
		for _, c := range targets {
			c.close()
		}
	}()
}

// CloseConnections closes every open socket at once, without a disconnect message.
func (s *Server) CloseConnections() {
	s.mu.Lock()
	var targets []*conn
	for _, c := range s.conns {
		targets = append(targets, c)
	}
	s.mu.Unlock()
	for _, c := range targets {
		c.close()
	}
}

// Sent returns the envelopes the server sent, in order.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// Acks returns the acks the app sent, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// WaitAck waits up to timeout for the ack of envelopeID.
func (s *Server) WaitAck(envelopeID string, timeout time.Duration) (Ack, error) {
	s.WaitFor(timeout, func(st State) bool { return st.Acked(envelopeID) })
	for _, a := range s.Acks() {
		if a.EnvelopeID == envelopeID {
			return a, nil
		}
	}
	return Ack{}, fmt.Errorf("fakeslack: envelope %s not acked within %v", envelopeID, timeout)
}

// AckLatency returns how long after it was first sent envelopeID was acked,
// and whether it was.
func (s *Server) AckLatency(envelopeID string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sent time.Time
	for _, x := range s.sent {
		if x.EnvelopeID == envelopeID {
			sent = x.Time
			break
		}
	}
	for _, a := range s.acks {
		if a.EnvelopeID == envelopeID && !sent.IsZero() {
			return a.Time.Sub(sent), true
		}
	}
	return 0, false
}

// OtherConnection opens a Socket Mode connection to the app as another
// process using the same app token would (apps.connections.open, then the
// websocket), and closes it when t ends. It reads nothing: Slack's count of
// the app's connections (hello's num_connections) includes it.
func (s *Server) OtherConnection(t testing.TB) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"apps.connections.open", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+AppToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var opened struct {
		OK    bool   `json:"ok"`
		URL   string `json:"url"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&opened); err != nil || !opened.OK {
		t.Fatalf("fakeslack: apps.connections.open: %+v, %v", opened, err)
	}
	ws, _, err := websocket.DefaultDialer.Dial(opened.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
}
