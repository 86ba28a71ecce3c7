package storage

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dobrobot/dobrobot/commands"
)

// decodeAudit decodes a stored audit entry. The values are what
// json.Marshal wrote for a commands.AuditEntry, and audit export, audit
// verify and every append read them, so this decodes that shape directly —
// about ten times faster than encoding/json, which dominated reading the log
// — and hands anything else (a field it does not know, a null, a number
// where a string belongs, bad JSON) to json.Unmarshal, so the result is
// always json.Unmarshal's.
func decodeAudit(v []byte, e *commands.AuditEntry) error {
	if !fastDecodeAudit(v, e) {
		*e = commands.AuditEntry{}
		return json.Unmarshal(v, e)
	}
	return nil
}

// fastDecodeAudit decodes v into e and reports whether it could.
func fastDecodeAudit(v []byte, e *commands.AuditEntry) bool {
	*e = commands.AuditEntry{}
	// One string for the whole value: its fields are substrings of it, one
	// allocation per entry instead of one per field.
	d := jsonScanner{b: v, s: string(v)}
	if !d.skip('{') {
		return false
	}
	d.ws()
	if d.peek() == '}' {
		d.i++
		d.ws()
		return d.i == len(d.b)
	}
	var seen uint16
	for {
		key, ok := d.str()
		if !ok || !d.skip(':') {
			return false
		}
		bit, dst := auditField(e, key)
		if bit == 0 || seen&bit != 0 {
			return false // a field this does not know, or twice: json.Unmarshal decides
		}
		seen |= bit
		d.ws()
		switch key {
		case "seq":
			n, ok := d.uint()
			if !ok {
				return false
			}
			e.Seq = n
		case "time":
			s, ok := d.str()
			if !ok {
				return false
			}
			// Only the form json.Marshal writes; anything else is for
			// encoding/json's stricter parser to judge.
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil || t.Format(time.RFC3339Nano) != s {
				return false
			}
			e.Time = t
		default:
			s, ok := d.str()
			if !ok {
				return false
			}
			*dst = s
		}
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
			continue
		case '}':
			d.i++
		default:
			return false
		}
		break
	}
	d.ws()
	return d.i == len(d.b)
}

// auditField returns the bit of a field of AuditEntry in the seen set and,
// for its string fields, where to put it.
func auditField(e *commands.AuditEntry, key string) (uint16, *string) {
	switch key {
	case "seq":
		return 1 << 0, nil
	case "time":
		return 1 << 1, nil
	case "actor":
		return 1 << 2, &e.Actor
	case "action":
		return 1 << 3, (*string)(&e.Action)
	case "ticket":
		return 1 << 4, &e.Ticket
	case "from":
		return 1 << 5, (*string)(&e.From)
	case "to":
		return 1 << 6, (*string)(&e.To)
	case "detail":
		return 1 << 7, &e.Detail
	case "prev_hash":
		return 1 << 8, &e.PrevHash
	case "hash":
		return 1 << 9, &e.Hash
	case "via":
		return 1 << 10, &e.Via
	case "env":
		return 1 << 11, &e.Env
	case "version":
		return 1 << 12, &e.Version
	}
	return 0, nil
}

// jsonScanner reads the few JSON tokens decodeAudit needs.
type jsonScanner struct {
	b []byte
	s string // b as a string
	i int
}

func (d *jsonScanner) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonScanner) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// skip consumes c after optional white space.
func (d *jsonScanner) skip(c byte) bool {
	d.ws()
	if d.peek() != c {
		return false
	}
	d.i++
	return true
}

// uint reads a non-negative integer without sign, fraction or exponent.
func (d *jsonScanner) uint() (uint64, bool) {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	digits := d.b[start:d.i]
	if len(digits) == 0 || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	if c := d.peek(); c == '.' || c == 'e' || c == 'E' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	return n, err == nil
}

// str reads a string, unescaping it as encoding/json does: invalid UTF-8
// and lone surrogates become U+FFFD.
func (d *jsonScanner) str() (string, bool) {
	d.ws()
	if d.peek() != '"' {
		return "", false
	}
	d.i++
	start := d.i
	// The common case: no escape, valid UTF-8, no control character.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := d.s[start:d.i]
			d.i++
			if !utf8.ValidString(s) {
				return string([]rune(s)), true
			}
			return s, true
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", false
		}
		d.i++
	}
	buf := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(buf) {
				return string([]rune(string(buf))), true
			}
			return string(buf), true
		case c < 0x20:
			return "", false
		case c != '\\':
			buf = append(buf, c)
			d.i++
			continue
		}
		// An escape.
		if d.i+1 >= len(d.b) {
			return "", false
		}
		esc := d.b[d.i+1]
		d.i += 2
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				// A pair, or a lone surrogate (U+FFFD).
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					save := d.i
					d.i += 2
					r2, ok := d.hex4()
					if !ok {
						return "", false
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						buf = utf8.AppendRune(buf, dec)
						continue
					}
					d.i = save
				}
				r = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", false
		}
	}
	return "", false
}

func (d *jsonScanner) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r, true
}
