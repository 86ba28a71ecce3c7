package bot

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/slack-go/slack"

	"github.com/dobrobot/dobrobot/commands"
)

// A leader killed after Slack took a message and before the outbox recorded
// it delivered leaves it in the outbox, and chat.postMessage has no
// idempotency key. So each message the sender posts carries its outbox ID in
// Slack's message metadata (invisible to people), and a new term looks for
// the one unsure effect of each lane (scan) in its channel before sending it
// again. Ephemeral replies cannot be read back and are sent again, but a
// term sends those of its backlog one at a time (runLane), so at most one
// was on the wire at a fault in a catch-up; card updates are idempotent.

// outboxEventType is the event_type of the metadata of every message the
// sender posts.
const outboxEventType = "dobrobot_outbox"

// historyPage is how many of a channel's latest messages a new term reads
// to find a message of a lane's: it was that lane's last post before the
// previous term ended, seconds ago, so only a burst of more messages than
// this in the channel since hides it.
const historyPage = 200

// outboxMetadata is the metadata of the message posted for outbox effect
// from: its ID and the event that caused it (outbox IDs start again in
// another database, or in one restored from a backup; event IDs do not)
// and, for a release's card, the release's ID and ticket.
func outboxMetadata(from commands.Effect, card *commands.Release) slack.MsgOption {
	payload := map[string]any{"outbox_id": from.ID}
	if from.Event != "" {
		payload["event"] = from.Event
	}
	if card != nil {
		payload["release_id"], payload["ticket"] = card.ID, card.Ticket
	}
	return slack.MsgOptionMetadata(slack.SlackMetadata{EventType: outboxEventType, EventPayload: payload})
}

// metaText returns the string under key in a message's dobrobot metadata.
func metaText(m slack.Message, key string) string {
	if m.Metadata.EventType != outboxEventType {
		return ""
	}
	v, _ := m.Metadata.EventPayload[key].(string)
	return v
}

// postedFor reports whether m is the message posted for outbox effect e.
func postedFor(m slack.Message, e commands.Effect) bool {
	return metaID(m, "outbox_id") == e.ID && metaText(m, "event") == e.Event
}

// metaID returns the number under key in a message's dobrobot metadata, 0
// if it has none.
func metaID(m slack.Message, key string) uint64 {
	if m.Metadata.EventType != outboxEventType {
		return 0
	}
	switch v := m.Metadata.EventPayload[key].(type) {
	case float64:
		if v > 0 && v < 1<<53 {
			return uint64(v)
		}
	case json.Number:
		n, _ := strconv.ParseUint(v.String(), 10, 64)
		return n
	case string:
		n, _ := strconv.ParseUint(v, 10, 64)
		return n
	}
	return 0
}

// posted reports whether the message of e, an effect a previous term may
// have sent (scan), is already in Slack. It also records the card of e's
// release if a previous term posted it and did not record it. If Slack
// cannot be read (a missing scope, say), it logs why and reports false: the
// message is sent, maybe a second time, rather than lost.
func (s *sender) posted(ctx context.Context, key string, e commands.Effect) bool {
	log := s.log.With().Uint64("effect", e.ID).Str("kind", string(e.Kind)).Logger()
	wait := s.retryPolicy()
	for attempt := 1; ; attempt++ {
		found, err := s.lookUp(ctx, key, e)
		if err == nil {
			if found {
				log.Info().Msg("the last term sent this message and did not record it; not sending it again")
			}
			return found
		}
		if ctx.Err() != nil {
			return false
		}
		switch classify(err) {
		case errRateLimited:
			continue // call waits out the Retry-After: a read back is worth it
		case errTransient:
			if attempt < 4 && commands.Sleep(ctx, wait.NextBackOff()) {
				continue
			}
		}
		log.Warn().Err(err).Msg("could not read Slack back to see whether the last term sent this message; sending it, maybe a second time")
		return false
	}
}

// lookUp is one attempt of posted.
func (s *sender) lookUp(ctx context.Context, key string, e commands.Effect) (bool, error) {
	switch e.Kind {
	case commands.EffectPost:
		return s.inHistory(ctx, key, s.channel, e)
	case commands.EffectDM:
		return s.inDM(ctx, key, e)
	case commands.EffectReply:
		switch {
		case e.Channel == "" || e.Via == commands.ViaConsole:
			return s.inDM(ctx, key, e)
		case e.Via == commands.ViaDM:
			return s.inHistory(ctx, key, e.Channel, e)
		}
		return false, nil // ephemeral: Slack keeps no history of it
	case commands.EffectCard, commands.EffectThread:
		if e.Release == nil {
			return false, nil
		}
		rel, err := s.latest(ctx, e.Release)
		if err != nil {
			return false, err
		}
		if rel.Card == "" {
			ts, err := s.findCard(ctx, key, rel)
			if err != nil || ts == "" {
				return false, err // no card: nor a thread under it
			}
			if err := s.saveCard(ctx, rel.ID, ts); err != nil {
				return false, err
			}
			if e.Kind == commands.EffectCard {
				return true, nil
			}
			rel.Card = ts
		}
		if e.Kind == commands.EffectCard {
			return false, nil // an update of the card: sending it again changes nothing
		}
		return s.inThread(ctx, key, rel.Card, e)
	}
	return false, nil
}

// inDM looks for e's message in the bot's DM with e.User.
func (s *sender) inDM(ctx context.Context, key string, e commands.Effect) (bool, error) {
	ch, err := s.dmChannel(ctx, key, e.User)
	if err != nil {
		return false, err
	}
	return s.inHistory(ctx, key, ch, e)
}

// findCard returns the ts of the newest card of rel in the release channel,
// or "" if there is none among the latest messages.
func (s *sender) findCard(ctx context.Context, key string, rel commands.Release) (string, error) {
	msgs, err := s.history(ctx, key, s.channel)
	for _, m := range msgs { // newest first
		if metaID(m, "release_id") == rel.ID && metaText(m, "ticket") == rel.Ticket {
			return m.Timestamp, nil
		}
	}
	return "", err
}

// inHistory reports whether the message of e is among the latest messages
// of channel.
func (s *sender) inHistory(ctx context.Context, key, channel string, e commands.Effect) (bool, error) {
	msgs, err := s.history(ctx, key, channel)
	for _, m := range msgs {
		if postedFor(m, e) {
			return true, nil
		}
	}
	return false, err
}

// history reads the latest messages of channel with their metadata.
func (s *sender) history(ctx context.Context, key, channel string) ([]slack.Message, error) {
	var msgs []slack.Message
	err := s.call(ctx, key, "conversations.history", false, func(ctx context.Context) error {
		h, err := s.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
			ChannelID: channel, Limit: historyPage, IncludeAllMetadata: true})
		if err == nil {
			msgs = h.Messages
		}
		return err
	})
	return msgs, err
}

// inThread reports whether the reply of outbox effect e is in the thread
// of the card at ts. A thread is read oldest first, so all of it is read, a
// page at a time.
func (s *sender) inThread(ctx context.Context, key, ts string, e commands.Effect) (bool, error) {
	cursor := ""
	for range 20 {
		var (
			msgs []slack.Message
			next string
		)
		err := s.call(ctx, key, "conversations.replies", false, func(ctx context.Context) error {
			var err error
			msgs, _, next, err = s.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
				ChannelID: s.channel, Timestamp: ts, Cursor: cursor, Limit: 1000, IncludeAllMetadata: true})
			return err
		})
		if slackCode(err) == "thread_not_found" {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		for _, m := range msgs {
			if postedFor(m, e) && m.Timestamp != ts {
				return true, nil
			}
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	return false, nil
}
