package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dobrobot/dobrobot/bot"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// isRunConfig reports whether c is a configuration `run` uses: one with a
// slack section (a token or the channel). Its database is the team's, and
// the console, where anyone can be anyone, refuses it unless told
// --as-operator.
func (c *Config) isRunConfig() bool {
	return c.Slack.AppToken != "" || c.Slack.BotToken != "" || c.Slack.Channel != ""
}

// samePath reports whether a and b name the same file: the same file when
// both exist, else the same absolute path.
func samePath(a, b string) bool {
	if fa, err := os.Stat(a); err == nil {
		if fb, err := os.Stat(b); err == nil {
			return os.SameFile(fa, fb)
		}
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// consoleUser is who the console starts as with configuration c: users.me,
// or bot.ConsoleUser.
func consoleUser(c *Config) string {
	if me := c.Users["me"]; me != "" {
		return me
	}
	return bot.ConsoleUser
}

// operatorDetail names the person at the terminal, for the audit entry of a
// console --as-operator session: the OS user and the host, nothing else.
func operatorDetail() string {
	who := "uid " + strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil && u.Username != "" {
		who = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "an unknown host"
	}
	return fmt.Sprintf("console --as-operator: OS user %s on %s", who, host)
}

// recordOperator writes the audit entry that opens a console --as-operator
// session on the database of a run configuration.
func recordOperator(ctx context.Context, db *storage.DB, actor string, now time.Time) error {
	err := db.Update(ctx, func(tx commands.Tx) error {
		_, err := tx.AppendAudit(commands.AuditEntry{Time: now, Actor: actor, Action: commands.ActionOperator,
			Detail: operatorDetail(), Via: commands.SourceConsole})
		return err
	})
	if err != nil {
		return fmt.Errorf("console: recording the operator's session: %w", err)
	}
	return nil
}

// clockKey is the context key of a clock that stands in for the real one
// in the console. Only this package's tests set it: the README's
// walkthrough waits out the demo's one-minute bake, and a test must not
// wait a real minute.
type clockKey struct{}

// consoleClock returns the clock ctx carries, or nil.
func consoleClock(ctx context.Context) commands.Clock {
	clk, _ := ctx.Value(clockKey{}).(commands.Clock)
	return clk
}
