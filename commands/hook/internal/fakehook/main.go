// Command fakehook is a hook program for the tests of package hook. It records
// how it was called and then misbehaves as asked:
//
//	fakehook [flags] [--] [args...]
//
//	-record FILE   append {"argv": os.Args, "env": os.Environ()} as one JSON line to FILE
//	-ignore-term   ignore SIGTERM
//	-child FILE    start a child (this program again) that ignores SIGTERM, keeps
//	               stdout open and sleeps; its pid is written to FILE once it is ready
//	-print N       write N bytes to stdout (lines of 'x'), then the line "END"
//	-stdout TEXT   write TEXT to stdout
//	-stderr TEXT   write TEXT to stderr
//	-signal N      send itself signal N (9: SIGKILL) and wait for it
//	-sleep D       sleep for D (a Go duration) before exiting
//	-exit CODE     exit with CODE
//
// The steps run in the order listed above.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fakehook:", err)
		os.Exit(100)
	}
}

func run() error {
	var (
		record     = flag.String("record", "", "append argv and environ as JSON to this `file`")
		ignoreTerm = flag.Bool("ignore-term", false, "ignore SIGTERM")
		child      = flag.String("child", "", "start a child that ignores SIGTERM; write its pid to this `file`")
		asChild    = flag.String("as-child", "", "internal: be the child started by -child")
		printN     = flag.Int64("print", 0, "write `n` bytes to stdout")
		stdout     = flag.String("stdout", "", "write `text` to stdout")
		stderr     = flag.String("stderr", "", "write `text` to stderr")
		sig        = flag.Int("signal", 0, "send itself signal `n`")
		sleep      = flag.Duration("sleep", 0, "sleep this long")
		exit       = flag.Int("exit", 0, "exit `code`")
	)
	flag.Parse()

	if *asChild != "" {
		return beChild(*asChild)
	}
	if *record != "" {
		if err := appendRecord(*record); err != nil {
			return err
		}
	}
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	if *child != "" {
		if err := startChild(*child); err != nil {
			return err
		}
	}
	if *printN > 0 {
		if err := printBytes(*printN); err != nil {
			return err
		}
	}
	if *stdout != "" {
		fmt.Fprint(os.Stdout, *stdout)
	}
	if *stderr != "" {
		fmt.Fprint(os.Stderr, *stderr)
	}
	if *sig != 0 {
		if err := syscall.Kill(os.Getpid(), syscall.Signal(*sig)); err != nil {
			return err
		}
		time.Sleep(time.Minute) // the signal ends the process before this does
	}
	time.Sleep(*sleep)
	os.Exit(*exit)
	return nil
}

func appendRecord(name string) error {
	line, err := json.Marshal(struct {
		Argv []string `json:"argv"`
		Env  []string `json:"env"`
	}{os.Args, os.Environ()})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startChild starts this program again as a child in the same process group,
// sharing stdout and stderr, and waits until it is ready.
func startChild(pidFile string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-as-child", pidFile)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil && len(b) > 0 {
			return nil
		}
	}
	return fmt.Errorf("child %d did not write %s", cmd.Process.Pid, pidFile)
}

func beChild(pidFile string) error {
	signal.Ignore(syscall.SIGTERM)
	tmp := pidFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, pidFile); err != nil {
		return err
	}
	time.Sleep(time.Hour)
	return nil
}

func printBytes(n int64) error {
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	line := make([]byte, 100)
	for i := range line {
		line[i] = 'x'
	}
	line[len(line)-1] = '\n'
	for n > 0 {
		k := min(n, int64(len(line)))
		if _, err := w.Write(line[:k]); err != nil {
			return err
		}
		n -= k
	}
	if _, err := w.WriteString("END\n"); err != nil {
		return err
	}
	return w.Flush()
}
