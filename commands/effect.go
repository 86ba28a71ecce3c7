package commands

import "time"

// Via says how a message reached the bot.
type Via string

// The ways a message reaches the bot.
const (
	ViaMention Via = "mention" // @dobrobot in the release channel
	ViaDM      Via = "dm"      // a direct message to the bot
	ViaButton  Via = "button"  // a click on one of the bot's buttons
	ViaConsole Via = "console" // the terminal console
	// ViaSlash is a slash command (/dobro TEXT) typed outside a DM: the
	// channel it was typed in says nothing of who may request releases,
	// and the answer is shown only to its sender.
	ViaSlash Via = "slash"
)

// Message is a command as a chat adapter received it, with the bot's mention
// and chat markup already removed from Text.
type Message struct {
	EventID string    `json:"event_id"` // unique per event; redeliveries repeat it
	Team    string    `json:"team,omitempty"`
	User    string    `json:"user"` // the sender's ID, never a display name
	Channel string    `json:"channel,omitempty"`
	Thread  string    `json:"thread,omitempty"`
	Text    string    `json:"text"`
	Via     Via       `json:"via"`
	Time    time.Time `json:"time"`
}

// EffectKind says what an effect does.
type EffectKind string

// The kinds of effect.
const (
	// EffectReply answers only the person who asked (User), where they
	// asked (Channel, Via): ephemeral in a channel, or in the DM. With no
	// Channel (a hook's result, reported later) it goes by DM.
	EffectReply EffectKind = "reply"
	// EffectCard posts the release's card in the release channel, or updates
	// it in place if it was posted before. Release is the snapshot to show.
	EffectCard EffectKind = "card"
	// EffectThread posts Text in the thread of the release's card.
	EffectThread EffectKind = "thread"
	// EffectDM sends Text (and Buttons) to User by direct message.
	EffectDM EffectKind = "dm"
	// EffectPost posts Text as a message of its own in the release
	// channel: no card, no thread, no buttons (the audit checkpoints).
	EffectPost EffectKind = "post"
)

// Effect is something to tell someone, decided by the Service and delivered
// by a chat adapter after the change that caused it was committed. Text is
// structured (see Text): each adapter renders it in its own markup.
type Effect struct {
	ID      uint64     `json:"id"` // outbox ID, assigned by Tx.Emit
	Kind    EffectKind `json:"kind"`
	Event   string     `json:"event,omitempty"` // the event that caused it, for logs
	User    string     `json:"user,omitempty"`
	Channel string     `json:"channel,omitempty"`
	Via     Via        `json:"via,omitempty"`
	Thread  string     `json:"thread,omitempty"` // reply: the thread the asker wrote in
	Release *Release   `json:"release,omitempty"`
	Text    Text       `json:"spans,omitempty"`
	// Legacy is the text of an effect written by a version before Text was
	// structured (under its old JSON key), which may still be in the outbox
	// at an upgrade: already in the markup of the chat adapter of that
	// time, which delivers it as it is. The core never writes it.
	Legacy  string   `json:"text,omitempty"`
	Buttons []Button `json:"buttons,omitempty"`
	// Export is the audit export an EffectFile sends.
	Export *AuditExport `json:"export,omitempty"`
}

// Button is an action offered with a message. A click is handled exactly like
// the clicker typing Command, with the same authorisation.
type Button struct {
	Label   string `json:"label"`
	Command string `json:"command"` // e.g. "accept PAY-1"
	Style   string `json:"style,omitempty"`
}
