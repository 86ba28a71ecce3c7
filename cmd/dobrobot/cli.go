package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "dev"

// CLI is the command line, parsed by kong.
type CLI struct {
	Config    string `help:"Configuration file (default: $DOBROBOT_CONFIG)." placeholder:"FILE" type:"path"`
	LogFormat string `help:"Log format: json or console." enum:"json,console" default:"json"`
	LogLevel  string `help:"Log level: debug, info, warn, error." enum:"debug,info,warn,error" default:"info"`

	Run     RunCmd     `cmd:"" help:"Run the Slack bot (Socket Mode)."`
	Console ConsoleCmd `cmd:"" help:"Run the bot in this terminal: type what you would write after @dobrobot. With no config, a demo."`
	Audit   AuditCmd   `cmd:"" help:"Export or verify the audit log."`
	Report  ReportCmd  `cmd:"" help:"Print the DORA report (deploys, lead time, change failure rate, time to restore) from the audit log."`
	Backup  BackupCmd  `cmd:"" help:"Write a consistent copy of the database."`
	Conf    ConfCmd    `cmd:"" name:"config" help:"Check the configuration."`
	Intake  IntakeCmd  `cmd:"" help:"Helpers for the CI intake (docs/ci.md)."`
	Version VersionCmd `cmd:"" help:"Print the version."`
}

// AuditCmd groups the audit subcommands.
type AuditCmd struct {
	Export     AuditExportCmd     `cmd:"" help:"Stream the audit log as JSON lines or CSV."`
	Verify     AuditVerifyCmd     `cmd:"" help:"Check the audit log's hash chain, and that the stored releases, locks and freezes are what it replays to."`
	Checkpoint AuditCheckpointCmd `cmd:"" help:"Verify, then print the chain's head as SEQ:HASH, to keep for audit verify --checkpoint."`
}

// ConfCmd groups the config subcommands.
type ConfCmd struct {
	Check ConfigCheckCmd `cmd:"" help:"Load the configuration and report what is wrong, and what works."`
}

// app is what every command gets: the parsed globals and the environment.
type app struct {
	cli *CLI
	env
	log zerolog.Logger
}

// usageError is a bad command line or configuration: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// kongExit carries kong's exit code out of its Exit callback.
type kongExit struct{ code int }

// Main runs dobrobot with args and returns its exit code: 0 ok, 1 runtime
// failure, 2 bad usage or configuration.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) (code int) {
	var cli CLI
	e := env{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: lookupEnv}
	defer func() {
		if r := recover(); r != nil {
			if k, ok := r.(kongExit); ok {
				code = k.code
				return
			}
			panic(r)
		}
	}()
	parser, err := kong.New(&cli,
		kong.Name("dobrobot"),
		kong.Description("dobrobot coordinates releases: dobro, accept, here, dep start, dep finish — with a queue, locks and an audit log."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { panic(kongExit{c}) }),
		kong.UsageOnError(),
	)
	if err != nil {
		fmt.Fprintf(stderr, "dobrobot: %v\n", err)
		return exitRuntime
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "dobrobot: %v\n", err)
		return exitUsage
	}
	if cli.Config == "" {
		cli.Config = e.getenv("DOBROBOT_CONFIG")
	}
	a := &app{cli: &cli, env: e, log: newLogger(stderr, cli.LogFormat, cli.LogLevel)}
	kctx.BindTo(ctx, (*context.Context)(nil))
	err = kctx.Run(a)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "dobrobot: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "dobrobot: %v\n", err)
		return exitRuntime
	}
}

func newLogger(w io.Writer, format, level string) zerolog.Logger {
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// loadConfig loads --config / $DOBROBOT_CONFIG; with neither, it returns nil.
func (a *app) loadConfig() (*Config, error) {
	if a.cli.Config == "" {
		return nil, nil
	}
	c, err := LoadConfig(a.cli.Config, a.lookupEnv)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// mustConfig is loadConfig for the verbs that cannot run without one.
func (a *app) mustConfig(verb string) (*Config, error) {
	c, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, usagef("%s needs a configuration: --config FILE or DOBROBOT_CONFIG", verb)
	}
	return c, nil
}

// dbPath is the database the verb works on: the config's, or the demo's.
func dbPath(c *Config) string {
	if c == nil || c.Storage.Path == "" {
		return DemoDB
	}
	return c.Storage.Path
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(a *app) error {
	fmt.Fprintf(a.stdout, "dobrobot %s\n", Version)
	return nil
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func joinLines(lines []string) string { return strings.Join(lines, "\n") }
