package fakeslack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
)

func client(s *fakeslack.Server, token string) *slack.Client {
	return slack.New(token, slack.OptionAPIURL(s.URL), slack.OptionAppLevelToken(fakeslack.AppToken))
}

func slackError(err error) string {
	var e slack.SlackErrorResponse
	if errors.As(err, &e) {
		return e.Err
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

func TestWebAPI(t *testing.T) {
	s := fakeslack.New(t)
	s.SetGroup("S01QA", "U01", "U02")
	s.SetUser("U01", "ann")
	api := client(s, fakeslack.BotToken)
	ctx := context.Background()

	auth, err := api.AuthTestContext(ctx)
	if err != nil {
		t.Fatalf("auth.test: %v", err)
	}
	if got, want := []string{auth.UserID, auth.BotID, auth.TeamID}, []string{fakeslack.BotUser, fakeslack.BotID, fakeslack.TeamID}; !cmp.Equal(got, want) {
		t.Errorf("auth.test identity: got %v, want %v", got, want)
	}
	if _, err := client(s, "xoxb-wrong").AuthTestContext(ctx); slackError(err) != "invalid_auth" {
		t.Errorf("auth.test with a wrong token: got %v, want invalid_auth", err)
	}

	var tss []string
	for _, text := range []string{"one", "two", "three"} {
		_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText(text, false))
		if err != nil {
			t.Fatalf("chat.postMessage %q: %v", text, err)
		}
		tss = append(tss, ts)
	}
	for i := 1; i < len(tss); i++ {
		if !(tss[i-1] < tss[i]) || len(tss[i-1]) != len(tss[i]) {
			t.Errorf("ts values not increasing: %v", tss)
		}
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", tss[1], slack.MsgOptionText("two, edited", false)); err != nil {
		t.Errorf("chat.update: %v", err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", "1.000001", slack.MsgOptionText("x", false)); slackError(err) != "message_not_found" {
		t.Errorf("chat.update of an unknown ts: got %v, want message_not_found", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("in thread", false), slack.MsgOptionTS(tss[0])); err != nil {
		t.Errorf("thread reply: %v", err)
	}
	type msg struct {
		Text, ThreadTS string
		Updates        int
	}
	var got []msg
	for _, m := range s.Messages("C1") {
		got = append(got, msg{m.Text, m.ThreadTS, m.Updates})
	}
	want := []msg{{"one", "", 0}, {"two, edited", "", 1}, {"three", "", 0}, {"in thread", tss[0], 0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages in C1 (-want +got):\n%s", diff)
	}

	if _, err := api.PostEphemeralContext(ctx, "C1", "U01", slack.MsgOptionText("only for you", false)); err != nil {
		t.Errorf("chat.postEphemeral: %v", err)
	}
	if eph := s.Ephemerals("U01"); len(eph) != 1 || eph[0].Text != "only for you" || eph[0].Channel != "C1" {
		t.Errorf("ephemerals for U01: %+v", eph)
	}
	if n := len(s.Messages("C1")); n != 4 {
		t.Errorf("an ephemeral message shows among channel messages: %d messages", n)
	}

	ch, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U01"}})
	if err != nil || ch.ID != fakeslack.DMChannel("U01") {
		t.Errorf("conversations.open: got %+v, %v; want channel %s", ch, err, fakeslack.DMChannel("U01"))
	}

	members, err := api.GetUserGroupMembersContext(ctx, "S01QA")
	if diff := cmp.Diff([]string{"U01", "U02"}, members); diff != "" || err != nil {
		t.Errorf("usergroups.users.list: err %v, members (-want +got):\n%s", err, diff)
	}
	if _, err := api.GetUserGroupMembersContext(ctx, "S404"); slackError(err) != "no_such_subteam" {
		t.Errorf("usergroups.users.list of an unknown group: got %v", err)
	}
	if _, _, err := api.GetUsersInConversationContext(ctx, &slack.GetUsersInConversationParameters{ChannelID: "C404"}); slackError(err) != "channel_not_found" {
		t.Errorf("conversations.members of an unknown channel: got %v", err)
	}
	if u, err := api.GetUserInfoContext(ctx, "U01"); err != nil || u.Name != "ann" {
		t.Errorf("users.info: got %+v, %v", u, err)
	}

	calls := s.Calls("chat.postMessage")
	if len(calls) != 4 || calls[0].Args.Get("channel") != "C1" || calls[0].Args.Get("text") != "one" || calls[0].Args.Has("token") {
		t.Errorf("recorded chat.postMessage calls (token must be removed): %+v", calls)
	}
}

// TestConversationsMembers: the fake answers conversations.members a page
// at a time, and following the cursors gives every member once, in order.
func TestConversationsMembers(t *testing.T) {
	s := fakeslack.New(t)
	api := client(s, fakeslack.BotToken)
	ctx := context.Background()
	var want []string
	for i := range 250 {
		want = append(want, fmt.Sprintf("U%04d", i))
	}
	s.SetChannelMembers("C0REL", want...)
	for _, limit := range []int{0, 1, 100, 249, 250, 1000} {
		var got []string
		cursor, pages := "", 0
		for {
			page, next, err := api.GetUsersInConversationContext(ctx, &slack.GetUsersInConversationParameters{ChannelID: "C0REL", Cursor: cursor, Limit: limit})
			if err != nil {
				t.Fatalf("limit %d, page %d: %v", limit, pages, err)
			}
			got, pages = append(got, page...), pages+1
			if next == "" {
				break
			}
			cursor = next
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("limit %d: members (-want +got):\n%s", limit, diff)
		}
		wantPages := (250 + max(limit, 0) - 1) / max(limit, 1)
		if limit == 0 {
			wantPages = 3 // Slack's default page is 100
		}
		if pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	if _, _, err := api.GetUsersInConversationContext(ctx, &slack.GetUsersInConversationParameters{ChannelID: "C0REL", Cursor: "x"}); slackError(err) != "invalid_cursor" {
		t.Errorf("a bad cursor: got %v, want invalid_cursor", err)
	}
}

func TestFailures(t *testing.T) {
	s := fakeslack.New(t)
	api := client(s, fakeslack.BotToken)
	ctx := context.Background()
	post := func() error {
		_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false))
		return err
	}

	s.Fail("chat.postMessage", fakeslack.Failure{Status: http.StatusTooManyRequests, RetryAfter: 2, Times: 1})
	s.Fail("chat.postMessage", fakeslack.Failure{Status: http.StatusServiceUnavailable, Times: 1})
	s.Fail("chat.postMessage", fakeslack.Failure{Error: "channel_not_found", Times: 2})

	var rl *slack.RateLimitedError
	if err := post(); !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Errorf("first call: got %v, want a RateLimitedError with RetryAfter 2s", err)
	}
	var sc slack.StatusCodeError
	if err := post(); !errors.As(err, &sc) || sc.Code != http.StatusServiceUnavailable {
		t.Errorf("second call: got %v, want status 503", err)
	}
	for i := range 2 {
		if err := post(); slackError(err) != "channel_not_found" {
			t.Errorf("call %d: got %v, want channel_not_found", 3+i, err)
		}
	}
	if err := post(); err != nil {
		t.Errorf("after the failures are spent: %v", err)
	}

	s.Fail("conversations.open", fakeslack.Failure{Error: "fatal_error"})
	for range 3 {
		if _, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}}); slackError(err) != "fatal_error" {
			t.Errorf("a failure without Times: got %v, want fatal_error every time", err)
		}
	}
	s.ClearFailures()
	if _, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}}); err != nil {
		t.Errorf("after ClearFailures: %v", err)
	}

	type rec struct {
		Status int
		Error  string
	}
	var got []rec
	for _, c := range s.Calls("chat.postMessage") {
		got = append(got, rec{c.Status, c.Error})
	}
	want := []rec{{429, "ratelimited"}, {503, ""}, {200, "channel_not_found"}, {200, "channel_not_found"}, {200, ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recorded outcomes (-want +got):\n%s", diff)
	}
}

// run starts a slack-go Socket Mode client against s and returns its events.
func run(t *testing.T, s *fakeslack.Server, appToken string, opts ...socketmode.Option) (*socketmode.Client, <-chan error) {
	t.Helper()
	api := slack.New(fakeslack.BotToken, slack.OptionAPIURL(s.URL), slack.OptionAppLevelToken(appToken))
	c := socketmode.New(api, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		done <- c.RunContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			t.Error("the socket mode client did not stop")
		}
	})
	return c, done
}

// next returns the next event of one of the types, skipping others.
func next(t *testing.T, c *socketmode.Client, types ...socketmode.EventType) socketmode.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-c.Events:
			for _, typ := range types {
				if e.Type == typ {
					return e
				}
			}
		case <-timeout:
			t.Fatalf("no %v event within 5 s", types)
		}
	}
}

func TestSocketModeEventsAndAcks(t *testing.T) {
	s := fakeslack.New(t)
	c, _ := run(t, s, fakeslack.AppToken)
	next(t, c, socketmode.EventTypeHello)

	env, err := s.Deliver(fakeslack.Event{ID: "Ev1", User: "U01", Channel: "C1", Text: "<@" + fakeslack.BotUser + "> queue",
		Username: "mallory", Profile: map[string]string{"display_name": "ann"}})
	if err != nil {
		t.Fatal(err)
	}
	e := next(t, c, socketmode.EventTypeEventsAPI)
	if e.Request.EnvelopeID != env.EnvelopeID {
		t.Errorf("envelope id: got %q, want %q", e.Request.EnvelopeID, env.EnvelopeID)
	}
	api := e.Data.(slackevents.EventsAPIEvent)
	m, ok := api.InnerEvent.Data.(*slackevents.AppMentionEvent)
	if !ok {
		t.Fatalf("inner event: got %T, want an app_mention", api.InnerEvent.Data)
	}
	if got, want := []string{api.TeamID, m.User, m.Channel, m.Text}, []string{fakeslack.TeamID, "U01", "C1", "<@" + fakeslack.BotUser + "> queue"}; !cmp.Equal(got, want) {
		t.Errorf("app_mention fields: got %q, want %q", got, want)
	}
	if cb := api.Data.(*slackevents.EventsAPICallbackEvent); cb.EventID != "Ev1" {
		t.Errorf("event_id: got %q", cb.EventID)
	}
	if err := c.Ack(*e.Request); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitAck(env.EnvelopeID, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if lat, ok := s.AckLatency(env.EnvelopeID); !ok || lat <= 0 || lat > 2*time.Second {
		t.Errorf("ack latency: %v, %v", lat, ok)
	}

	// A DM arrives as a message event of channel_type im.
	s.Deliver(fakeslack.DM("U02", "help"))
	e = next(t, c, socketmode.EventTypeEventsAPI)
	dm, ok := e.Data.(slackevents.EventsAPIEvent).InnerEvent.Data.(*slackevents.MessageEvent)
	if !ok || dm.ChannelType != "im" || dm.Channel != fakeslack.DMChannel("U02") || dm.User != "U02" || dm.Text != "help" {
		t.Errorf("message.im: got %+v", e.Data.(slackevents.EventsAPIEvent).InnerEvent.Data)
	}

	// A click is an interactive block_actions payload.
	s.SendClick(fakeslack.Click{User: "U03", Channel: "D03", MessageTS: "1.000100", ActionID: "a1", Value: "accept PAY-1", Username: "ann"})
	e = next(t, c, socketmode.EventTypeInteractive)
	cb := e.Data.(slack.InteractionCallback)
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != "U03" || cb.TriggerID == "" ||
		len(cb.ActionCallback.BlockActions) != 1 || cb.ActionCallback.BlockActions[0].Value != "accept PAY-1" ||
		cb.Channel.ID != "D03" || cb.Team.ID != fakeslack.TeamID {
		t.Errorf("block_actions payload: %+v", cb)
	}
}

func TestDisconnectAndReconnect(t *testing.T) {
	for _, reason := range []string{"refresh_requested", "warning", "link_disabled"} {
		t.Run(reason, func(t *testing.T) {
			s := fakeslack.New(t)
			c, _ := run(t, s, fakeslack.AppToken)
			next(t, c, socketmode.EventTypeHello)
			s.Disconnect(reason, 100*time.Millisecond)
			if err := s.WaitConnections(1, 2, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			next(t, c, socketmode.EventTypeHello)
			if got := s.Opens(); got != 2 {
				t.Errorf("apps.connections.open calls: got %d, want 2", got)
			}
			// The old socket is closed: events go to the new one.
			if !s.WaitFor(2*time.Second, func(st fakeslack.State) bool { return st.Connections == 1 }) {
				t.Fatalf("connections: got %d, want 1", s.Connections())
			}
			env, _ := s.Deliver(fakeslack.DM("U1", "queue"))
			e := next(t, c, socketmode.EventTypeEventsAPI)
			if e.Request.EnvelopeID != env.EnvelopeID {
				t.Errorf("got envelope %q, want %q", e.Request.EnvelopeID, env.EnvelopeID)
			}
		})
	}
}

func TestWithheldPingsMakeTheClientReconnect(t *testing.T) {
	s := fakeslack.New(t)
	s.SetPingInterval(50 * time.Millisecond)
	c, _ := run(t, s, fakeslack.AppToken, socketmode.OptionPingInterval(300*time.Millisecond))
	next(t, c, socketmode.EventTypeHello)
	time.Sleep(500 * time.Millisecond) // pings keep the first socket alive
	if got := s.Opens(); got != 1 {
		t.Fatalf("with pings, the client reconnected: %d opens", got)
	}
	s.WithholdPings(true)
	if !s.WaitFor(3*time.Second, func(st fakeslack.State) bool { return st.Opens >= 2 }) {
		t.Fatalf("without pings, the client did not reconnect")
	}
}

func TestWrongAppTokenIsRefused(t *testing.T) {
	s := fakeslack.New(t)
	_, done := run(t, s, "xapp-wrong")
	select {
	case err := <-done:
		if err == nil || err.Error() != "invalid_auth" {
			t.Errorf("the client stopped with %v, want invalid_auth", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the client kept trying")
	}
	// A bot token is the wrong kind of token, as Slack says (slack-go retries it).
	wrongKind := slack.New(fakeslack.BotToken, slack.OptionAPIURL(s.URL), slack.OptionAppLevelToken(fakeslack.BotToken))
	_, _, err := wrongKind.StartSocketModeContext(context.Background())
	if slackError(err) != "not_allowed_token_type" {
		t.Errorf("apps.connections.open with the bot token: got %v", err)
	}
	if s.Opens() != 0 {
		t.Errorf("opens: %d", s.Opens())
	}
}

// dial opens a raw socket the test reads itself.
func dial(t *testing.T, s *fakeslack.Server) *websocket.Conn {
	t.Helper()
	_, url, err := client(s, fakeslack.BotToken).StartSocketModeContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	var hello struct {
		Type           string `json:"type"`
		NumConnections int    `json:"num_connections"`
	}
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" {
		t.Fatalf("first message: %+v, %v", hello, err)
	}
	return ws
}

func read(t *testing.T, ws *websocket.Conn) fakeslack.Envelope {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	var env fakeslack.Envelope
	if err := ws.ReadJSON(&env); err != nil {
		t.Fatalf("reading an envelope: %v", err)
	}
	return env
}

func TestSocketURLIsSingleUse(t *testing.T) {
	s := fakeslack.New(t)
	_, url, err := client(s, fakeslack.BotToken).StartSocketModeContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, resp, err := websocket.DefaultDialer.Dial(url, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("second dial of the same URL: err %v", err)
	}
}

func TestEnvelopesGoToARandomSocket(t *testing.T) {
	s := fakeslack.New(t)
	a, b := dial(t, s), dial(t, s)
	if err := s.WaitConnections(2, 2, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := range n {
		if _, err := s.Deliver(fakeslack.DM("U1", strings.Repeat("x", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	perConn := map[int]int{}
	for _, x := range s.Sent() {
		perConn[x.Conn]++
	}
	if len(perConn) != 2 || perConn[1]+perConn[2] != n {
		t.Errorf("envelopes per socket: %v; want both sockets used, %d in all", perConn, n)
	}
	for range perConn[1] {
		read(t, a)
	}
	for range perConn[2] {
		read(t, b)
	}
}

func TestDroppedAckClosesItsSocket(t *testing.T) {
	s := fakeslack.New(t)
	a, b := dial(t, s), dial(t, s)
	if err := s.WaitConnections(2, 2, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	s.DropNextAcks(1)
	if err := a.WriteJSON(map[string]string{"envelope_id": "lost"}); err != nil {
		t.Fatal(err)
	}
	_ = a.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, _, err := a.ReadMessage(); err == nil {
		t.Error("the socket that carried the lost ack is still open")
	}
	// Only the next ack was lost: the one after it, on the other socket, counts.
	if err := b.WriteJSON(map[string]string{"envelope_id": "kept"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WaitAck("kept", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if s.WaitFor(0, func(st fakeslack.State) bool { return st.Acked("lost") }) {
		t.Error("the dropped ack was recorded")
	}
	// The client sees the close before the server's handler has counted
	// it: wait for the count, as a reader of State would.
	if !s.WaitFor(2*time.Second, func(st fakeslack.State) bool { return st.Connections == 1 }) {
		t.Errorf("open sockets: got %d, want 1", s.Connections())
	}
}

func TestRetriesUntilAcked(t *testing.T) {
	s := fakeslack.New(t)
	ws := dial(t, s)
	if err := s.WaitConnections(1, 1, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	s.SetRetries(50*time.Millisecond, 0, 30*time.Millisecond, 30*time.Millisecond)
	first, err := s.Deliver(fakeslack.Event{ID: "EvR", User: "U1", Channel: "C1", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	got := []fakeslack.Envelope{read(t, ws), read(t, ws)}
	// Ack the first retry: no more come.
	if err := ws.WriteJSON(map[string]string{"envelope_id": got[1].EnvelopeID}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var extra fakeslack.Envelope
	if err := ws.ReadJSON(&extra); err == nil {
		t.Errorf("a retry after the ack: %+v", extra)
	}
	if got[0].EnvelopeID != first.EnvelopeID || got[1].EnvelopeID == first.EnvelopeID {
		t.Errorf("envelope ids: %q, %q (first sent %q)", got[0].EnvelopeID, got[1].EnvelopeID, first.EnvelopeID)
	}
	type meta struct {
		EventID string
		Attempt int
		Reason  string
	}
	var m []meta
	for _, e := range got {
		m = append(m, meta{e.EventID(), e.RetryAttempt, e.RetryReason})
	}
	if diff := cmp.Diff([]meta{{"EvR", 0, ""}, {"EvR", 1, "timeout"}}, m); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}

	// Without an ack every retry of the schedule comes, then none. (The
	// timed-out read broke the first socket: use a new one.)
	ws.Close()
	ws = dial(t, s)
	if !s.WaitFor(2*time.Second, func(st fakeslack.State) bool { return st.Connections == 1 && st.Hellos == 2 }) {
		t.Fatal("the first socket did not close")
	}
	s.Deliver(fakeslack.Event{ID: "EvS", User: "U1", Channel: "C1", Text: "y"})
	var attempts []int
	for range 4 {
		attempts = append(attempts, read(t, ws).RetryAttempt)
	}
	if diff := cmp.Diff([]int{0, 1, 2, 3}, attempts); diff != "" {
		t.Errorf("retry attempts (-want +got):\n%s", diff)
	}
	_ = ws.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if err := ws.ReadJSON(&extra); err == nil {
		t.Errorf("a delivery after the schedule ended: %+v", extra)
	}
}

func TestRedeliver(t *testing.T) {
	s := fakeslack.New(t)
	ws := dial(t, s)
	env, _ := s.Deliver(fakeslack.Event{ID: "EvD", User: "U1", Channel: "C1", Text: "x"})
	again, err := s.Redeliver(env, "")
	if err != nil {
		t.Fatal(err)
	}
	read(t, ws)
	got := read(t, ws)
	if got.EnvelopeID == env.EnvelopeID || got.EnvelopeID != again.EnvelopeID || got.EventID() != "EvD" ||
		got.RetryAttempt != 1 || got.RetryReason != "timeout" {
		t.Errorf("redelivered envelope: %+v (original %s)", got, env.EnvelopeID)
	}
}

func TestEventShapes(t *testing.T) {
	s := fakeslack.New(t)
	inner := func(e fakeslack.Event) map[string]any {
		var p struct {
			TeamID string         `json:"team_id"`
			Event  map[string]any `json:"event"`
		}
		if err := json.Unmarshal(s.EventEnvelope(e).Payload, &p); err != nil {
			t.Fatal(err)
		}
		return p.Event
	}
	edit := inner(fakeslack.Event{Type: "message", Subtype: "message_changed", User: "U1", Channel: "D1", Text: "dobro X"})
	if edit["user"] != nil || edit["subtype"] != "message_changed" || edit["message"].(map[string]any)["user"] != "U1" {
		t.Errorf("an edit must nest the sender: %v", edit)
	}
	bot := inner(fakeslack.Event{Type: "message", Subtype: "bot_message", BotID: "B9", Channel: "D1", Text: "hi"})
	if bot["bot_id"] != "B9" || bot["user"] != nil {
		t.Errorf("bot message: %v", bot)
	}
	foreign := inner(fakeslack.Event{User: "U9", UserTeam: "T9OTHER", Channel: "C1", Text: "x"})
	if foreign["team"] != "T9OTHER" || foreign["user_team"] != "T9OTHER" {
		t.Errorf("a user of another team: %v", foreign)
	}
	if m := inner(fakeslack.Mention("U1", "C1", "queue")); m["text"] != "<@"+fakeslack.BotUser+"> queue" || m["type"] != "app_mention" {
		t.Errorf("mention: %v", m)
	}
}

func TestButtonsRoundTrip(t *testing.T) {
	s := fakeslack.New(t)
	api := client(s, fakeslack.BotToken)
	blocks := slack.MsgOptionBlocks(
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "PAY-1 needs you", false, false), nil, nil),
		slack.NewActionBlock("act",
			slack.NewButtonBlockElement("b0", "accept PAY-1", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)).WithStyle(slack.StylePrimary),
			slack.NewButtonBlockElement("b1", "reject PAY-1", slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false)).WithStyle(slack.StyleDanger)))
	_, ts, err := api.PostMessageContext(context.Background(), "D01", blocks, slack.MsgOptionText("PAY-1 needs you", false))
	if err != nil {
		t.Fatal(err)
	}
	got := s.Buttons("D01")
	want := []fakeslack.Button{
		{Channel: "D01", MessageTS: ts, BlockID: "act", ActionID: "b0", Label: "Approve", Value: "accept PAY-1", Style: "primary"},
		{Channel: "D01", MessageTS: ts, BlockID: "act", ActionID: "b1", Label: "Reject", Value: "reject PAY-1", Style: "danger"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("buttons (-want +got):\n%s", diff)
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal(s.ClickEnvelope(fakeslack.ClickOn("U01", got[0])).Payload, &cb); err != nil {
		t.Fatal(err)
	}
	a := cb.ActionCallback.BlockActions
	if cb.User.ID != "U01" || len(a) != 1 || a[0].Value != "accept PAY-1" || a[0].ActionID != "b0" || cb.Container.MessageTs != ts {
		t.Errorf("click payload: %+v", cb)
	}
}

// TestStart checks the constructor for programs that are not tests: the
// server answers, and what it notices is kept for Errors instead of failing
// a test.
func TestStart(t *testing.T) {
	s := fakeslack.Start()
	defer s.Close()
	api := client(s, fakeslack.BotToken)
	if _, err := api.AuthTestContext(context.Background()); err != nil {
		t.Fatalf("auth.test: %v", err)
	}
	resp, err := http.Post(s.URL+"no.such.method", "application/x-www-form-urlencoded", strings.NewReader("token="+fakeslack.BotToken))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s.Close()
	errs := s.Errors()
	if len(errs) != 1 || !strings.Contains(errs[0], "no.such.method") {
		t.Errorf("Errors() = %q, want one naming no.such.method", errs)
	}
}

// chat.postMessage keeps the message's metadata; conversations.history
// returns the channel's top-level messages newest first, a page at a time,
// with their metadata only when include_all_metadata asks for it, and
// conversations.replies a thread's parent and replies oldest first.
func TestMessageMetadataAndHistory(t *testing.T) {
	s := fakeslack.New(t)
	api := client(s, fakeslack.BotToken)
	ctx := context.Background()
	meta := func(id int) slack.MsgOption {
		return slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "test_event", EventPayload: map[string]any{"n": id}})
	}
	var tss []string
	for i := range 5 {
		_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText(fmt.Sprintf("m%d", i), false), meta(i))
		if err != nil {
			t.Fatal(err)
		}
		tss = append(tss, ts)
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("reply", false), slack.MsgOptionTS(tss[1]), meta(9)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C2", slack.MsgOptionText("elsewhere", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("ephemeral", false)); err != nil {
		t.Fatal(err)
	}
	if got := s.Messages("C1")[0].Metadata; got == nil || got.EventType != "test_event" || got.EventPayload["n"] != float64(0) {
		t.Errorf("the fake kept metadata %+v", got)
	}

	type msg struct {
		Text, TS, ThreadTS string
		Replies            int
		Meta               any
	}
	summary := func(ms []slack.Message) []msg {
		var out []msg
		for _, m := range ms {
			var meta any
			if m.Metadata.EventType != "" {
				meta = m.Metadata.EventPayload["n"]
			}
			out = append(out, msg{m.Text, m.Timestamp, m.ThreadTimestamp, m.ReplyCount, meta})
		}
		return out
	}
	var got []msg
	cursor, pages := "", 0
	for {
		h, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
			ChannelID: "C1", Limit: 2, Cursor: cursor, IncludeAllMetadata: true})
		if err != nil {
			t.Fatal(err)
		}
		got, pages = append(got, summary(h.Messages)...), pages+1
		if h.HasMore != (h.ResponseMetaData.NextCursor != "") {
			t.Errorf("page %d: has_more %v with next_cursor %q", pages, h.HasMore, h.ResponseMetaData.NextCursor)
		}
		if cursor = h.ResponseMetaData.NextCursor; cursor == "" {
			break
		}
	}
	want := []msg{
		{"m4", tss[4], "", 0, float64(4)}, {"m3", tss[3], "", 0, float64(3)}, {"m2", tss[2], "", 0, float64(2)},
		{"m1", tss[1], tss[1], 1, float64(1)}, {"m0", tss[0], "", 0, float64(0)},
	}
	if diff := cmp.Diff(want, got); diff != "" || pages != 3 {
		t.Errorf("history in %d pages (-want +got):\n%s", pages, diff)
	}

	h, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "C1", Oldest: tss[2]})
	if err != nil {
		t.Fatal(err)
	}
	want = []msg{{"m4", tss[4], "", 0, nil}, {"m3", tss[3], "", 0, nil}}
	if diff := cmp.Diff(want, summary(h.Messages)); diff != "" {
		t.Errorf("history after %s without include_all_metadata (-want +got):\n%s", tss[2], diff)
	}

	replies, _, _, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
		ChannelID: "C1", Timestamp: tss[1], IncludeAllMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) != 2 || replies[1].Text != "reply" || replies[1].Metadata.EventPayload["n"] != float64(9) {
		t.Errorf("replies: %+v", summary(replies))
	}

	for _, c := range []struct {
		name string
		call func() error
		want string
	}{
		{"history without a channel", func() error {
			_, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{})
			return err
		}, "channel_not_found"},
		{"replies of no message", func() error {
			_, _, _, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: "1.000001"})
			return err
		}, "thread_not_found"},
		{"metadata without an event_type", func() error {
			_, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false), slack.MsgOptionMetadata(slack.SlackMetadata{}))
			return err
		}, "invalid_metadata_schema"},
	} {
		if got := slackError(c.call()); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
