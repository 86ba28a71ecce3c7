package failpoint_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/commands/failpoint"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    map[string]time.Duration
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: "one", want: map[string]time.Duration{"one": 0}},
		{in: "one, two=300ms,", want: map[string]time.Duration{"one": 0, "two": 300 * time.Millisecond}},
		{in: "=1s", wantErr: true},
		{in: "one=soon", wantErr: true},
		{in: "one=-1s", wantErr: true},
	} {
		got, err := failpoint.Parse(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("Parse(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// TestHitWithoutTag: a binary built without the failpoints tag ignores
// DOBROBOT_FAILPOINTS (this test binary is one).
func TestHitWithoutTag(t *testing.T) {
	if failpoint.Enabled {
		t.Skip("built with the failpoints tag")
	}
	t.Setenv(failpoint.EnvVar, "one")
	failpoint.Hit("one") // would kill the test binary
	if got := failpoint.Armed(); got != nil {
		t.Errorf("Armed() = %v without the tag", got)
	}
}

// TestCrash runs a program built with the failpoints tag and checks where
// it dies: at the armed failpoint, by SIGKILL, or a delay after it.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	bin := filepath.Join(t.TempDir(), "crashme")
	if out, err := exec.Command("go", "build", "-tags", "failpoints", "-o", bin, "./internal/crashme").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name, armed, sleep string
		wantOut            string
		wantKilled         bool
	}{
		{name: "none", armed: "", wantOut: "a\nb\nc\n"},
		{name: "other", armed: "three", wantOut: "a\nb\nc\n"},
		{name: "first", armed: "one", wantOut: "a\n", wantKilled: true},
		{name: "second", armed: "two", wantOut: "a\nb\n", wantKilled: true},
		{name: "delayed", armed: "one=100ms", sleep: "10s", wantOut: "a\nb\n", wantKilled: true},
		{name: "delay not reached", armed: "two=10s", wantOut: "a\nb\nc\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tc.sleep)
			cmd.Env = append(os.Environ(), failpoint.EnvVar+"="+tc.armed)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			killed := false
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				ws, _ := ee.Sys().(syscall.WaitStatus)
				killed = ws.Signaled() && ws.Signal() == syscall.SIGKILL
			} else if err != nil {
				t.Fatal(err)
			}
			if killed != tc.wantKilled {
				t.Errorf("killed by SIGKILL = %v, want %v (%v; stderr %q)", killed, tc.wantKilled, err, stderr.String())
			}
			if got := stdout.String(); got != tc.wantOut {
				t.Errorf("stdout = %q, want %q", got, tc.wantOut)
			}
			if tc.wantKilled && !bytes.Contains(stderr.Bytes(), []byte("failpoint ")) {
				t.Errorf("stderr does not name the failpoint: %q", stderr.String())
			}
		})
	}
}
