package commands

import "errors"

// Error codes. A code says what kind of failure it is; the message says what
// happened and what to do, in words a person can act on.
const (
	EINVALID     = "invalid"     // bad input: usage, malformed ticket, unknown component
	ENOTFOUND    = "not_found"   // no such release or ticket (or not visible)
	EFORBIDDEN   = "forbidden"   // the actor lacks the role, or approves their own release
	ECONFLICT    = "conflict"    // the state or a lock does not allow it now
	EUNAVAILABLE = "unavailable" // a dependency (tracker, database) cannot be reached
	EINTERNAL    = "internal"    // a bug or an unexpected failure; details only in the log
)

// Error is the core's error: a code and a message for the person who asked.
// Text is the message as a chat adapter shows it; Message is the same in
// plain words (Text.String), for logs and the audit log. An Error made
// without a Text shows its Message.
type Error struct {
	Code    string
	Message string
	Text    Text
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the code and a formatted message. Like the
// core's own texts, an argument may be a Span or a Text (a person, a
// ticket); any other is formatted with its verb.
func Errorf(code, format string, args ...any) *Error {
	t := say(format, args...)
	return &Error{Code: code, Message: t.String(), Text: t}
}

// text is what a chat adapter shows of e.
func (e *Error) text() Text {
	if e.Text != nil {
		return e.Text
	}
	return Text{Plain(e.Message)}
}

// ErrorCode returns the code of err: its *Error's, or EINTERNAL for any other
// non-nil error, or "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns what a user may be told of err: its *Error's message,
// or "internal error" for any other error, whose details belong in the log only.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
