package storage

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/dobrobot/dobrobot/commands"
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
	b = appendJSONString(b, string(e.Kind))
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
			b = appendJSONString(b, bt.Label)
			b = append(b, `,"command":`...)
			b = appendJSONString(b, bt.Command)
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
	return appendJSONString(append(b, key...), s)
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
	return appendJSONString(append(b, key...), s)
}

// appendJSONString appends s as a JSON string escaped exactly as
// encoding/json escapes it: HTML's <, > and & as \u00XX, other control
// bytes as \b, \f, \n, \r, \t or \u00XX, each invalid UTF-8 byte as
// \ufffd, and U+2028 and U+2029.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
