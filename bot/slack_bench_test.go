package bot

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/bot/fakeslack"
	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// BenchmarkMentions is the Slack path in one process, for profiling what
// make bench measures on the real binary (cmd/dobrobench): b.N mentions, each
// from its own user, sent to the bot over fakeslack in one burst, or at
// figure 2's steady 200 a second; it ends when every one is acked and
// answered. One in ten requests a release (a card, a DM to the approver, a
// reply); the others ask for the queue of 20 releases or for one's status
// (a reply).
func BenchmarkMentions(b *testing.B) {
	b.Run("burst", func(b *testing.B) { benchMentions(b, 0) })
	b.Run("steady", func(b *testing.B) { benchMentions(b, 5*time.Millisecond) })
}

// benchMentions sends one mention every gap (all at once if 0).
func benchMentions(b *testing.B, gap time.Duration) {
	fs := fakeslack.New(b)
	db, err := storage.Open(filepath.Join(b.TempDir(), "dobrobot.db"))
	if err != nil {
		b.Fatal(err)
	}
	bot := &Slack{AppToken: fakeslack.AppToken, BotToken: fakeslack.BotToken, APIURL: fs.URL, Channel: releaseChannel,
		Store: db, Log: zerolog.Nop(), ShutdownTimeout: time.Second}
	// As cmd wires it: the Service wakes the bot's sender after each commit
	// (without Notify the sender only finds replies on its next poll).
	svc := commands.NewService(commands.Config{Store: db, Tracker: &testTracker{}, Log: zerolog.Nop(), Notify: bot.Notify,
		Groups: bot.Groups(), Policy: commands.Policy{
			Approvers: []string{bob}, Admins: []string{adm}, Components: []string{"backend"}, Channel: releaseChannel}})
	bot.Service = svc
	ctx := context.Background()
	for i := range 20 {
		m := commands.Message{EventID: fmt.Sprintf("EvSEED%02d", i), User: ann, Channel: releaseChannel, Via: commands.ViaMention,
			Text: fmt.Sprintf("dobro QUEUED-%d", i+1)}
		if err := svc.Handle(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	pending, err := db.Pending(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range pending {
		if err := db.Delivered(ctx, e.ID); err != nil {
			b.Fatal(err)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bot.Run(runCtx) }()
	defer func() {
		stop()
		<-done
		svc.Wait()
		db.Close()
	}()
	if err := fs.WaitConnections(1, 1, 5*time.Second); err != nil {
		b.Fatal(err)
	}

	envs := make([]fakeslack.Envelope, b.N)
	for i := range envs {
		text := "queue"
		switch {
		case i%10 == 0:
			text = fmt.Sprintf("dobro LOAD-%d no_need_admin", i+1)
		case i%2 == 0:
			text = fmt.Sprintf("status QUEUED-%d", i%20+1)
		}
		envs[i] = fs.EventEnvelope(fakeslack.Mention(fmt.Sprintf("U0B%07d", i), releaseChannel, text))
	}
	acks, replies := len(fs.Acks()), len(fs.Calls("chat.postEphemeral"))
	b.ResetTimer()
	cpu0 := processCPU()
	ids := make([]string, len(envs))
	start := time.Now()
	for i, env := range envs {
		if gap > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * gap)))
		}
		sent, err := fs.Send(env)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = sent.EnvelopeID
	}
	if !fs.WaitFor(time.Duration(b.N)*20*time.Millisecond+10*time.Second, func(st fakeslack.State) bool {
		return len(st.Acks) >= acks+b.N && st.Count("chat.postEphemeral") >= replies+b.N
	}) {
		b.Fatalf("not every mention was acked and answered: %d acks, %d replies of %d", len(fs.Acks())-acks,
			len(fs.Calls("chat.postEphemeral"))-replies, b.N)
	}
	b.StopTimer()
	// The process's CPU, fakeslack's included: wall time is mostly the
	// commits' fsyncs, which a change to the code does not move.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	var lat []time.Duration
	for _, id := range ids {
		if d, ok := fs.AckLatency(id); ok {
			lat = append(lat, d)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "ack-p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "ack-p99-µs")
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMrkdwnText renders a text shaped like a queue reply of 20
// releases (about two hundred spans) as Slack mrkdwn.
func BenchmarkMrkdwnText(b *testing.B) {
	t := commands.Text{commands.Plain("Queue (20 open):")}
	for i := range 20 {
		r := commands.Release{Ticket: fmt.Sprintf("PAY-%d", i+1), URL: fmt.Sprintf("https://jira.example/browse/PAY-%d", i+1)}
		t = append(t, commands.Plain(fmt.Sprintf("\n%d. ", i+1)), commands.TicketRef(r),
			commands.Plain(" — accepted — requester "), commands.Person("U0REQ"), commands.Plain(", approver "),
			commands.Person("U0APP"), commands.Plain(", admin: needed, components "), commands.Component("backend"),
			commands.Plain(" — waiting 12 min"))
	}
	t = append(t, commands.Plain("\nLocks:"))
	for range 20 {
		t = append(t, commands.Plain("\n• "), commands.Component("backend"), commands.Plain(" is locked by PAY-1 (dep start 3 min ago by "),
			commands.Person("U0REQ"), commands.Plain(")"))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = mrkdwnText(t)
	}
}
