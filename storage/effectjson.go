package storage

import (
	"encoding/json"
	"strconv"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/internal/jsonstr"
)

// encodeEffect returns the outbox value of e: exactly the bytes json.Marshal
// writes for it (TestEncodeEffectIsMarshal, FuzzEncodeEffect), built
// without reflection. A queue reply is a few hundred spans, and
// encoding/json walking each Span's fields by reflection was the largest
// part of writing a reply to the outbox in a burst. The release of a card
// and an audit command's export are left to encoding/json: each is one
// struct, not hundreds.
func encodeEffect(e commands.Effect) ([]byte, error) {
	b := make([]byte, 0, 128+48*len(e.Text))
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, e.ID, 10)
	b = append(b, `,"kind":`...)
	b = jsonstr.Append(b, string(e.Kind), true)
	b = appendStringField(b, `,"event":`, e.Event)
	b = appendStringField(b, `,"user":`, e.User)
	b = appendStringField(b, `,"channel":`, e.Channel)
	b = appendStringField(b, `,"via":`, string(e.Via))
	b = appendStringField(b, `,"thread":`, e.Thread)
	if e.Release != nil {
		r, err := json.Marshal(e.Release)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"release":`...)
		b = append(b, r...)
	}
	if len(e.Text) > 0 {
		b = append(b, `,"spans":[`...)
		for i, s := range e.Text {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			// Every field of a Span is omitempty: a comma goes before a
			// field only when one was written.
			n := len(b)
			b = appendSpanField(b, n, `"kind":`, string(s.Kind))
			b = appendSpanField(b, n, `"text":`, s.Text)
			b = appendSpanField(b, n, `"id":`, s.ID)
			b = appendSpanField(b, n, `"url":`, s.URL)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendStringField(b, `,"text":`, e.Legacy)
	if len(e.Buttons) > 0 {
		b = append(b, `,"buttons":[`...)
		for i, bt := range e.Buttons {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"label":`...)
			b = jsonstr.Append(b, bt.Label, true)
			b = append(b, `,"command":`...)
			b = jsonstr.Append(b, bt.Command, true)
			b = appendStringField(b, `,"style":`, bt.Style)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if e.Export != nil {
		// An audit command's file: rare, and one small struct.
		x, err := json.Marshal(e.Export)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"export":`...)
		b = append(b, x...)
	}
	return append(b, '}'), nil
}

// appendStringField appends an omitempty string field, key included.
func appendStringField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return jsonstr.Append(append(b, key...), s, true)
}

// appendSpanField appends an omitempty string field of an object begun at
// start, with the comma that separates it from a field before it.
func appendSpanField(b []byte, start int, key, s string) []byte {
	if s == "" {
		return b
	}
	if len(b) > start {
		b = append(b, ',')
	}
	return jsonstr.Append(append(b, key...), s, true)
}
