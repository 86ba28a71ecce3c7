package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/hook"
)

// TestCookbookBlocksAreConfiguration loads every configuration block of
// docs/hooks-cookbook.md as dobrobot loads a configuration file (unknown keys
// refused) and builds its hooks as run does: each must load without a
// problem and give an exec hook per configured phase. examples/hooks runs
// the scripts the blocks name.
func TestCookbookBlocksAreConfiguration(t *testing.T) {
	page, err := os.ReadFile("../../docs/hooks-cookbook.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?ms)^```yaml\n(.*?)^```").FindAllSubmatch(page, -1)
	n := 0
	for _, b := range blocks {
		if !strings.HasPrefix(string(b[1]), "hooks:") {
			continue
		}
		n++
		c, err := parseConfig(b[1], func(string) (string, bool) { return "", false })
		if err != nil {
			t.Errorf("block %d does not load: %v\n%s", n, err, b[1])
			continue
		}
		hooks, _, problems := (&app{}).buildHooks(c)
		if len(problems) > 0 {
			t.Errorf("block %d: %s\n%s", n, strings.Join(problems, "; "), b[1])
			continue
		}
		for phase, e := range map[commands.Phase]commands.Executor{commands.PhaseStart: hooks.Start, commands.PhaseFinish: hooks.Finish, commands.PhaseCancel: hooks.Cancel} {
			if e == nil {
				continue
			}
			x, ok := e.(*hook.Exec)
			if !ok {
				t.Errorf("block %d: the %s hook is a %T, want an exec hook", n, phase, e)
				continue
			}
			if !strings.HasPrefix(x.Argv[0], "/usr/local/lib/dobrobot/hooks/") {
				t.Errorf("block %d: the %s hook runs %s, not a script of examples/hooks installed in /usr/local/lib/dobrobot/hooks/", n, phase, x.Argv[0])
			}
		}
		if hooks.Start == nil {
			t.Errorf("block %d has no start hook:\n%s", n, b[1])
		}
	}
	if n < 5 {
		t.Errorf("docs/hooks-cookbook.md has %d configuration blocks, want one per example script (5)", n)
	}
}
