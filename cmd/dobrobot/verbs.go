package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/bot"
	"github.com/dobrobot/dobrobot/cmd/internal/audit"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// ConsoleCmd runs the bot in the terminal.
type ConsoleCmd struct {
	DB         string `help:"Database file (default: the config's storage.path, or ./dobrobot-demo.db for the demo)." placeholder:"FILE"`
	AsOperator bool   `name:"as-operator" help:"Open the database of a run configuration (one with a slack section) while the bot is stopped; the session is recorded in the audit log."`
}

// Run runs the console until the end of input.
func (cmd ConsoleCmd) Run(ctx context.Context, a *app) error {
	if err := a.bboltOnly("the console", cmd.DB, "give --db FILE to try it on a file of its own; the team's bot is dobrobot run"); err != nil {
		return err
	}
	c, err := a.loadConfig()
	if err != nil {
		return err
	}
	if c == nil {
		c = DemoConfig()
		fmt.Fprintf(a.stdout, "dobrobot demo: no --config given, so tickets DEMO-1…DEMO-5 come from a built-in file tracker and the database is ./%s.\n"+
			"You are %s (me). Try: dobro DEMO-1 to qa version 2.4.0, dep start DEMO-1, dep finish DEMO-1 (production is then requested by itself), /as approver, accept DEMO-1, /as lead, accept DEMO-1, /as admin, here DEMO-1, /as me, dep start DEMO-1 (a minute after qa), dep finish DEMO-1, where. /help for more.\n",
			DemoDB, bot.ConsoleUser)
	}
	path := dbPath(c)
	if cmd.DB != "" {
		path = cmd.DB
	}
	if c.isRunConfig() && samePath(path, dbPath(c)) && !cmd.AsOperator {
		return usagef("%s is the database of a run configuration (%s has a slack section), and in the console anyone can act as anyone: "+
			"give --as-operator to open it anyway while the bot is stopped (your session is recorded in the audit log), or --db FILE to try commands on a file of its own", path, c.path)
	}
	db, err := openDB(path)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := a.verifyAtOpen(ctx, db); err != nil { // as run does at start-up
		return err
	}
	cfg, err := a.config(c, db)
	if err != nil {
		return err
	}
	if clk := consoleClock(ctx); clk != nil {
		cfg.Clock = clk
	}
	if cmd.AsOperator {
		if err := recordOperator(ctx, db, consoleUser(c), cfg.Clock.Now()); err != nil {
			return err
		}
	}
	con := &bot.Console{
		Store: db, In: a.stdin, Out: a.stdout, Names: c.Users,
		Prompt: isTerminal(a.stdin), Log: a.log, Export: exporter(db), Now: cfg.Clock.Now,
	}
	cfg.Notify = con.Notify
	cfg.Groups = bot.ConsoleGroups{} // users only: the console knows no group's members
	cfg.HookContext = ctx            // an interrupt kills running hooks' process groups
	svc := commands.NewService(cfg)
	con.Service = svc
	// intake.listen: CI's deliveries come in while the console runs, and
	// their effects print like any other command's.
	gate := &buildGate{}
	gate.set(svc)
	in, err := startIntake(c, gate, a.log)
	if err != nil {
		return err
	}
	if in != nil {
		defer in.Close()
		fmt.Fprintf(a.stdout, "CI intake listening on %s (POST /builds, POST /github).\n", in.Addr())
	}
	// The scheduler runs while the console waits for input: a reminder
	// that falls due is printed as it comes (reminders.approval: 2s). Not
	// on a run configuration's database (--as-operator): its reminders
	// are for Slack, and the bot sends the overdue ones once it is back.
	if !(c.isRunConfig() && samePath(path, dbPath(c))) {
		stopSchedule := runSchedule(ctx, svc)
		defer stopSchedule()
	}
	return con.Run(ctx)
}

// openDB opens the bbolt database, refusing a locked, corrupt or foreign file.
func openDB(path string) (*storage.DB, error) {
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		return nil, err
	}
	// bbolt opens a file whose data pages are damaged; refuse it here, before
	// anything reads or writes through it. Only the pages of the open work
	// (queue, locks, inbox, outbox), so that start-up does not grow with
	// history; the history's pages are checked by backup (on the copy) and
	// audit verify, the newest audit entries at every start (VerifyRecent).
	if err := db.QuickCheck(); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s failed its integrity check (restore a backup; see docs/operations.md): %w", path, err)
	}
	return db, nil
}

func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// exporter is what the bot and the console write an admin's audit command
// with: the bytes dobrobot audit export writes.
func exporter(s commands.Store) bot.Exporter {
	return func(ctx context.Context, f commands.AuditFilter, format string, w io.Writer) error {
		return audit.Export(ctx, s, f, format, w)
	}
}

// AuditExportCmd streams the audit log.
type AuditExportCmd struct {
	Format string    `help:"jsonl or csv." enum:"jsonl,csv" default:"jsonl"`
	Since  time.Time `help:"Only entries at or after this time (RFC 3339)." placeholder:"TIME"`
	Until  time.Time `help:"Only entries before this time (RFC 3339)." placeholder:"TIME"`
	Ticket string    `help:"Only entries of this ticket." placeholder:"KEY"`
	DB     string    `help:"Database file (default: the config's storage.path, or the demo's)." placeholder:"FILE"`
}

// Run writes the matching entries to stdout, through the running bot when
// it holds the database.
func (cmd AuditExportCmd) Run(ctx context.Context, a *app) error {
	if cmd.Ticket != "" {
		key, ok := commands.TicketKey(cmd.Ticket)
		if !ok {
			return usagef("--ticket %q is not a ticket key (like PAY-123)", cmd.Ticket)
		}
		cmd.Ticket = key
	}
	f := commands.AuditFilter{Since: cmd.Since, Until: cmd.Until, Ticket: cmd.Ticket}
	if pg, err := a.postgresSource(ctx, cmd.DB); pg != nil || err != nil {
		if err != nil {
			return err
		}
		defer pg.Close()
		return audit.Export(ctx, pg, f, cmd.Format, a.stdout)
	}
	src, err := a.openSource(cmd.DB)
	if err != nil {
		return err
	}
	defer src.Close()
	if src.admin != nil {
		return src.admin.Export(ctx, f, cmd.Format, a.stdout)
	}
	return audit.Export(ctx, src.db, f, cmd.Format, a.stdout)
}

// AuditVerifyCmd checks the audit chain and the state it describes.
type AuditVerifyCmd struct {
	DB         string `help:"Database file (default: the config's storage.path, or the demo's)." placeholder:"FILE"`
	Checkpoint string `help:"Also check that the chain holds this entry, as posted to the release channel (SEQ:HASH)." placeholder:"SEQ:HASH"`
}

// Run verifies every entry, replays the log against the stored releases,
// locks and freezes, and reports the head, through the running bot when it
// holds the database.
func (cmd AuditVerifyCmd) Run(ctx context.Context, a *app) error {
	var against *commands.Checkpoint
	if cmd.Checkpoint != "" {
		cp, err := commands.ParseCheckpoint(cmd.Checkpoint)
		if err != nil {
			return usagef("--checkpoint: %s", commands.ErrorMessage(err))
		}
		against = &cp
	}
	head, err := a.verifySource(ctx, cmd.DB, against, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "audit chain ok: %d entries, head %s\n", head.Seq, head.Hash)
	fmt.Fprintf(a.stdout, "state ok: the open releases, locks and freezes are what the log replays to\n")
	if against != nil {
		fmt.Fprintf(a.stdout, "checkpoint ok: the entry at seq %d has hash %s\n", against.Seq, against.Hash)
	}
	return nil
}

// AuditCheckpointCmd prints the chain's head, to be kept where the database's
// users can read it.
type AuditCheckpointCmd struct {
	DB string `help:"Database file (default: the config's storage.path, or the demo's)." placeholder:"FILE"`
}

// Run verifies the chain and the state like audit verify, then prints the
// head as SEQ:HASH: a broken chain gets no checkpoint.
func (cmd AuditCheckpointCmd) Run(ctx context.Context, a *app) error {
	head, err := a.verifySource(ctx, cmd.DB, nil, false)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, head.String())
	return nil
}

// verifySource runs audit.Verify on the database named by flag (or the
// configuration): PostgreSQL, the running bot's admin socket, or the file;
// pages checks every page of a file too.
func (a *app) verifySource(ctx context.Context, flag string, against *commands.Checkpoint, pages bool) (commands.Checkpoint, error) {
	pg, err := a.postgresSource(ctx, flag)
	if err != nil {
		return commands.Checkpoint{}, err
	}
	if pg != nil {
		defer pg.Close()
		return audit.Verify(ctx, pg, against)
	}
	src, err := a.openSource(flag)
	if err != nil {
		return commands.Checkpoint{}, err
	}
	defer src.Close()
	if src.admin != nil {
		return src.admin.Verify(ctx, against)
	}
	if pages {
		// Every page too, which start-up leaves to this and to backup.
		if err := src.db.Check(); err != nil {
			return commands.Checkpoint{}, err
		}
	}
	return audit.Verify(ctx, src.db, against)
}

// BackupCmd writes an online copy of the database.
type BackupCmd struct {
	Out string `required:"" help:"Where to write the copy (must not exist)." placeholder:"FILE" type:"path"`
	DB  string `help:"Database file (default: the config's storage.path, or the demo's)." placeholder:"FILE"`
}

// Run writes the copy, through the running bot when it holds the database,
// and checks it.
func (cmd BackupCmd) Run(ctx context.Context, a *app) error {
	if err := a.bboltOnly("backup", cmd.DB, "back the database up with pg_dump or your provider's backups (docs/operations.md)"); err != nil {
		return err
	}
	if fileExists(cmd.Out) {
		return usagef("backup: %s exists; choose a new file", cmd.Out)
	}
	src, err := a.openSource(cmd.DB)
	if err != nil {
		return err
	}
	defer src.Close()
	f, err := os.OpenFile(cmd.Out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	var n int64
	if src.admin != nil {
		n, err = src.admin.Backup(ctx, f)
	} else {
		n, err = src.db.Backup(ctx, f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = checkCopy(cmd.Out)
	}
	if err != nil {
		os.Remove(cmd.Out)
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(a.stdout, "backup written: %s (%d bytes, integrity checked)\n", cmd.Out, n)
	return nil
}

// checkCopy opens a backup read-only and runs the integrity check on it.
func checkCopy(path string) error {
	db, err := storage.Open(path, storage.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("the copy does not open: %w", err)
	}
	defer db.Close()
	return db.Check()
}

// ConfigCheckCmd loads the configuration and reports.
type ConfigCheckCmd struct{}

// checkReport collects what config check finds: every line in order, with
// counts of problems (exit 1) and warnings (worth a look, not an error).
type checkReport struct {
	lines              []string
	problems, warnings int
}

func (r *checkReport) info(line string) { r.lines = append(r.lines, line) }

func (r *checkReport) warn(line string) {
	r.lines = append(r.lines, line)
	r.warnings++
}

func (r *checkReport) problem(line string) {
	r.lines = append(r.lines, line)
	r.problems++
}

// Run checks the configuration and what it points at. It reports every
// problem it finds, then its verdict on the last line: "ok" only when there
// is no problem.
func (ConfigCheckCmd) Run(ctx context.Context, a *app) error {
	c, err := a.mustConfig("config check")
	if err != nil {
		return err
	}
	var r checkReport
	if err := c.needSlack(); err != nil {
		r.warn("slack: " + err.Error() + " (needed by run, not by console)")
	} else if msg, err := bot.CheckSlack(ctx, c.Slack.APIURL, c.Slack.BotToken, c.Slack.AppToken, c.Slack.Channel); err != nil {
		r.problem(err.Error())
	} else {
		r.info(msg)
	}
	if len(c.Roles.Approvers) == 0 {
		r.warn("roles.approvers: empty — nobody can accept a release")
	}
	if len(c.Roles.Admins) == 0 {
		r.warn("roles.admins: empty — nobody can claim, lock or override")
	}
	tr, err := a.tracker(c)
	if err != nil {
		if msg := err.Error(); strings.HasPrefix(msg, "tracker") {
			r.problem(msg)
		} else {
			r.problem("tracker: " + msg)
		}
	} else if tr.check != nil {
		if msg, err := tr.check(ctx); err != nil {
			r.problem(err.Error())
		} else {
			r.info(msg)
		}
	} else {
		r.info("tracker: " + c.Tracker.Kind + " ok")
	}
	_, _, badHooks := a.buildHooks(c)
	for _, p := range badHooks {
		r.problem(p)
	}
	c.checkIntake(&r)
	if line, ok := a.checkStorage(ctx, c); line != "" {
		if ok {
			r.info(line)
		} else {
			r.problem(line)
		}
	}
	verdict := fmt.Sprintf("config %s: ok", c.path)
	switch {
	case r.problems > 0:
		verdict = fmt.Sprintf("config %s: %s", c.path, plural(r.problems, "problem"))
	case r.warnings > 0:
		verdict += fmt.Sprintf(" (%s above)", plural(r.warnings, "warning"))
	}
	fmt.Fprintln(a.stdout, joinLines(append(r.lines, verdict)))
	if r.problems > 0 {
		return errors.New("config check found problems")
	}
	return nil
}

// plural returns "1 problem" or "3 problems".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
