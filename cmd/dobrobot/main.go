// Command dobrobot is the release-coordination bot: `dobrobot run` in Slack,
// `dobrobot console` in a terminal, and the audit, backup and config tools.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // timezone and freezes[].tz must load on a machine without a zone database
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1 // a runtime failure
	exitUsage   = 2 // bad usage or configuration
)

// env is how Main reaches its environment, so tests can run it in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool) // os.LookupEnv: unset differs from empty
}

// getenv returns the variable's value, or "" when it is unset.
func (e env) getenv(key string) string {
	v, _ := e.lookupEnv(key)
	return v
}
