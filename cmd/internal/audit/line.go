package audit

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dobrobot/dobrobot/commands"
)

// AppendLine appends e as one JSON line, byte for byte what a
// json.Encoder with SetEscapeHTML(false) writes for it, without its
// reflection (which was a third of audit export's time). It reports false,
// appending nothing, for an entry encoding/json refuses (a year outside
// 0…9999), so the caller can let encoding/json say why.
func AppendLine(dst []byte, e commands.AuditEntry) ([]byte, bool) {
	if y := e.Time.Year(); y < 0 || y > 9999 {
		return dst, false
	}
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","actor":`...)
	dst = appendJSONString(dst, e.Actor)
	dst = append(dst, `,"action":`...)
	dst = appendJSONString(dst, string(e.Action))
	dst = append(dst, `,"ticket":`...)
	dst = appendJSONString(dst, e.Ticket)
	dst = append(dst, `,"from":`...)
	dst = appendJSONString(dst, string(e.From))
	dst = append(dst, `,"to":`...)
	dst = appendJSONString(dst, string(e.To))
	dst = append(dst, `,"detail":`...)
	dst = appendJSONString(dst, e.Detail)
	dst = append(dst, `,"prev_hash":`...)
	dst = appendJSONString(dst, e.PrevHash)
	dst = append(dst, `,"hash":`...)
	dst = appendJSONString(dst, e.Hash)
	dst = append(dst, `,"via":`...)
	dst = appendJSONString(dst, e.Via)
	if e.Env != "" { // omitempty, as AuditEntry's JSON tags say
		dst = append(dst, `,"env":`...)
		dst = appendJSONString(dst, e.Env)
	}
	if e.Version != "" {
		dst = append(dst, `,"version":`...)
		dst = appendJSONString(dst, e.Version)
	}
	return append(dst, "}\n"...), true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does without HTML
// escaping: \" \\ \b \f \n \r \t, other control characters as \u00XX,
// invalid UTF-8 as \ufffd, and U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
