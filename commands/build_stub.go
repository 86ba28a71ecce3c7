package commands

import (
	"context"
	"time"
)

// This file is intakehttp's stand-in for the core's side of the CI intake
// contract (CONTRACTS15.md): the types, and a Build that refuses every
// delivery as unavailable. intakecore's commands/build.go replaces it; the
// lead drops this file at the merge.

// BuildStatus is what CI says of a build.
type BuildStatus string

// The build statuses CI may report.
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

// The core's answer classes.
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
	// First is the answer given the first time, for BuildSeen (the intake repeats its code and body).
	First *BuildAnswer `json:"first,omitempty"`
}

// Build handles one CI delivery. The stand-in stores nothing and answers
// EUNAVAILABLE, so the intake answers 503 and CI retries.
func (s *Service) Build(ctx context.Context, b Build) (BuildAnswer, error) {
	return BuildAnswer{}, Errorf(EUNAVAILABLE, "the CI intake's core is not built yet")
}
