package storage

import (
	"bytes"
	"slices"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// peekAudit reads the time and the action of a stored audit entry without
// decoding the rest, and reports whether it could. The values json.Marshal
// wrote start {"seq":N,"time":"…","actor":"…","action":"…": a walk of the
// log filtered by time or action (a report's period, audit export --since)
// skips the entries outside the filter for the cost of this peek rather
// than a whole decode. Any other shape reports false, and the caller
// decodes the entry as before.
func peekAudit(v []byte) (time.Time, []byte, bool) {
	const head, mid, act = `{"seq":`, `,"time":"`, `,"action":"`
	if !bytes.HasPrefix(v, []byte(head)) {
		return time.Time{}, nil, false
	}
	i := len(head)
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if !bytes.HasPrefix(v[i:], []byte(mid)) {
		return time.Time{}, nil, false
	}
	i += len(mid)
	j := bytes.IndexByte(v[i:], '"')
	if j < 0 {
		return time.Time{}, nil, false
	}
	t, ok := utcTime(v[i : i+j])
	if !ok {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, string(v[i:i+j])); err != nil {
			return time.Time{}, nil, false
		}
	}
	// The actor's string cannot hold ,"action":" unescaped: its first
	// occurrence is the key.
	rest := v[i+j:]
	k := bytes.Index(rest, []byte(act))
	if k < 0 {
		return time.Time{}, nil, false
	}
	a := rest[k+len(act):]
	end := bytes.IndexByte(a, '"')
	if end < 0 || !plainName(a[:end]) {
		return time.Time{}, nil, false
	}
	// A second "time" or "action" key would be the one json.Unmarshal
	// keeps (json.Marshal never writes one, but a value may hold anything,
	// and such an entry verifies): decode. Inside a string value their
	// quotes would be escaped, so this never misses a key.
	if bytes.Contains(rest, []byte(`"time":`)) || bytes.Contains(a[end:], []byte(`"action":`)) {
		return time.Time{}, nil, false
	}
	return t, a[:end], true
}

// utcTime parses the form Seal writes, 2006-01-02T15:04:05[.fraction]Z,
// without allocating; anything else reports false (time.Parse decides).
func utcTime(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		n, ok := num(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nsec = n
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // 2026-02-30 is not a date: let time.Parse refuse it
		return time.Time{}, false
	}
	return t, true
}

// outsideFilter reports whether the stored entry v is certainly outside
// f's times or actions, read from its peek alone. An entry it cannot peek
// at is never outside: the caller decodes it and applies f.Match.
func outsideFilter(f commands.AuditFilter, v []byte) bool {
	if f.Since.IsZero() && f.Until.IsZero() && len(f.Actions) == 0 {
		return false
	}
	t, a, ok := peekAudit(v)
	return ok && ((!f.Since.IsZero() && t.Before(f.Since)) || (!f.Until.IsZero() && !t.Before(f.Until)) ||
		(len(f.Actions) > 0 && !slices.ContainsFunc(f.Actions, func(x commands.Action) bool { return string(x) == string(a) })))
}

// plainName reports whether b is an action's name as the core writes them
// (lower-case letters and _): one the decoder reads as it is, with no
// escape or byte it would replace.
func plainName(b []byte) bool {
	for _, c := range b {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}
