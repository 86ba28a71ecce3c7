// Package audit writes the audit log out and checks it, for the verbs of
// cmd/dobrobot and for the admin socket of a running bot: Export streams it
// as JSON lines or CSV, Verify checks the chain and the state it replays to.
package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dobrobot/dobrobot/commands"
)

// Export writes the entries of s matching f to out as JSON lines ("jsonl")
// or CSV ("csv").
func Export(ctx context.Context, s commands.Store, f commands.AuditFilter, format string, out io.Writer) error {
	w := bufio.NewWriterSize(out, 64*1024)
	var write func(commands.AuditEntry) error
	flush := func() error { return nil }
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(commands.AuditColumns); err != nil {
			return err
		}
		write = func(e commands.AuditEntry) error {
			rec := e.Record()
			for i := range rec {
				rec[i] = neutraliseCell(rec[i])
			}
			return cw.Write(rec)
		}
		flush = func() error { cw.Flush(); return cw.Error() }
	default:
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		var line []byte
		write = func(e commands.AuditEntry) error {
			var ok bool
			if line, ok = AppendLine(line[:0], e); !ok {
				return enc.Encode(e) // encoding/json says what is wrong with it
			}
			_, err := w.Write(line)
			return err
		}
	}
	if err := s.Audit(ctx, f, write); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	return w.Flush()
}

// neutraliseCell keeps a spreadsheet from reading a CSV cell as a formula:
// a cell starting with =, +, -, @, a tab or a carriage return gets a
// leading single quote (OWASP's advice on CSV injection), which
// spreadsheets show as text. JSON lines are never changed; docs/audit.md
// says how to re-verify a CSV export (strip the quote) or to use JSON lines.
func neutraliseCell(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// Verify checks the whole chain of s, replays it against the stored state
// and, with against set, looks for that checkpoint in it. It returns the
// head it checked.
func Verify(ctx context.Context, s commands.Store, against *commands.Checkpoint) (commands.Checkpoint, error) {
	head, err := commands.VerifyStore(ctx, s, against)
	if err != nil {
		if Tampered(err) {
			return head, fmt.Errorf("audit verify: %w", err)
		}
		return head, fmt.Errorf("audit verify: reading the log: %w", err)
	}
	return head, nil
}

// Tampered reports whether err says the database disagrees with itself or
// with a checkpoint (rather than that it could not be read).
func Tampered(err error) bool {
	var (
		ce *commands.ChainError
		pe *commands.ProjectionError
		ke *commands.CheckpointError
	)
	return errors.As(err, &ce) || errors.As(err, &pe) || errors.As(err, &ke)
}
