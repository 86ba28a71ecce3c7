package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage/postgres"
)

// The harness of the PostgreSQL process tests (issue 13): a deployment of
// several `dobrobot run` processes on one fresh schema against fakeslack,
// with a store of its own to read the term and the tables. The failover,
// standby and hand-in tests differ only in clusterOptions.

// ackDeadline is how long Slack waits for an ack before it takes an event
// for failed: an event acked later waits for Slack's next retry (about a
// minute, then five).
const ackDeadline = 3 * time.Second

// clusterOptions tune startCluster. The zero value of each field picks the
// default it names.
type clusterOptions struct {
	instances     int           // processes started at once, named a, b, …; more with start
	leaderTimeout time.Duration // storage.leader_timeout; default 2 s

	// fakeslack redelivers an Events API envelope not acked within ack
	// (default ackDeadline), then after each of retries (default 100 ×
	// 200 ms, a compressed schedule, so that a run settles).
	ack     time.Duration
	retries []time.Duration

	tickets     int    // tickets.yaml holds PAY-1 … PAY-tickets (Ready, backend)
	ticketsYAML string // or this whole tickets.yaml

	tracker    string   // the tracker: value; default the file tickets.yaml
	requesters []string // roles.requesters; none by default (anyone may request)
	components string   // the components: value; default [backend]
	http       bool     // turn on http.listen (127.0.0.1:0)
	intake     bool     // turn on intake.listen (127.0.0.1:0), signed with intakeSecret
	// hookSleep, when set, configures start and finish hooks running the
	// fake hook program for that long, recording each spawn (world.spawns);
	// the processes are then the failpoints build of testBinaries.
	hookSleep time.Duration

	env      []string // more environment variables of the processes
	logLevel string   // --log-level of run; the binary's default if ""
}

// pgCluster is a deployment of several `dobrobot run` processes on one
// PostgreSQL schema, against fakeslack. Its world holds the binary, fakeslack,
// the directory with the configuration, the environment of the processes
// and the hook record, so that world's helpers (send, waitReply, spawns)
// work on it; world.db is unused.
type pgCluster struct {
	*world
	dsn   string
	store *postgres.DB
	procs []*proc
	args  []string // of each process
}

// startCluster writes the configuration o describes for a fresh schema and
// starts o.instances processes on it. It skips t without DOBROBOT_PG_DSN or
// with -short.
func startCluster(t *testing.T, o clusterOptions) *pgCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("runs several dobrobot processes and PostgreSQL")
	}
	dsn := pgDSN(t)
	schema := pgSchema(t, dsn)
	if o.leaderTimeout == 0 {
		o.leaderTimeout = 2 * time.Second
	}
	if o.ack == 0 {
		o.ack = ackDeadline
	}
	if o.retries == nil {
		o.retries = every(100, 200*time.Millisecond)
	}
	if o.tracker == "" {
		o.tracker = "{kind: file, file: tickets.yaml, url: https://jira.example.com}"
	}
	if o.components == "" {
		o.components = "[backend]"
	}
	// Short paths: an admin socket's must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "dbt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	w := &world{t: t, slack: fakeslack.New(t), dir: dir, record: filepath.Join(dir, "hooks.jsonl")}
	w.slack.SetRetries(o.ack, o.retries...)

	tickets := o.ticketsYAML
	if tickets == "" {
		var list strings.Builder
		list.WriteString("tickets:\n")
		for n := 1; n <= o.tickets; n++ {
			fmt.Fprintf(&list, "  - {key: PAY-%d, summary: Change %d, status: Ready, components: [backend]}\n", n, n)
		}
		tickets = list.String()
	}
	roles := "{approvers: [U0APPROVER], admins: [U0ADMIN]}"
	if len(o.requesters) > 0 {
		roles = "{requesters: [" + strings.Join(o.requesters, ", ") + "], approvers: [U0APPROVER], admins: [U0ADMIN]}"
	}
	cfg := `
slack: {app_token: "${SLACK_APP_TOKEN}", bot_token: "${SLACK_BOT_TOKEN}", api_url: ` + w.slack.URL + `, channel: C0RELEASE}
storage: {kind: postgres, dsn: "${DOBROBOT_PG_DSN}", schema: ` + schema + `, leader_timeout: ` + o.leaderTimeout.String() + `}
tracker: ` + o.tracker + `
roles: ` + roles + `
components: ` + o.components + `
`
	if o.http {
		cfg += "http: {listen: \"127.0.0.1:0\"}\n"
	}
	if o.intake {
		cfg += "intake: {listen: \"127.0.0.1:0\", secret: \"${DOBROBOT_INTAKE_SECRET}\"}\n"
		o.env = append(o.env, "DOBROBOT_INTAKE_SECRET="+intakeSecret)
	}
	if o.hookSleep > 0 {
		var hook string
		w.bin, hook = testBinaries(t)
		exec := fmt.Sprintf("[%q, -record, %q, -sleep, %s]", hook, w.record, o.hookSleep)
		cfg += "hooks:\n  start: {exec: " + exec + ", timeout: 30s}\n  finish: {exec: " + exec + ", timeout: 30s}\n"
	} else {
		w.bin = buildBinary(t)
	}
	for name, body := range map[string]string{"tickets.yaml": tickets, "dobrobot.yaml": cfg} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w.env = append(os.Environ(), "SLACK_APP_TOKEN="+fakeslack.AppToken, "SLACK_BOT_TOKEN="+fakeslack.BotToken,
		"DOBROBOT_CONFIG="+filepath.Join(dir, "dobrobot.yaml"), "DOBROBOT_PG_DSN="+dsn)
	w.env = append(w.env, o.env...)

	store, err := postgres.Open(context.Background(), dsn, postgres.Options{Schema: schema, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	c := &pgCluster{world: w, dsn: dsn, store: store}
	if o.logLevel != "" {
		c.args = []string{"--log-level", o.logLevel}
	}
	c.args = append(c.args, "run")
	for range o.instances {
		c.start()
	}
	return c
}

// every is n waits of d: a retry schedule.
func every(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// start starts one more process, named by the next letter, without waiting
// for it to connect.
func (c *pgCluster) start() *proc {
	c.t.Helper()
	p := startProc(c.t, string(rune('a'+len(c.procs))), c.bin, c.env, c.args...)
	c.procs = append(c.procs, p)
	return p
}

// leader waits up to timeout for a held term begun after epoch and returns
// the process that holds it.
func (c *pgCluster) leader(after int64, timeout time.Duration) (*proc, int64) {
	c.t.Helper()
	p, epoch := c.awaitLeader(after, -1, timeout)
	if p == nil {
		c.t.Fatalf("no term began after term %d within %v", after, timeout)
	}
	return p, epoch
}

// leaderHello waits up to timeout for a held term begun after epoch once
// fakeslack said more than hellos hellos (the new leader's connection), and
// returns the process that holds it.
func (c *pgCluster) leaderHello(after int64, hellos int, timeout time.Duration) (*proc, int64) {
	c.t.Helper()
	p, epoch := c.awaitLeader(after, hellos, timeout)
	if p == nil {
		c.t.Fatalf("no new leader connected to Slack within %v after term %d", timeout, after)
	}
	return p, epoch
}

// awaitLeader is leader and leaderHello: nil when timeout passed.
func (c *pgCluster) awaitLeader(after int64, hellos int, timeout time.Duration) (*proc, int64) {
	c.t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		term, err := c.store.Term(context.Background())
		if err != nil || term.Epoch <= after || !term.Held || c.slack.Hellos() <= hellos {
			continue
		}
		pid, _ := strconv.Atoi(term.Holder[strings.LastIndexByte(term.Holder, ':')+1:])
		for _, p := range c.procs {
			if p.cmd.Process.Pid == pid {
				return p, term.Epoch
			}
		}
		c.t.Fatalf("term %d is held by %s, none of the test's processes", term.Epoch, term.Holder)
	}
	return nil, 0
}

// terminate sends SIGTERM to every process still running and waits up to
// 40 s for each to end.
func (c *pgCluster) terminate() {
	c.t.Helper()
	for _, p := range c.procs {
		if !p.exited() {
			p.signal(syscall.SIGTERM)
		}
	}
	for _, p := range c.procs {
		select {
		case <-p.done:
		case <-time.After(40 * time.Second):
			c.t.Errorf("%s did not stop after SIGTERM", p.name)
		}
	}
}

// settled waits until the inbox holds no pending event and the outbox is
// empty, and returns the releases.
func (c *pgCluster) settled(timeout time.Duration, done func([]commands.Release) bool) []commands.Release {
	c.t.Helper()
	ctx := context.Background()
	var (
		rels    []commands.Release
		pending []commands.InboxEvent
		out     []commands.Effect
		err     error
	)
	deadline := time.Now().Add(timeout)
	for {
		err = c.store.View(ctx, func(tx commands.Tx) error {
			var err error
			if rels, err = tx.Recent(0); err != nil {
				return err
			}
			pending, err = tx.PendingEvents()
			return err
		})
		if err == nil {
			out, err = c.store.Pending(ctx, 0)
		}
		if err == nil && len(pending) == 0 && len(out) == 0 && done(rels) {
			return rels
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not settled within %v: %d releases, %d events pending, %d effects in the outbox (%v)",
				timeout, len(rels), len(pending), len(out), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// auditEpochs returns the epoch of each audit entry, in seq order.
func (c *pgCluster) auditEpochs() []int64 {
	c.t.Helper()
	return auditEpochs(c.t, c.dsn, c.store.Schema())
}

// pgDSN returns the test database's DSN, or skips t when there is none.
func pgDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("DOBROBOT_PG_DSN")
	if dsn == "" {
		t.Skip("DOBROBOT_PG_DSN is not set, so the PostgreSQL failover test is skipped: " +
			`eval "$(bash .ci/postgres start)" starts a throwaway PostgreSQL and sets it (make test in CI does)`)
	}
	return dsn
}

// pgSchema returns a fresh schema name, dropped when t ends.
func pgSchema(t *testing.T, dsn string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// auditEpochs returns the epoch of each audit entry, in seq order.
func auditEpochs(t *testing.T, dsn, schema string) []int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT epoch FROM "+schema+".audit ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	epochs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return epochs
}
