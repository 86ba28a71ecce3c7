package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dobrobot/dobrobot/commands/failpoint"
)

// The CI intake's core: a delivery verified and parsed by the HTTP side
// (cmd/internal/intake) becomes a Build, and Service.Build decides what it
// does. The delivery is recorded in the inbox under its ID (Build.Delivery),
// together with the answer it was given, in the same transaction as its
// effects: a redelivery finds it and gets the same answer, also after a
// restart. See docs/architecture.md, "The CI intake (issue 15)".

// ActorCI is who acts for a CI delivery: the audit's actor, and the
// requester of a release CI opened. It is no chat user: nothing is sent to
// it, and it is shown as "CI".
const ActorCI = "ci"

// ActionBuild records a build CI reported on a release (status, version,
// commit); the release's state does not change.
const ActionBuild Action = "build"

// BuildStatus is what CI says of a build.
type BuildStatus string

// The statuses of a build.
const (
	BuildSuccess BuildStatus = "success"
	BuildFailure BuildStatus = "failure"
	BuildPending BuildStatus = "pending"
)

// Build is one CI delivery, verified and parsed by the intake.
type Build struct {
	Delivery   string // the inbox event ID: "builds:" + id, or "github:" + X-GitHub-Delivery
	BodyHash   string // lowercase hex SHA-256 of the raw body: the same Delivery with another body is refused
	Source     string // "builds" or "github"
	ID         string // CI's build ID
	Ticket     string // already extracted (from the body, the branch or the commit message); "" = none found
	Env        string // "" = the first environment (SPEC)
	Components []string
	Version    string
	Commit     string
	Branch     string
	URL        string // link to the CI run (shown on the card if http(s))
	Status     BuildStatus
	Received   time.Time
}

// BuildOutcome is the core's answer class; the intake maps it to HTTP.
type BuildOutcome string

// The outcomes of a Build.
const (
	BuildChanged BuildOutcome = "changed" // 202: a release was created or changed
	BuildSeen    BuildOutcome = "seen"    // 200: this Delivery was answered before: First is that answer
	BuildRefused BuildOutcome = "refused" // 422: Reason
	BuildInvalid BuildOutcome = "invalid" // 400: Reason
)

// BuildAnswer is the core's answer to a Build.
type BuildAnswer struct {
	Outcome BuildOutcome `json:"outcome"`
	Release uint64       `json:"release,omitempty"`
	State   State        `json:"state,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	// First is the answer given the first time, for BuildSeen (the intake
	// repeats its code and body).
	First *BuildAnswer `json:"first,omitempty"`
}

// CIStatus is the last build CI reported for a release.
type CIStatus struct {
	Status  BuildStatus `json:"status"`
	Build   string      `json:"build,omitempty"` // CI's build ID
	Version string      `json:"version,omitempty"`
	Commit  string      `json:"commit,omitempty"`
	URL     string      `json:"url,omitempty"`
	At      time.Time   `json:"at"`
}

// buildMarker starts the Text of the inbox record of a CI delivery: the
// rest is its buildRecord, as JSON. Slack event IDs never look like a
// delivery's ("builds:…", "github:…"), and the record is stored processed,
// so that nothing replays it as a command.
const buildMarker = "dobrobot:build "

// buildRecord is what the inbox keeps of a delivery: the body's hash, to
// refuse the same delivery ID with another body, and the first answer.
type buildRecord struct {
	BodyHash string      `json:"body_hash"`
	Answer   BuildAnswer `json:"answer"`
}

// Build handles one CI delivery: EUNAVAILABLE (tracker unreachable, store
// unavailable, or this instance does not lead on PostgreSQL) means nothing
// was stored: the intake answers 503 with Retry-After. Any other error is
// EINTERNAL (500).
func (s *Service) Build(ctx context.Context, b Build) (BuildAnswer, error) {
	if !cleanField(b.Delivery, maxDelivery) {
		// Not even a key to store the answer under: answered, not stored.
		return BuildAnswer{Outcome: BuildInvalid, Reason: fmt.Sprintf("the delivery ID must be 1 to %d bytes of printable UTF-8", maxDelivery)}, nil
	}
	if b.Received.IsZero() {
		b.Received = s.now()
	}
	// A redelivery costs no tracker lookup; the transaction checks again.
	var seen *BuildAnswer
	err := s.cfg.Store.View(ctx, func(tx Tx) error {
		var err error
		seen, err = seenBuild(tx, b)
		return err
	})
	if err != nil {
		return BuildAnswer{}, fmt.Errorf("build %s: %w", b.Delivery, err)
	}
	if seen != nil {
		return *seen, nil
	}
	env, fixed := s.judgeBuild(b)
	var pre prepared
	if fixed == nil && b.Status == BuildSuccess {
		// The tracker and the groups are asked outside any transaction.
		pre.ticket, pre.ticketErr = s.cfg.Tracker.Ticket(ctx, b.Ticket)
		switch ErrorCode(pre.ticketErr) {
		case "", ENOTFOUND, EINVALID:
		case EFORBIDDEN:
			// The tracker refuses the bot, not the ticket: nothing is
			// stored, so that CI's retry passes once it is fixed.
			s.alertTracker(ctx, pre.ticketErr)
			return BuildAnswer{}, Errorf(EUNAVAILABLE, "The tracker rejects dobrobot's credentials: %s not judged, retry later.", b.Ticket)
		default:
			s.cfg.Log.Error().Err(pre.ticketErr).Str("ticket", b.Ticket).Msg("tracker lookup failed for a CI build")
			return BuildAnswer{}, Errorf(EUNAVAILABLE, "Could not reach the tracker: %s not judged, retry later.", b.Ticket)
		}
		pre.approvers = s.expand(ctx, env.Approvers)
		pre.admins = map[string][]string{env.Name: s.expand(ctx, env.Admins)}
	}
	var ans BuildAnswer
	var after []func()
	err = s.cfg.Store.Update(ctx, func(tx Tx) error {
		if prev, err := seenBuild(tx, b); err != nil {
			return err
		} else if prev != nil {
			ans, after = *prev, nil
			return nil
		}
		r := &cmdRun{s: s, tx: tx, now: s.now(), pre: pre, src: SourceCI,
			m:   Message{EventID: b.Delivery, User: ActorCI, Time: b.Received},
			cmd: Command{Verb: VerbDobro, Ticket: b.Ticket, Env: env.Name}}
		if fixed != nil {
			ans = *fixed
		} else {
			var err error
			if ans, err = r.build(b, env); err != nil {
				return err
			}
		}
		rec, err := json.Marshal(buildRecord{BodyHash: b.BodyHash, Answer: ans})
		if err != nil {
			return err
		}
		m := r.m
		m.Text = buildMarker + string(rec)
		if err := tx.PutEvent(InboxEvent{ID: b.Delivery, Message: m, Received: r.now, Processed: true}); err != nil {
			return err
		}
		after = r.after
		if err := r.flush(); err != nil {
			return err
		}
		failpoint.Hit(failpoint.BeforeBuildCommit)
		return nil
	})
	if err != nil {
		return BuildAnswer{}, fmt.Errorf("build %s: %w", b.Delivery, err)
	}
	failpoint.Hit(failpoint.AfterBuildCommitBeforeAnswer)
	s.notify()
	for _, f := range after {
		f()
	}
	return ans, nil
}

// seenBuild returns the answer to b when its delivery was recorded before:
// BuildSeen with the first answer for the same body, BuildRefused for
// another; nil when it was not.
func seenBuild(tx Tx, b Build) (*BuildAnswer, error) {
	ev, ok, err := tx.Event(b.Delivery)
	if err != nil || !ok {
		return nil, err
	}
	var rec buildRecord
	text, isBuild := strings.CutPrefix(ev.Message.Text, buildMarker)
	if !isBuild || json.Unmarshal([]byte(text), &rec) != nil {
		return &BuildAnswer{Outcome: BuildRefused, Reason: "this delivery ID was used by another event"}, nil
	}
	if rec.BodyHash != b.BodyHash {
		return &BuildAnswer{Outcome: BuildRefused, Reason: "this delivery was received before with another body"}, nil
	}
	return &BuildAnswer{Outcome: BuildSeen, Release: rec.Answer.Release, State: rec.Answer.State, Reason: rec.Answer.Reason, First: &rec.Answer}, nil
}

// judgeBuild returns b's environment, and the answer to b when it is
// settled without the tracker or the store: invalid, or refused for its
// environment or components.
func (s *Service) judgeBuild(b Build) (EnvPolicy, *BuildAnswer) {
	invalid := func(f string, args ...any) (EnvPolicy, *BuildAnswer) {
		return EnvPolicy{}, &BuildAnswer{Outcome: BuildInvalid, Reason: fmt.Sprintf(f, args...)}
	}
	switch {
	case b.ID == "":
		return invalid("id is required")
	case !cleanField(b.ID, maxBuildField):
		return invalid("id must be at most %d bytes of printable UTF-8", maxBuildField)
	case b.Version != "" && !ValidBuild(b.Version):
		return invalid("version needs a version like 2.4.0 or v2.4.0-rc.1 (letters, digits, . _ + -, at most 128), not %q", b.Version)
	case b.Commit != "" && !cleanField(b.Commit, maxBuildField):
		return invalid("commit must be at most %d bytes of printable UTF-8", maxBuildField)
	case b.URL != "" && !cleanField(b.URL, maxBuildURL):
		return invalid("url must be at most %d bytes of printable UTF-8", maxBuildURL)
	case b.Status != BuildSuccess && b.Status != BuildFailure && b.Status != BuildPending:
		return invalid("status must be success, failure or pending, not %q", b.Status)
	case b.Ticket == "":
		return invalid("no ticket: give ticket, or a branch that names one")
	case !ValidTicket(b.Ticket):
		return invalid("%q is not a ticket key (like PAY-123)", b.Ticket)
	}
	name := b.Env
	if name == "" {
		name = s.cfg.Policy.Envs[0].Name
	}
	env, ok := s.cfg.Policy.Env(name)
	if !ok || (!s.envConfigured() && b.Env != "") {
		return EnvPolicy{}, &BuildAnswer{Outcome: BuildRefused, Reason: fmt.Sprintf("unknown environment %q (known: %s)", b.Env, strings.Join(s.cfg.Policy.EnvNames(), ", "))}
	}
	for _, c := range b.Components {
		if !containsFold(env.Components, c) {
			return env, &BuildAnswer{Outcome: BuildRefused, Reason: fmt.Sprintf("%s is not a component of %s (known: %s)", c, env.Name, strings.Join(env.Components, ", "))}
		}
	}
	return env, nil
}

// The longest delivery ID, build ID or commit, and CI run link, a build
// may carry: they are stored on the release, in the audit and as keys.
const (
	maxDelivery   = 256
	maxBuildField = 128
	maxBuildURL   = 2048
)

// cleanField reports whether s is 1 to max bytes of UTF-8 without a
// control or bidirectional character (see Neutralise).
func cleanField(s string, max int) bool {
	return s != "" && len(s) <= max && utf8.ValidString(s) && strings.IndexFunc(s, unsafeRune) < 0
}

// ciBlocks refuses dep start of rel while the last build CI reported on it
// is not a success, when the release came from CI or carries the version
// CI reported.
func ciBlocks(rel Release) error {
	ci := rel.CI
	if ci == nil || ci.Status == BuildSuccess || (rel.Requester != ActorCI && ci.Version != rel.Build) {
		return nil
	}
	what := "the build"
	if ci.Version != "" {
		what += " of " + versionText(ci.Version)
	}
	return Errorf(ECONFLICT, "%s cannot start: CI says %s is %s (build %s%s). Wait for a successful build.", rel.Ticket, what, ci.Status, ci.Build, ciLink(ci))
}

// ciLink is ", <url>" for a CI run's http(s) link that is safe to show, or "".
func ciLink(ci *CIStatus) string {
	if !SafeURL(ci.URL) {
		return ""
	}
	return ", " + ci.URL
}

// SafeURL reports whether u is an http(s) link with nothing that could
// break out of a link or hide what it shows: only such a link of a CI run
// is shown, by the core and by the chat adapters.
func SafeURL(u string) bool {
	return (strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) &&
		!strings.ContainsAny(u, "<>|& \t\n\"'") && strings.IndexFunc(u, unsafeRune) < 0
}

// BuildText is what a card shows of the build CI reported on r: version,
// commit, status and link; nil when CI reported none.
func BuildText(r Release) Text {
	ci := r.CI
	if ci == nil {
		return nil
	}
	t := say("CI build %s: %s", ci.Build, strings.ToUpper(string(ci.Status)))
	if ci.Version != "" {
		t = t.say(" · version %s", ci.Version)
	}
	if ci.Commit != "" {
		t = t.say(" · commit %v", Code(shortCommit(ci.Commit)))
	}
	if SafeURL(ci.URL) {
		t = t.say(" · %s", ci.URL)
	}
	return t
}

// shortCommit is a commit's first 12 characters, as GitHub shows them.
func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
