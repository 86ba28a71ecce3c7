package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/tracker/fakejira"
)

// TestFailoverFreezeWithQueuedWrites freezes a PostgreSQL leader whose whole
// connection pool waits on the leader row, as a leader frozen in the middle
// of a burst of commands does: one of its transactions holds the row, idle,
// and the others queue behind it. A queued write is active, not idle, so
// idle_in_transaction_session_timeout ends it only once it got the row; if
// each queued write still waited its turn, the standby's epoch increment
// would come last and the takeover would take about one leader_timeout per
// queued write. The leader's commands first wait in a slow fake Jira, so
// that they reach the database together; the test holds the row itself
// while their writes queue, freezes the leader with SIGSTOP, lets go of the row (one frozen
// write takes it), and wants a standby leading and connected to Slack
// within leader_timeout + 1 s. After the thaw every request is applied once
// and the terms' writes do not interleave. The new leader logs the frozen
// leader's sockets, which Slack still counts, at info level as what they
// are, not as another process using the app token.
func TestFailoverFreezeWithQueuedWrites(t *testing.T) {
	const (
		requests      = 12 // more than the pool's 8 connections
		pool          = 8  // postgres.Options.MaxConns' default
		leaderTimeout = 2 * time.Second
	)
	jira := fakejira.New(t)
	for n := 1; n <= requests; n++ {
		jira.AddIssue(fakejira.Issue{Key: fmt.Sprintf("REL-%d", n), Summary: fmt.Sprintf("Change %d", n),
			Status: "Ready for Release", Components: []string{"backend"}})
	}
	c := startCluster(t, clusterOptions{instances: 2, leaderTimeout: leaderTimeout, ack: time.Second,
		retries: every(60, 200*time.Millisecond), env: []string{"JIRA_TOKEN=jira-token"},
		tracker: "{kind: jira, url: " + jira.URL + `, user: bot@example.com, token: "${JIRA_TOKEN}", ready_statuses: [Ready for Release]}`})
	ctx, slack, store, dsn, schema := context.Background(), c.slack, c.store, c.dsn, c.store.Schema()
	first, epoch := c.leaderHello(0, 0, 20*time.Second)
	standby := c.procs[0]
	if standby == first {
		standby = c.procs[1]
	}
	if !waitFor(10*time.Second, func() bool { return strings.Contains(standby.logs.String(), "standing by") }) {
		t.Fatalf("%s does not stand by", standby.name)
	}

	// A burst of requests: each is recorded in the inbox, then looks its
	// ticket up in Jira (which answers slowly) and then writes. While Jira
	// keeps them, the test takes the leader row, so that their writes,
	// which all start with it, queue on it.
	jira.Fail("", fakejira.Failure{Delay: 3 * time.Second})
	for n := 1; n <= requests; n++ {
		ev := fakeslack.Mention(fmt.Sprintf("U0REQ%02d", n), "C0RELEASE", fmt.Sprintf("dobro REL-%d", n))
		if _, err := slack.Deliver(ev); err != nil {
			t.Fatalf("deliver REL-%d: %v", n, err)
		}
	}
	lookups := func() int {
		n := 0
		for _, r := range jira.Requests() {
			if strings.HasPrefix(r.Path, "/rest/api/2/issue/REL-") {
				n++
			}
		}
		return n
	}
	if !waitFor(20*time.Second, func() bool { return lookups() >= requests }) {
		t.Fatalf("%d of the %d requests reached Jira", lookups(), requests)
	}
	lock, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	held, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Exec(ctx, "SELECT epoch FROM "+schema+".leader WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	jira.Heal()
	// Watched from a connection of its own: in the one that holds the row,
	// the activity view would stay as the transaction first saw it.
	watch, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	queued := func() int {
		var n int
		err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE '%"'||$1||'".leader WHERE id = 1 FOR UPDATE%'`, schema).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if !waitFor(20*time.Second, func() bool { return queued() >= pool }) {
		t.Fatalf("the leader's writes did not fill its pool: %d wait on the leader row, want %d", queued(), pool)
	}

	// Freeze the leader with its pool queued, then let go of the row: the
	// first frozen write takes it and sits idle, the others queue.
	hellos := slack.Hellos()
	frozenAt := time.Now()
	first.signal(syscall.SIGSTOP)
	if err := held.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	second, epoch2 := c.leaderHello(epoch, hellos, 60*time.Second)
	took := time.Since(frozenAt)
	t.Logf("%s froze in term %d with %d writes queued on the leader row; %s leads term %d after %v (leader_timeout %v)",
		first.name, epoch, pool, second.name, epoch2, took.Round(time.Millisecond), leaderTimeout)
	if took > leaderTimeout+time.Second {
		t.Errorf("the takeover after a freeze with a full pool of queued writes took %v, want ≤ leader_timeout + 1 s = %v",
			took.Round(time.Millisecond), leaderTimeout+time.Second)
	}
	// Slack still counts the frozen leader's sockets: the new leader says
	// whose they are, at info level, and does not tell anyone to stop a
	// second process.
	deposed := "other connections to this Slack app are open: the standbys' connections, and, if " + first.holder()
	if !waitFor(10*time.Second, func() bool { return strings.Contains(second.logs.String(), deposed) }) {
		t.Errorf("the new leader %s did not log %q", second.name, deposed)
	}
	if strings.Contains(second.logs.String(), "stop the other") {
		t.Errorf("the new leader %s took the frozen leader's sockets for another process using the app token", second.name)
	}
	first.signal(syscall.SIGCONT)

	// Everything settles: every request is one release, nothing waits.
	var state string
	settled := waitFor(40*time.Second, func() bool {
		counts := map[string]int{}
		var pending []commands.InboxEvent
		err := store.View(ctx, func(tx commands.Tx) error {
			rels, err := tx.Recent(0)
			for _, r := range rels {
				counts[r.Ticket]++
			}
			if err != nil {
				return err
			}
			pending, err = tx.PendingEvents()
			return err
		})
		out, perr := store.Pending(ctx, 0)
		if err = errors.Join(err, perr); err != nil {
			state = err.Error()
			return false
		}
		var wrong []string
		for n := 1; n <= requests; n++ {
			if c := counts[fmt.Sprintf("REL-%d", n)]; c != 1 {
				wrong = append(wrong, fmt.Sprintf("REL-%d ×%d", n, c))
			}
		}
		state = fmt.Sprintf("releases not once: %v; %d events pending; %d messages in the outbox", wrong, len(pending), len(out))
		return len(wrong) == 0 && len(pending) == 0 && len(out) == 0
	})
	if !settled {
		t.Fatalf("not settled 40 s after the takeover: %s", state)
	}
	epochs := c.auditEpochs()
	for i := 1; i < len(epochs); i++ {
		if epochs[i] < epochs[i-1] {
			t.Errorf("audit entry %d has epoch %d after an entry of epoch %d: terms interleave", i+1, epochs[i], epochs[i-1])
		}
	}
	if !waitFor(10*time.Second, func() bool { return strings.Contains(first.logs.String(), "lost the leadership") }) {
		t.Errorf("the thawed ex-leader %s did not log that it lost the leadership", first.name)
	}
}

// TestRunWarnsAboutAnotherProcess starts dobrobot run on bbolt while another
// connection to the Slack app is open: on bbolt one process is the whole
// deployment, so that one is another process using the app token, and the
// bot says so at error level. (On PostgreSQL every instance holds
// connections, so the count says nothing there: docs/operations.md, issue
// 19 item 5.)
func TestRunWarnsAboutAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs dobrobot")
	}
	bin := buildBinary(t)
	slack := fakeslack.New(t)
	slack.OtherConnection(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "dobrobot.yaml")
	body := `
slack: {app_token: "${SLACK_APP_TOKEN}", bot_token: "${SLACK_BOT_TOKEN}", api_url: ` + slack.URL + `, channel: C0RELEASE}
storage: {path: ` + filepath.Join(dir, "dobrobot.db") + `}
tracker: {kind: file, file: tickets.yaml, url: https://jira.example.com}
roles: {approvers: [U0APPROVER], admins: [U0ADMIN]}
components: [backend]
`
	for name, data := range map[string]string{"tickets.yaml": "tickets: []\n", "dobrobot.yaml": body} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "SLACK_APP_TOKEN="+fakeslack.AppToken, "SLACK_BOT_TOKEN="+fakeslack.BotToken,
		"DOBROBOT_CONFIG="+cfg)
	p := startProc(t, "a", bin, env, "run")
	const warning = `"level":"error"`
	if !waitFor(20*time.Second, func() bool {
		for _, l := range strings.Split(p.logs.String(), "\n") {
			if strings.Contains(l, warning) && strings.Contains(l, "another connection to this Slack app is open") && strings.Contains(l, "stop the other") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("the bot did not log at error level that another process holds a connection to the app")
	}
	if strings.Contains(p.logs.String(), "other connections to this Slack app are open") {
		t.Errorf("the bot explained another process's connection away")
	}
	p.stop()
}
