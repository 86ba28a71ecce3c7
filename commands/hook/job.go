package hook

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dobrobot/dobrobot/commands"
)

// maxName is the longest component, user ID or attempt ID a job may carry.
const maxName = 128

// checkJob refuses a job whose fields could surprise a hook: the ticket must be
// exactly a ticket key and components and users must be plain names, because
// hook authors write shell scripts that interpolate them.
func checkJob(job commands.Job) error {
	if !commands.ValidTicket(job.Ticket) {
		return commands.Errorf(commands.EINVALID, "refused to run the %s hook: ticket %s is not a ticket key like PAY-123", phaseName(job.Phase), quote(job.Ticket))
	}
	switch job.Phase {
	case commands.PhaseStart, commands.PhaseFinish, commands.PhaseCancel:
	default:
		return commands.Errorf(commands.EINVALID, "refused to run a hook for %s: unknown phase %s", job.Ticket, quote(string(job.Phase)))
	}
	if job.Env != "" && !commands.ValidEnv(job.Env) {
		return commands.Errorf(commands.EINVALID, "refused to run the %s hook for %s: environment %s is not a lower-case name of letters, digits, '.', '_' and '-'", job.Phase, job.Ticket, quote(job.Env))
	}
	if job.Build != "" && !commands.ValidBuild(job.Build) {
		return commands.Errorf(commands.EINVALID, "refused to run the %s hook for %s: version %s may only have letters, digits, '.', '_', '+' and '-', and start with a letter or digit", job.Phase, job.Ticket, quote(job.Build))
	}
	for _, c := range job.Components {
		if !plainName(c) {
			return commands.Errorf(commands.EINVALID, "refused to run the %s hook for %s: component %s may only have letters, digits, '.', '_' and '-', and start with a letter or digit", job.Phase, job.Ticket, quote(c))
		}
	}
	if !plainName(job.Requester) {
		return commands.Errorf(commands.EINVALID, "refused to run the %s hook for %s: requester %s may only have letters, digits, '.', '_' and '-', and start with a letter or digit", job.Phase, job.Ticket, quote(job.Requester))
	}
	if job.Admin != "" && !plainName(job.Admin) {
		return commands.Errorf(commands.EINVALID, "refused to run the %s hook for %s: admin %s may only have letters, digits, '.', '_' and '-', and start with a letter or digit", job.Phase, job.Ticket, quote(job.Admin))
	}
	if job.Attempt != "" && !plainName(job.Attempt) {
		return commands.Errorf(commands.EINVALID, "refused to run the %s hook for %s: attempt ID %s may only have letters, digits, '.', '_' and '-', and start with a letter or digit", job.Phase, job.Ticket, quote(job.Attempt))
	}
	return nil
}

// plainName reports whether s is a non-empty, short name of ASCII letters,
// digits, '.', '_' and '-' that starts with a letter or digit, so that it
// cannot pass for an option ("--help") or a path ("../x").
func plainName(s string) bool {
	if s == "" || len(s) > maxName || s[0] == '.' || s[0] == '_' || s[0] == '-' {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// envName reports whether s is a portable environment variable name.
func envName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func phaseName(p commands.Phase) string {
	if plainName(string(p)) {
		return string(p)
	}
	return "unknown"
}

// quote returns s quoted with Go escapes (so control characters, NUL and
// bidirectional overrides are visible) and cut to a readable length.
func quote(s string) string {
	const max = 40
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// duration formats d for people: "30m", "1h30m", "2m5s", "1.5s", "300ms".
func duration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		d = d.Round(time.Second)
	case d >= time.Second:
		d = d.Round(100 * time.Millisecond)
	default:
		d = d.Round(time.Millisecond)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// positiveOr returns v when it is positive, else def (an unset option).
func positiveOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// envOf is the job's environment, DefaultEnv when the job names none.
func envOf(job commands.Job) string {
	if job.Env == "" {
		return commands.DefaultEnv
	}
	return job.Env
}
