package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/slack-go/slack"

	"github.com/dobrobot/dobrobot/commands"
)

// Exporter writes the audit entries f selects to w in format (csv or
// jsonl), streaming them: what `dobrobot audit export` writes. The bot is
// given one (cmd/internal/audit's Export over its store) so that an admin's
// audit command gets the same bytes as the command line.
type Exporter func(ctx context.Context, f commands.AuditFilter, format string, w io.Writer) error

// uploadTimeout bounds one upload of an audit export: a large log takes
// longer than a message.
const uploadTimeout = 10 * time.Minute

// uploadClient returns the client for uploads: hc's transport without its
// overall timeout (30 s by default, which a large file outlasts); each
// upload is bounded by uploadTimeout instead.
func uploadClient(hc *http.Client) *http.Client {
	return &http.Client{Transport: hc.Transport, CheckRedirect: hc.CheckRedirect, Jar: hc.Jar}
}

// file uploads the audit export e asks for into the bot's DM with e.User,
// with files upload v2 (files.getUploadURLExternal, the POST of the bytes,
// files.completeUploadExternal), always there whatever channel the command
// came from: the log goes to the admin alone. Slack wants the length
// before the bytes, so the export is first streamed to a temporary file
// (removed at once; the open file is all there is) and then streamed from
// it: memory stays bounded however long the log. Every attempt exports
// anew. An export that cannot be written is told to the admin and not
// retried.
func (s *sender) file(ctx context.Context, key string, e commands.Effect) error {
	if e.Export == nil {
		return permanentError{errors.New("a file effect without an export")}
	}
	ch, err := s.dmChannel(ctx, key, e.User)
	if err != nil {
		return err
	}
	if s.export == nil {
		s.log.Error().Str("user", e.User).Msg("an audit export was asked for, but this bot was built without an exporter")
		_, err := s.post(ctx, key, e, ch, "", "This bot cannot export the audit log: use `dobrobot audit export` on its host.", nil)
		return err
	}
	f, size, err := s.spool(ctx, *e.Export)
	if f != nil {
		defer func() {
			f.Close()
			os.Remove(f.Name()) // where an open file cannot be removed (Windows)
		}()
	}
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		s.log.Error().Err(err).Str("user", e.User).Msg("could not export the audit log")
		_, perr := s.post(ctx, key, e, ch, "", "Could not export the audit log: "+escape(err.Error())+". Nothing was sent; try again, or use `dobrobot audit export` on the bot's host.", nil)
		return perr
	}
	if size == 0 {
		_, err := s.post(ctx, key, e, ch, "", effectText(e)+"\nNo entry matches: there is nothing to send.", nil)
		return err
	}
	name := e.Export.FileName(time.Now())
	err = s.callWithin(ctx, key, "files.upload", true, uploadTimeout, func(ctx context.Context) error {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return permanentError{fmt.Errorf("rewinding the export: %w", err)}
		}
		_, err := s.files.UploadFileContext(ctx, slack.UploadFileParameters{
			Reader: f, FileSize: int(size), Filename: name, Title: name,
			InitialComment: effectText(e), Channel: ch,
		})
		return err
	})
	if err == nil || classify(err) != errPermanent {
		return err
	}
	// Refused for good (most often missing_scope: an app installed before
	// files:write): the admin hears why rather than nothing.
	s.log.Error().Err(err).Str("user", e.User).Msg("Slack refused the upload of an audit export")
	why := slackCode(err)
	if why == "" {
		why = err.Error()
	}
	_, perr := s.post(ctx, key, e, ch, "", "Slack refused the upload of the audit log ("+escape(why)+
		"): ask whoever manages the Slack app to update it (docs/slack.md, Updating an installed app), or use `dobrobot audit export` on the bot's host.", nil)
	return perr
}

// spool streams the export to a temporary file and returns it, with its
// size; the file is removed from its directory at once where the system
// allows (it lives on while open), so that nothing is left behind.
func (s *sender) spool(ctx context.Context, x commands.AuditExport) (*os.File, int64, error) {
	f, err := os.CreateTemp("", "dobrobot-audit-*."+x.Format)
	if err != nil {
		return nil, 0, fmt.Errorf("creating a temporary file: %w", err)
	}
	_ = os.Remove(f.Name())
	if err := s.export(ctx, x.Filter(), x.Format, f); err != nil {
		return f, 0, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return f, 0, fmt.Errorf("sizing the export: %w", err)
	}
	return f, size, nil
}
