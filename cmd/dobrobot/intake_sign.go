package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dobrobot/dobrobot/cmd/internal/intake"
)

// IntakeCmd groups the intake's helpers.
type IntakeCmd struct {
	Sign IntakeSignCmd `cmd:"" help:"Print the X-Dobrobot-Timestamp and X-Dobrobot-Signature headers for the body on standard input, to try a CI script by hand."`
}

// IntakeSignCmd signs a POST /builds body.
type IntakeSignCmd struct {
	Secret string `help:"The intake.secret (default: $DOBROBOT_INTAKE_SECRET, which keeps it out of the process list)." placeholder:"SECRET"`
	At     int64  `help:"Sign as of these Unix seconds instead of now." placeholder:"SECONDS"`
}

// Run reads the body from standard input and prints the two headers.
func (cmd IntakeSignCmd) Run(a *app) error {
	secret := cmd.Secret
	if secret == "" {
		secret = a.getenv("DOBROBOT_INTAKE_SECRET")
	}
	if secret == "" {
		return usagef("intake sign needs the secret: --secret or DOBROBOT_INTAKE_SECRET")
	}
	body, err := io.ReadAll(io.LimitReader(a.stdin, intake.MaxBody+1))
	if err != nil {
		return fmt.Errorf("intake sign: reading the body: %w", err)
	}
	if len(body) > intake.MaxBody {
		return usagef("intake sign: the body is over 1 MiB, and the intake refuses it (413)")
	}
	if _, err := intake.DecodeReport(body); err != nil {
		return usageError{errors.New("intake sign: the intake would answer 400: " + err.Error())}
	}
	at := time.Now()
	if cmd.At != 0 {
		at = time.Unix(cmd.At, 0)
	}
	ts, sig := intake.Sign(secret, at, body)
	fmt.Fprintf(a.stdout, "%s: %s\n%s: %s\n", intake.TimestampHeader, ts, intake.SignatureHeader, sig)
	return nil
}
