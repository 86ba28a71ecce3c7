package storage

import (
	"bytes"
	"time"
)

// auditTime reads the time of a stored audit entry without decoding the
// rest, and reports whether it could. The values json.Marshal wrote start
// {"seq":N,"time":"…": a walk of the log filtered by time (a report's
// period, audit export --since) skips the entries outside it for the cost
// of a time parse rather than a whole decode. Any other shape reports
// false, and the caller decodes the entry as before.
func auditTime(v []byte) (time.Time, bool) {
	const head, mid = `{"seq":`, `,"time":"`
	if !bytes.HasPrefix(v, []byte(head)) {
		return time.Time{}, false
	}
	i := len(head)
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if !bytes.HasPrefix(v[i:], []byte(mid)) {
		return time.Time{}, false
	}
	i += len(mid)
	j := bytes.IndexByte(v[i:], '"')
	if j < 0 || bytes.Contains(v[i+j:], []byte(`"time"`)) {
		// A second "time" key would be the one json.Unmarshal keeps
		// (json.Marshal never writes one, but a value may hold anything):
		// decode. So does a string value "time"; inside a longer string
		// its quotes are escaped.
		return time.Time{}, false
	}
	if t, ok := utcTime(v[i : i+j]); ok {
		return t, true
	}
	t, err := time.Parse(time.RFC3339Nano, string(v[i:i+j]))
	return t, err == nil
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

// outsideTimes reports whether the stored entry v is certainly outside f's
// time bounds, read from its time alone.
func outsideTimes(f timeBounds, v []byte) bool {
	if f.since.IsZero() && f.until.IsZero() {
		return false
	}
	t, ok := auditTime(v)
	return ok && ((!f.since.IsZero() && t.Before(f.since)) || (!f.until.IsZero() && !t.Before(f.until)))
}

// timeBounds are an AuditFilter's times.
type timeBounds struct{ since, until time.Time }
