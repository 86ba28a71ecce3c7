package intake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/dobrobot/dobrobot/commands"
)

// reply is the body of every answer: the release and its state for a
// delivery that was taken, or the reason it was not.
type reply struct {
	Release uint64         `json:"release,omitempty"`
	State   commands.State `json:"state,omitempty"`
	Error   string         `json:"error,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, r reply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(r) // the client may be gone; the delivery is decided either way
}

// refuse answers a delivery that never reaches the core, and logs why: the
// reason and where it came from, never a header value or the body.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, code int, reason string) {
	h.o.Log.Warn().Str("path", r.URL.Path).Str("remote", r.RemoteAddr).Int("status", code).Str("reason", reason).
		Msg("intake: delivery refused")
	writeJSON(w, code, reply{Error: reason})
}

// readBody reads at most MaxBody bytes of r's body. ok is false when it
// answered: 413 over the limit, 400 when the body could not be read (a
// client too slow for the server's read timeout is cut off here).
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.refuse(w, r, http.StatusRequestEntityTooLarge, "the body is over 1 MiB")
		return nil, false
	case err != nil:
		h.refuse(w, r, http.StatusBadRequest, "the body could not be read: "+err.Error())
		return nil, false
	}
	return body, true
}

// ask hands b to the core and answers what it decides: 202 for a change,
// the first answer again for a delivery seen before (200 where the first
// was taken, its 4xx where it was refused), 422 and 400 with the reason,
// 503 with Retry-After while the core cannot take it, 500 for anything
// else (whose details go to the log only).
func (h *handler) ask(w http.ResponseWriter, r *http.Request, b commands.Build) {
	// The client going away must not cut the core off halfway: the delivery
	// is decided (and stored) or not, and a retry gets the same answer.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.timeout)
	defer cancel()
	a, err := h.o.Service.Build(ctx, b)
	log := h.o.Log.With().Str("delivery", b.Delivery).Str("ticket", b.Ticket).Str("status", string(b.Status)).Logger()
	switch code := commands.ErrorCode(err); {
	case code == commands.EUNAVAILABLE:
		log.Warn().Err(err).Msg("intake: the core cannot take the delivery now; CI is asked to retry")
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
		writeJSON(w, http.StatusServiceUnavailable, reply{Error: commands.ErrorMessage(err)})
		return
	case err != nil:
		log.Error().Err(err).Msg("intake: the core failed on a delivery")
		writeJSON(w, http.StatusInternalServerError, reply{Error: "internal error"})
		return
	}
	code, body := answer(a)
	log.Info().Int("answer", code).Uint64("release", body.Release).Str("outcome", string(a.Outcome)).Msg("intake: delivery answered")
	writeJSON(w, code, body)
}

// answer maps the core's answer to an HTTP status and body.
func answer(a commands.BuildAnswer) (int, reply) {
	switch a.Outcome {
	case commands.BuildChanged:
		return http.StatusAccepted, reply{Release: a.Release, State: a.State}
	case commands.BuildSeen:
		first := a
		if a.First != nil {
			first = *a.First
		}
		switch first.Outcome {
		case commands.BuildRefused, commands.BuildInvalid:
			return answer(first)
		}
		if first.Release == 0 && a.Release != 0 {
			first = a
		}
		return http.StatusOK, reply{Release: first.Release, State: first.State}
	case commands.BuildRefused:
		return http.StatusUnprocessableEntity, reply{Error: a.Reason}
	case commands.BuildInvalid:
		return http.StatusBadRequest, reply{Error: a.Reason}
	}
	return http.StatusInternalServerError, reply{Error: "internal error: the core answered " + strconv.Quote(string(a.Outcome))}
}
