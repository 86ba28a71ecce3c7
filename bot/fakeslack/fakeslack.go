package fakeslack

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The identities of the fake workspace and its bot. The tokens are test
// values, not secrets.
const (
	AppToken = "xapp-1-fake-app-token"
	BotToken = "xoxb-0-fake"
	TeamID   = "T0FAKETEAM"
	AppID    = "A0FAKEAPP"
	BotUser  = "U0DOBROBOT"
	BotID    = "B0DOBROBOT"
)

// Call is one recorded Web API call.
type Call struct {
	Method string
	// Args holds the form arguments (the token removed); for a JSON body,
	// its top-level fields as strings.
	Args url.Values
	Time time.Time
	// Status is the HTTP status answered, Error the Slack error code answered
	// with ok:false ("" when the call succeeded).
	Status int
	Error  string
}

// Failure makes calls to a method fail. A zero Status means 200 with
// ok:false and Error; 429 adds Retry-After (seconds).
type Failure struct {
	Status     int
	RetryAfter int
	Error      string
	// Times is how many calls fail; 0 means every call until ClearFailures.
	Times int
}

// Message is a message the fake holds: posted with chat.postMessage (and
// maybe updated with chat.update) or, Ephemeral, with chat.postEphemeral.
type Message struct {
	Channel   string
	TS        string
	ThreadTS  string
	User      string // the recipient of an ephemeral message
	Text      string
	Blocks    json.RawMessage
	Ephemeral bool
	Updates   int // how many times chat.update changed it
	// Metadata is the message metadata posted with it (chat.postMessage's
	// metadata argument: event_type and event_payload), nil if none.
	// conversations.history and conversations.replies return it when asked
	// with include_all_metadata.
	Metadata *Metadata
}

// Metadata is a message's metadata as Slack keeps it: an app-defined event
// type and a JSON object payload.
type Metadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
}

// Button is an interactive button found in a message's blocks.
type Button struct {
	Channel   string
	MessageTS string
	BlockID   string
	ActionID  string
	Label     string
	Value     string
	Style     string
}

// Server is a fake Slack. Create it with New in a test (it is closed when the
// test ends), or with Start elsewhere.
type Server struct {
	// URL is the Web API base URL, with the trailing slash slack-go needs.
	URL string

	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every recorded change
	calls    []Call
	fails    map[string][]*Failure
	tsSec    int64
	tsSeq    int64
	messages []*Message
	groups   map[string][]string
	channels map[string][]string // channel ID → members, for conversations.members
	users    map[string]string   // id → name
	errs     []string

	// Socket Mode state (socket.go).
	tickets  map[string]bool // issued, unused websocket tickets
	conns    map[int]*conn
	nextConn int
	opens    int // successful apps.connections.open calls
	hellos   int
	noPing   bool
	// toDraining: keep giving envelopes to sockets that were sent a
	// disconnect message (RouteToDraining).
	toDraining bool
	// dropAcks: how many of the next acks are lost with their socket
	// (DropNextAcks).
	dropAcks  int
	pingEvery time.Duration
	sent      []Sent
	acks      []Ack
	nextEnv   int
	nextEvent int
	nextTrig  int
	retry     *retryPolicy
	closed    bool
	bg        sync.WaitGroup

	// The clock the fake judges Slack's 3 s windows by (SetClock, Advance):
	// trigger expiry and late acks.
	clock  func() time.Time
	offset time.Duration

	// Interactivity state (views.go).
	triggers map[string]*trigger // trigger_id → who it was issued to, and when
	sentAt   map[string]sentEnv  // envelope ID → its type and when it was sent, by the clock
	views    []*View
	homes    map[string]*View // user → published App Home
	publish  []Publish
	nextView int

	// Files upload v2 state (files.go).
	uploads     map[string]*Upload // file ID → upload
	uploadOrder []string
	keepBytes   bool
	nextFile    int
}

// New starts a fake Slack on 127.0.0.1 and closes it when t ends. Errors the
// fake notices (an unknown method, a malformed ack) fail t at the end.
func New(t testing.TB) *Server {
	s := start(t)
	t.Cleanup(s.Close)
	return s
}

// Start starts a fake Slack on 127.0.0.1 for a program that is not a test,
// such as a load run. The caller must Close it; Errors returns what the fake
// noticed.
func Start() *Server { return start(nil) }

func start(t testing.TB) *Server {
	s := &Server{
		t:         t,
		changed:   make(chan struct{}),
		fails:     map[string][]*Failure{},
		tsSec:     time.Now().Unix(),
		groups:    map[string][]string{},
		channels:  map[string][]string{},
		users:     map[string]string{},
		tickets:   map[string]bool{},
		conns:     map[int]*conn{},
		pingEvery: 2 * time.Second,
		clock:     time.Now,
		triggers:  map[string]*trigger{},
		sentAt:    map[string]sentEnv{},
		homes:     map[string]*View{},
		uploads:   map[string]*Upload{},
		keepBytes: true,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serveAPI)
	mux.HandleFunc("/link/", s.serveSocket)
	mux.HandleFunc("/upload/{file}", s.serveUpload)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL + "/api/"
	return s
}

// Close closes every socket and stops the server, then fails the test (of
// New) with any error the fake noticed. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.srv.Close()
	s.bg.Wait()
	if s.t == nil {
		return
	}
	for _, e := range s.Errors() {
		s.t.Errorf("fakeslack: %s", e)
	}
}

// Errors returns the errors the fake noticed so far (an unknown method, a
// malformed ack).
func (s *Server) Errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

// changedLocked wakes everyone waiting for a change. s.mu must be held.
func (s *Server) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// errorf records an error that fails the test when the server closes.
func (s *Server) errorf(format string, args ...any) {
	s.mu.Lock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// WaitFor waits up to timeout for cond to hold and reports whether it did.
// cond is given a snapshot of what the server recorded so far and is called
// again after every change; it runs without the server's lock, so it may
// call the Server's methods.
func (s *Server) WaitFor(timeout time.Duration, cond func(State) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		st := s.stateLocked()
		ch := s.changed
		s.mu.Unlock()
		if cond(st) {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// State is a snapshot of what the server recorded, given to WaitFor's
// condition. Its slices must not be kept or modified.
type State struct {
	Calls       []Call
	Acks        []Ack
	Sent        []Sent
	Connections int // open sockets that were sent hello
	Opens       int // successful apps.connections.open calls
	Hellos      int // hello messages sent
}

// Count returns how many calls to method (every method if "") are recorded.
func (st State) Count(method string) int {
	n := 0
	for _, c := range st.Calls {
		if method == "" || c.Method == method {
			n++
		}
	}
	return n
}

// Acked reports whether an ack for envelopeID is recorded.
func (st State) Acked(envelopeID string) bool {
	return slices.ContainsFunc(st.Acks, func(a Ack) bool { return a.EnvelopeID == envelopeID })
}

func (s *Server) stateLocked() State {
	live := 0
	for _, c := range s.conns {
		if c.helloed {
			live++
		}
	}
	// Recorded entries are only ever appended: capped slices of them stay
	// valid after the lock is let go.
	return State{Calls: s.calls[:len(s.calls):len(s.calls)], Acks: s.acks[:len(s.acks):len(s.acks)],
		Sent: s.sent[:len(s.sent):len(s.sent)], Connections: live, Opens: s.opens, Hellos: s.hellos}
}

// Calls returns the recorded calls to method, or every call if method is "".
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// WaitCalls waits up to timeout until at least n calls to method are
// recorded, and returns the calls to method; the error says how many came.
func (s *Server) WaitCalls(method string, n int, timeout time.Duration) ([]Call, error) {
	ok := s.WaitFor(timeout, func(st State) bool { return st.Count(method) >= n })
	calls := s.Calls(method)
	if !ok {
		return calls, fmt.Errorf("fakeslack: waited %v for %d calls to %s, got %d", timeout, n, method, len(calls))
	}
	return calls, nil
}

// Fail makes the next calls to method fail as f says. Failures queue up:
// the first is used until its Times are spent, then the next.
func (s *Server) Fail(method string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails[method] = append(s.fails[method], &f)
}

// ClearFailures removes every programmed failure.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = map[string][]*Failure{}
}

// SetGroup sets the members of user group id (S…), for usergroups.users.list.
func (s *Server) SetGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = slices.Clone(members)
}

// SetChannelMembers sets the members of channel id (C… or G…), for
// conversations.members. A channel never set is not found.
func (s *Server) SetChannelMembers(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[id] = slices.Clone(members)
}

// SetUser makes users.info know user id with the given name.
func (s *Server) SetUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = name
}

// DMChannel returns the ID of the direct-message channel between the bot and
// user, as conversations.open answers it.
func DMChannel(user string) string {
	if len(user) > 1 {
		return "D" + user[1:]
	}
	return "D" + user
}

// Messages returns the messages posted to channel (every channel if ""),
// ephemeral ones excluded, in the order they were first posted, with updates
// applied.
func (s *Server) Messages(channel string) []Message {
	return s.messagesWhere(func(m *Message) bool {
		return !m.Ephemeral && (channel == "" || m.Channel == channel)
	})
}

// Ephemerals returns the ephemeral messages shown to user (every user if ""),
// in the order they were posted.
func (s *Server) Ephemerals(user string) []Message {
	return s.messagesWhere(func(m *Message) bool {
		return m.Ephemeral && (user == "" || m.User == user)
	})
}

func (s *Server) messagesWhere(keep func(*Message) bool) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if keep(m) {
			out = append(out, *m)
		}
	}
	return out
}

// Buttons returns the buttons in the messages posted to channel, in order.
func (s *Server) Buttons(channel string) []Button {
	var out []Button
	for _, m := range s.Messages(channel) {
		out = append(out, m.Buttons()...)
	}
	return out
}

// Buttons returns the buttons in the message's actions blocks.
func (m Message) Buttons() []Button {
	var blocks []struct {
		Type     string `json:"type"`
		BlockID  string `json:"block_id"`
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
			Style    string `json:"style"`
			Text     struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"elements"`
	}
	if len(m.Blocks) == 0 || json.Unmarshal(m.Blocks, &blocks) != nil {
		return nil
	}
	var out []Button
	for _, b := range blocks {
		if b.Type != "actions" {
			continue
		}
		for _, e := range b.Elements {
			if e.Type == "button" {
				out = append(out, Button{Channel: m.Channel, MessageTS: m.TS, BlockID: b.BlockID,
					ActionID: e.ActionID, Label: e.Text.Text, Value: e.Value, Style: e.Style})
			}
		}
	}
	return out
}

// nextTSLocked returns a new message ts, greater than every earlier one.
func (s *Server) nextTSLocked() string {
	s.tsSeq += 100
	sec := s.tsSec + s.tsSeq/1_000_000
	return fmt.Sprintf("%d.%06d", sec, s.tsSeq%1_000_000)
}

// apiResult is what a Web API method answers: a JSON object (ok is added)
// or a Slack error code.
type apiResult struct {
	body map[string]any
	err  string
}

func ok(body map[string]any) apiResult { return apiResult{body: body} }
func fail(code string) apiResult       { return apiResult{err: code} }

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	args, token, err := readArgs(r)
	now := time.Now()
	if err != nil {
		s.errorf("%s: reading the request: %v", method, err)
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_form_data"})
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: method, Args: args, Time: now, Status: http.StatusOK}
	defer func() {
		s.calls = append(s.calls, call)
		s.changedLocked()
	}()

	if f := s.takeFailureLocked(method); f != nil {
		switch {
		case f.Status == http.StatusTooManyRequests:
			call.Status, call.Error = f.Status, "ratelimited"
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
			writeJSON(w, f.Status, map[string]any{"ok": false, "error": "ratelimited"})
		case f.Status != 0 && f.Status != http.StatusOK:
			call.Status = f.Status
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(f.Status)
			_, _ = io.WriteString(w, "<html><body>Slack is having trouble</body></html>")
		default:
			call.Error = f.Error
			writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": f.Error})
		}
		return
	}

	var res apiResult
	switch {
	case method == "apps.connections.open":
		switch token {
		case AppToken:
			res = s.connectionsOpenLocked()
		case BotToken:
			res = fail("not_allowed_token_type")
		case "":
			res = fail("not_authed")
		default:
			res = fail("invalid_auth")
		}
	case token == "":
		res = fail("not_authed")
	case token != BotToken:
		res = fail("invalid_auth")
	default:
		res = s.methodLocked(method, args)
	}
	call.Error = res.err
	if res.err != "" {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": res.err})
		return
	}
	body := res.body
	body["ok"] = true
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) takeFailureLocked(method string) *Failure {
	q := s.fails[method]
	if len(q) == 0 {
		return nil
	}
	f := q[0]
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			s.fails[method] = q[1:]
		}
	}
	return f
}

func (s *Server) methodLocked(method string, args url.Values) apiResult {
	switch method {
	case "auth.test":
		return ok(map[string]any{"url": "https://fake.slack.com/", "team": "Fake", "user": "dobrobot",
			"team_id": TeamID, "user_id": BotUser, "bot_id": BotID, "is_enterprise_install": false})
	case "chat.postMessage":
		return s.postLocked(args, false)
	case "chat.postEphemeral":
		return s.postLocked(args, true)
	case "chat.update":
		return s.updateLocked(args)
	case "conversations.history":
		return s.historyLocked(args)
	case "conversations.replies":
		return s.repliesLocked(args)
	case "conversations.open":
		users := args.Get("users")
		switch {
		case users == "":
			return fail("users_list_not_supplied")
		case strings.Contains(users, ","):
			return fail("not_supported") // group DMs are not part of the fake
		case strings.HasPrefix(users, "B"):
			return fail("cannot_dm_bot")
		}
		return ok(map[string]any{"no_op": true, "already_open": true,
			"channel": map[string]any{"id": DMChannel(users), "is_im": true, "user": users}})
	case "usergroups.users.list":
		members, found := s.groups[args.Get("usergroup")]
		if !found {
			return fail("no_such_subteam")
		}
		return ok(map[string]any{"users": slices.Clone(members)})
	case "conversations.members":
		return s.membersLocked(args)
	case "views.open":
		return s.viewsOpenLocked(args)
	case "views.publish":
		return s.viewsPublishLocked(args)
	case "files.getUploadURLExternal":
		return s.uploadURLLocked(args)
	case "files.completeUploadExternal":
		return s.completeUploadLocked(args)
	case "users.info":
		id := args.Get("user")
		name, found := s.users[id]
		if !found {
			return fail("user_not_found")
		}
		return ok(map[string]any{"user": map[string]any{"id": id, "team_id": TeamID, "name": name,
			"real_name": name, "profile": map[string]any{"display_name": name, "real_name": name}}})
	}
	s.errs = append(s.errs, fmt.Sprintf("the bot called %s, which the fake does not implement", method))
	return fail("unknown_method")
}

// membersLocked answers conversations.members a page at a time, like
// Slack: limit members (100 by default, at most 1000) and a cursor for the
// rest, which is the offset here.
func (s *Server) membersLocked(args url.Values) apiResult {
	members, found := s.channels[args.Get("channel")]
	if !found {
		return fail("channel_not_found")
	}
	limit := 100
	if l := args.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return fail("invalid_limit")
		}
		limit = min(n, 1000)
	}
	from := 0
	if c := args.Get("cursor"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 || n > len(members) {
			return fail("invalid_cursor")
		}
		from = n
	}
	to := min(from+limit, len(members))
	next := ""
	if to < len(members) {
		next = strconv.Itoa(to)
	}
	return ok(map[string]any{"members": slices.Clone(members[from:to]),
		"response_metadata": map[string]any{"next_cursor": next}})
}

func (s *Server) postLocked(args url.Values, ephemeral bool) apiResult {
	channel := args.Get("channel")
	switch {
	case channel == "":
		return fail("channel_not_found")
	case args.Get("text") == "" && args.Get("blocks") == "" && args.Get("attachments") == "":
		return fail("no_text")
	case ephemeral && args.Get("user") == "":
		return fail("user_not_found")
	}
	var meta *Metadata
	if raw := args.Get("metadata"); raw != "" && !ephemeral {
		var code string
		if meta, code = parseMetadata(raw); code != "" {
			return fail(code)
		}
	}
	m := &Message{Channel: channel, TS: s.nextTSLocked(), ThreadTS: args.Get("thread_ts"), Text: args.Get("text"),
		Blocks: rawBlocks(args.Get("blocks")), Ephemeral: ephemeral, Metadata: meta}
	if ephemeral {
		m.User = args.Get("user")
		s.messages = append(s.messages, m)
		return ok(map[string]any{"message_ts": m.TS})
	}
	s.messages = append(s.messages, m)
	return ok(map[string]any{"channel": channel, "ts": m.TS, "message": map[string]any{
		"type": "message", "user": BotUser, "bot_id": BotID, "app_id": AppID, "text": m.Text, "ts": m.TS,
		"thread_ts": m.ThreadTS, "team": TeamID}})
}

func (s *Server) updateLocked(args url.Values) apiResult {
	channel, ts := args.Get("channel"), args.Get("ts")
	for _, m := range s.messages {
		if m.Ephemeral || m.Channel != channel || m.TS != ts {
			continue
		}
		if args.Has("text") {
			m.Text = args.Get("text")
		}
		if args.Has("blocks") {
			m.Blocks = rawBlocks(args.Get("blocks"))
		}
		m.Updates++
		return ok(map[string]any{"channel": channel, "ts": ts, "text": m.Text,
			"message": map[string]any{"type": "message", "user": BotUser, "bot_id": BotID, "text": m.Text}})
	}
	if channel == "" {
		return fail("channel_not_found")
	}
	return fail("message_not_found")
}

func rawBlocks(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// readArgs returns a request's arguments and the token it carries (form
// field or bearer header), the token removed from the arguments.
func readArgs(r *http.Request) (url.Values, string, error) {
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	args := url.Values{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return nil, "", err
		}
		if len(body) > 0 && string(body) != "null" {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				return nil, "", fmt.Errorf("decoding the JSON body: %w", err)
			}
			for k, v := range m {
				if str, isStr := v.(string); isStr {
					args.Set(k, str)
				} else {
					b, _ := json.Marshal(v)
					args.Set(k, string(b))
				}
			}
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return nil, "", err
		}
		args = r.Form
	}
	if t := args.Get("token"); t != "" {
		token = t
	}
	args.Del("token")
	return args, token, nil
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// parseMetadata reads chat.postMessage's metadata argument, a JSON object
// with a non-empty event_type and an event_payload object, or returns the
// error code Slack answers for it.
func parseMetadata(raw string) (*Metadata, string) {
	var m struct {
		EventType    *string         `json:"event_type"`
		EventPayload json.RawMessage `json:"event_payload"`
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, "invalid_metadata_format"
	}
	var payload map[string]any
	if m.EventType == nil || *m.EventType == "" || json.Unmarshal(m.EventPayload, &payload) != nil || payload == nil {
		return nil, "invalid_metadata_schema"
	}
	return &Metadata{EventType: *m.EventType, EventPayload: payload}, ""
}

// messageJSONLocked is a posted message as conversations.history and
// conversations.replies return it: from the bot, with its metadata when
// the call asked for it (include_all_metadata).
func (s *Server) messageJSONLocked(m *Message, withMeta bool) map[string]any {
	out := map[string]any{"type": "message", "user": BotUser, "bot_id": BotID, "app_id": AppID,
		"text": m.Text, "ts": m.TS, "team": TeamID}
	if len(m.Blocks) > 0 {
		out["blocks"] = m.Blocks
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	} else if n := s.replyCountLocked(m); n > 0 {
		out["thread_ts"], out["reply_count"] = m.TS, n
	}
	if withMeta && m.Metadata != nil {
		out["metadata"] = m.Metadata
	}
	return out
}

func (s *Server) replyCountLocked(parent *Message) int {
	n := 0
	for _, m := range s.messages {
		if !m.Ephemeral && m.Channel == parent.Channel && m.ThreadTS == parent.TS && m.TS != parent.TS {
			n++
		}
	}
	return n
}

// page reads the limit (default def, at most max) and cursor (an offset
// here) arguments of a paginated method.
func page(args url.Values, def, max int) (limit, from int, code string) {
	limit = def
	if l := args.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return 0, 0, "invalid_limit"
		}
		if n > 0 {
			limit = min(n, max)
		}
	}
	if c := args.Get("cursor"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			return 0, 0, "invalid_cursor"
		}
		from = n
	}
	return limit, from, ""
}

// inRange reports whether ts lies between the oldest and latest arguments,
// which exclude their own ts unless inclusive is set, as Slack reads them.
func inRange(ts string, args url.Values) bool {
	t, _ := strconv.ParseFloat(ts, 64)
	inclusive := args.Get("inclusive") == "1" || args.Get("inclusive") == "true"
	if o := args.Get("oldest"); o != "" {
		if f, err := strconv.ParseFloat(o, 64); err == nil && (t < f || t == f && !inclusive) {
			return false
		}
	}
	if l := args.Get("latest"); l != "" {
		if f, err := strconv.ParseFloat(l, 64); err == nil && (t > f || t == f && !inclusive) {
			return false
		}
	}
	return true
}

func wantMeta(args url.Values) bool {
	v := args.Get("include_all_metadata")
	return v == "1" || v == "true"
}

// historyLocked answers conversations.history like Slack: the channel's
// messages newest first, thread replies left out, limit (100 by default,
// at most 999) at a time with has_more and a cursor for the rest, between
// oldest and latest if given; metadata only with include_all_metadata.
// Ephemeral messages are never in a history.
func (s *Server) historyLocked(args url.Values) apiResult {
	channel := args.Get("channel")
	if channel == "" {
		return fail("channel_not_found")
	}
	limit, from, code := page(args, 100, 999)
	if code != "" {
		return fail(code)
	}
	var all []*Message
	for i := len(s.messages) - 1; i >= 0; i-- {
		m := s.messages[i]
		if !m.Ephemeral && m.Channel == channel && (m.ThreadTS == "" || m.ThreadTS == m.TS) && inRange(m.TS, args) {
			all = append(all, m)
		}
	}
	return s.pageOfLocked(all, limit, from, wantMeta(args))
}

// repliesLocked answers conversations.replies like Slack: the thread's
// parent then its replies, oldest first, limit (1000 by default and at
// most) at a time; thread_not_found for a ts that is no message.
func (s *Server) repliesLocked(args url.Values) apiResult {
	channel, ts := args.Get("channel"), args.Get("ts")
	if channel == "" {
		return fail("channel_not_found")
	}
	limit, from, code := page(args, 1000, 1000)
	if code != "" {
		return fail(code)
	}
	var all []*Message
	for _, m := range s.messages {
		if !m.Ephemeral && m.Channel == channel && (m.TS == ts || m.ThreadTS == ts) && (m.TS == ts || inRange(m.TS, args)) {
			all = append(all, m)
		}
	}
	if len(all) == 0 || all[0].TS != ts {
		return fail("thread_not_found")
	}
	return s.pageOfLocked(all, limit, from, wantMeta(args))
}

func (s *Server) pageOfLocked(all []*Message, limit, from int, withMeta bool) apiResult {
	from = min(from, len(all))
	to := min(from+limit, len(all))
	msgs := make([]map[string]any, 0, to-from)
	for _, m := range all[from:to] {
		msgs = append(msgs, s.messageJSONLocked(m, withMeta))
	}
	next := ""
	if to < len(all) {
		next = strconv.Itoa(to)
	}
	return ok(map[string]any{"messages": msgs, "has_more": next != "",
		"response_metadata": map[string]any{"next_cursor": next}})
}
