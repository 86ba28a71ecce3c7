package hook

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// fakehook is the path of the test hook program built by TestMain.
var fakehook string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fakehook")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	fakehook = filepath.Join(dir, "fakehook")
	build := exec.Command("go", "build", "-o", fakehook, "github.com/dobrobot/dobrobot/commands/hook/internal/fakehook")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build fakehook:", err)
		return 1
	}
	return m.Run()
}
