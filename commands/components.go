package commands

import (
	"regexp"
	"strings"
)

// ComponentName turns a tracker's component name into the form used for
// locks and hooks: lower case, runs of other characters as one "-", at most
// 64 bytes ("Payments API" → "payments-api"). It returns "" for a name with
// no letter or digit.
func ComponentName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= 63 {
			break
		}
	}
	// A name must start with a letter or digit: "../x" must not become
	// "-..-x", which a hook would take for an option.
	return strings.TrimLeft(b.String(), "-._")
}

var componentName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
