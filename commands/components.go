package commands

import (
	"regexp"
	"slices"
	"strings"
)

// A component has two rules, kept together here. ValidComponent says which
// names are components: what a hook accepts (commands/hook refuses anything
// else), what lock and unlock and "dobro … on" take, and what the
// configuration may list. ComponentName is the one rule that turns any
// other name (a tracker's) into such a name; a name it returns is valid and
// normalises to itself, but not every valid name is one it returns ("a--b"
// is valid; ComponentName makes it "a-b"), so typed names are checked with
// ValidComponent, never rewritten.

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

// ValidComponent reports whether name is a component name: a lower-case
// letter or digit, then up to 63 of those or . _ -.
func ValidComponent(name string) bool { return componentName.MatchString(name) }

// DefaultEnv is the environment of a configuration without environments,
// and of every release written before they existed.
const DefaultEnv = "production"

// ValidEnv reports whether name is an environment name: the component rule
// (a lower-case letter or digit, then up to 63 of those or . _ -), so that
// it is safe in a hook's environment, a namespace or a file name.
func ValidEnv(name string) bool { return componentName.MatchString(name) }

var buildName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)

// ValidBuild reports whether s is a version a release may carry (a build ID,
// tag or commit): a letter or digit, then up to 127 letters, digits or
// . _ + -. Nothing else, so that a hook may put it in a command line, an
// image tag or a path without quoting ("v2.4.0", "1.4.2+build.7",
// "main-4f2a9c1").
func ValidBuild(s string) bool { return buildName.MatchString(s) }

// componentList reads dobro's "on a,b": lower-cased, each once.
func componentList(s string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		p := strings.ToLower(strings.TrimSpace(part))
		if p == "" {
			continue
		}
		if !ValidComponent(p) {
			return nil, Errorf(EINVALID, "%s is not a component name (letters, digits, . _ -): write dobro PAY-123 on backend,payments.", quoteArg(part))
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, Errorf(EINVALID, "on needs components: dobro PAY-123 on backend,payments.")
	}
	return out, nil
}

// releaseComponents is what a new release of ticket t in env deploys and
// locks: the components named (dobro … on, a build's), or else the
// ticket's; ticketComps is what the ticket said when others were named
// (for the approver to see the difference), and locks the lockable ones
// among comps in env.
func releaseComponents(t Ticket, named []string, env EnvPolicy) (comps, ticketComps, locks []string, chosen bool) {
	for _, tc := range t.Components {
		if n := ComponentName(tc); n != "" && !slices.Contains(ticketComps, n) {
			ticketComps = append(ticketComps, n)
		}
	}
	comps, chosen = named, len(named) > 0
	if !chosen {
		comps, ticketComps = ticketComps, nil
	}
	for _, comp := range comps {
		for _, known := range env.Components {
			if strings.EqualFold(comp, known) && !slices.Contains(locks, known) {
				locks = append(locks, known)
			}
		}
	}
	return comps, ticketComps, locks, chosen
}
