package commands

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// commentTries bounds the attempts at one comment.
const commentTries = 3

// comment returns a function, run after the commit, that writes a comment on
// the ticket when phase is in CommentOn and the Service has a Commenter. It
// retries in the background, every CommentRetry, and only logs a failure;
// the Service's HookContext ends its retries, so that a shutdown does not
// wait for them.
func (s *Service) comment(ticket string, phase Phase, actor string, at time.Time) func() {
	return func() {
		c := s.cfg.Commenter
		if c == nil || !slices.Contains(s.cfg.CommentOn, phase) {
			return
		}
		verb := map[Phase]string{PhaseStart: "started", PhaseFinish: "finished"}[phase]
		text := fmt.Sprintf("dobrobot: release %s by user %s at %s.", verb, actor, s.clockAt(at, layoutDate))
		pause := s.cfg.CommentRetry
		if pause <= 0 {
			pause = 30 * time.Second
		}
		s.hooks.Add(1)
		go func() {
			defer s.hooks.Done()
			ctx := s.hookContext()
			log := s.cfg.Log.With().Str("ticket", ticket).Str("phase", string(phase)).Logger()
			tries := 0
			_, err := backoff.Retry(ctx, func() (struct{}, error) {
				tries++
				err := c.Comment(ctx, ticket, text)
				if err != nil && tries < commentTries {
					log.Warn().Err(err).Int("attempt", tries).Msg("could not comment on the ticket; retrying")
				}
				return struct{}{}, err
			}, backoff.WithBackOff(backoff.NewConstantBackOff(pause)), backoff.WithMaxTries(commentTries), backoff.WithMaxElapsedTime(0))
			if err != nil {
				log.Error().Err(err).Int("attempts", tries).Msg("could not comment on the ticket; giving up (the release is not affected)")
				return
			}
			log.Info().Msg("commented on the ticket")
		}()
	}
}

// hookContext is the context of the work the Service does in the
// background: hooks and comments. It ends when HookContext does.
func (s *Service) hookContext() context.Context {
	if s.cfg.HookContext == nil {
		return context.Background()
	}
	return s.cfg.HookContext
}
