package audit

import (
	"strconv"
	"time"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/internal/jsonstr"
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
	dst = jsonstr.Append(dst, e.Actor, false)
	dst = append(dst, `,"action":`...)
	dst = jsonstr.Append(dst, string(e.Action), false)
	dst = append(dst, `,"ticket":`...)
	dst = jsonstr.Append(dst, e.Ticket, false)
	dst = append(dst, `,"from":`...)
	dst = jsonstr.Append(dst, string(e.From), false)
	dst = append(dst, `,"to":`...)
	dst = jsonstr.Append(dst, string(e.To), false)
	dst = append(dst, `,"detail":`...)
	dst = jsonstr.Append(dst, e.Detail, false)
	dst = append(dst, `,"prev_hash":`...)
	dst = jsonstr.Append(dst, e.PrevHash, false)
	dst = append(dst, `,"hash":`...)
	dst = jsonstr.Append(dst, e.Hash, false)
	dst = append(dst, `,"via":`...)
	dst = jsonstr.Append(dst, e.Via, false)
	if e.Env != "" { // omitempty, as AuditEntry's JSON tags say
		dst = append(dst, `,"env":`...)
		dst = jsonstr.Append(dst, e.Env, false)
	}
	if e.Version != "" {
		dst = append(dst, `,"version":`...)
		dst = jsonstr.Append(dst, e.Version, false)
	}
	return append(dst, "}\n"...), true
}
