package intake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-json-experiment/json"

	"github.com/dobrobot/dobrobot/commands"
)

// The headers that sign a POST /builds.
const (
	TimestampHeader = "X-Dobrobot-Timestamp"
	SignatureHeader = "X-Dobrobot-Signature"
)

// Sign returns the two header values that sign body at time ts with secret:
// the Unix seconds, and "sha256=" and the hex HMAC-SHA256 of "<ts>.<body>".
func Sign(secret string, ts time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	return timestamp, "sha256=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// verify checks the signature headers of a /builds delivery against body:
// "" when they are good, else why not (for the log and the 401's body; it
// never includes what was sent).
func verify(secret string, now time.Time, timestamp, signature string, body []byte) string {
	if timestamp == "" || signature == "" {
		return "missing " + TimestampHeader + " or " + SignatureHeader
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return TimestampHeader + " is not Unix seconds"
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Window || d < -Window {
		return TimestampHeader + " is more than 5 minutes away from the intake's clock"
	}
	hexSum, ok := strings.CutPrefix(signature, "sha256=")
	got, err := hex.DecodeString(hexSum)
	if !ok || err != nil {
		return SignatureHeader + " is not sha256=<hex>"
	}
	if !hmac.Equal(got, mac(secret, timestamp, body)) { // constant time
		return SignatureHeader + " does not match the body"
	}
	return ""
}

// Report is the JSON body of POST /builds.
type Report struct {
	ID          string   `json:"id"`
	Ticket      string   `json:"ticket"`
	Components  []string `json:"components"`
	Version     string   `json:"version"`
	Commit      string   `json:"commit"`
	Branch      string   `json:"branch"`
	Environment string   `json:"environment"`
	Status      string   `json:"status"`
	URL         string   `json:"url"`
}

// maxField bounds each string of a report: it goes on a card and into the
// audit log, and no build ID, branch or URL needs more.
const maxField = 1024

// DecodeReport parses and checks a /builds body: strict JSON (an unknown
// field is a typo that would otherwise be ignored, a second value is
// refused, and so is a name given twice), `id` and `status` required, the status one of success, failure,
// pending, and no control characters in a field. The error says what to
// fix.
func DecodeReport(body []byte) (Report, error) {
	var rep Report
	// JSON v2: names match exactly (encoding/json would take "ID" for
	// "id"), a name given twice, an unknown name, invalid UTF-8 and a
	// second value are all errors.
	if err := json.Unmarshal(body, &rep, json.RejectUnknownMembers(true)); err != nil {
		return Report{}, fmt.Errorf("the body is not a build report (JSON object with id, status, ...): %w", err)
	}
	if strings.TrimSpace(rep.ID) == "" {
		return Report{}, errors.New(`"id" is required: the CI's build ID`)
	}
	switch commands.BuildStatus(rep.Status) {
	case commands.BuildSuccess, commands.BuildFailure, commands.BuildPending:
	case "":
		return Report{}, errors.New(`"status" is required: success, failure or pending`)
	default:
		return Report{}, fmt.Errorf(`"status" is %q: use success, failure or pending`, rep.Status)
	}
	fields := []struct{ name, v string }{
		{"id", rep.ID}, {"ticket", rep.Ticket}, {"version", rep.Version}, {"commit", rep.Commit},
		{"branch", rep.Branch}, {"environment", rep.Environment}, {"url", rep.URL},
	}
	for i, c := range rep.Components {
		fields = append(fields, struct{ name, v string }{fmt.Sprintf("components[%d]", i), c})
	}
	for _, f := range fields {
		if len(f.v) > maxField {
			return Report{}, fmt.Errorf("%q is longer than %d bytes", f.name, maxField)
		}
		if strings.ContainsFunc(f.v, unicode.IsControl) {
			return Report{}, fmt.Errorf("%q contains a control character", f.name)
		}
	}
	return rep, nil
}

// bodyHash is the lowercase hex SHA-256 of a raw body.
func bodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// builds serves POST /builds: verified before it is decoded.
func (h *handler) builds(w http.ResponseWriter, r *http.Request) {
	if h.o.Secret == "" {
		writeJSON(w, http.StatusNotFound, reply{Error: "/builds is off: intake.secret is not set"})
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	now := h.now()
	if why := verify(h.o.Secret, now, r.Header.Get(TimestampHeader), r.Header.Get(SignatureHeader), body); why != "" {
		h.refuse(w, r, http.StatusUnauthorized, why)
		return
	}
	rep, err := DecodeReport(body)
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ticket := strings.TrimSpace(rep.Ticket)
	if ticket == "" {
		ticket = h.ticket.FindString(rep.Branch)
	}
	h.ask(w, r, commands.Build{
		Delivery:   "builds:" + rep.ID,
		BodyHash:   bodyHash(body),
		Source:     "builds",
		ID:         rep.ID,
		Ticket:     ticket,
		Env:        rep.Environment,
		Components: rep.Components,
		Version:    rep.Version,
		Commit:     rep.Commit,
		Branch:     rep.Branch,
		URL:        rep.URL,
		Status:     commands.BuildStatus(rep.Status),
		Received:   now,
	})
}
