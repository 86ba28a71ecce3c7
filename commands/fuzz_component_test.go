package commands_test

import (
	"regexp"
	"testing"

	"github.com/dobrobot/dobrobot/commands"
)

// hookName is what a hook accepts as a component (commands/hook refuses
// anything else, and the release could then never run a hook).
var hookName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// FuzzComponentName: whatever a tracker calls a component, its name is empty
// or a plain name a hook accepts and Parse reads back, and normalising it
// again changes nothing.
func FuzzComponentName(f *testing.F) {
	for _, s := range []string{"Payments API", "../../etc/passwd", "--help", "-o/tmp/x", "$(touch x)", "a;b|c&&d",
		"..", "_x", "\u202eRTL", "Ünïcode", "x\x00y", "a--b", ".hidden", "a/.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := commands.ComponentName(s)
		if c == "" {
			return
		}
		if !hookName.MatchString(c) {
			t.Fatalf("ComponentName(%q) = %q: not a plain name", s, c)
		}
		if again := commands.ComponentName(c); again != c {
			t.Fatalf("ComponentName(%q) = %q, but normalising that gives %q", s, c, again)
		}
		cmd, err := commands.Parse("lock " + c)
		if err != nil || cmd.Component != c {
			t.Fatalf("lock %s parses as %+v, %v", c, cmd, err)
		}
	})
}
