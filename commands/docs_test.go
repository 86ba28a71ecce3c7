package commands_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dobrobot/dobrobot/commands"
)

// TestCommandsDoc keeps docs/commands.md's table in step with the parser's
// help table: every command, in order, with the same syntax, role and text.
func TestCommandsDoc(t *testing.T) {
	doc, err := os.ReadFile("../docs/commands.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for line := range strings.SplitSeq(string(doc), "\n") {
		if strings.HasPrefix(line, "| `") {
			rows = append(rows, line)
		}
	}
	if len(rows) != len(commands.Help) {
		t.Errorf("docs/commands.md has %d command rows, the parser %d", len(rows), len(commands.Help))
	}
	for i, u := range commands.Help {
		want := fmt.Sprintf("| `%s` | %s | %s |", u.Syntax, u.Who, u.Describe)
		if i >= len(rows) || rows[i] != want {
			t.Errorf("docs/commands.md row %d:\n got %q\nwant %q", i+1, at(rows, i), want)
		}
		if _, err := commands.Parse(strings.Fields(u.Syntax)[0]); err != nil && !strings.Contains(err.Error(), "needs") {
			t.Errorf("help syntax %q does not start with a command: %v", u.Syntax, err)
		}
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}
