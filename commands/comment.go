package commands

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// comment returns a function, run after the commit, that writes a comment on
// the ticket when phase is in CommentOn and the tracker can take one. It
// retries in the background and only logs a failure.
func (s *Service) comment(ticket string, phase Phase, actor string, at time.Time) func() {
	return func() {
		c, ok := s.Tracker.(Commenter)
		if !ok || !slices.Contains(s.CommentOn, phase) {
			return
		}
		verb := map[Phase]string{PhaseStart: "started", PhaseFinish: "finished"}[phase]
		text := fmt.Sprintf("dobrobot: release %s by Slack user %s at %s.", verb, actor, at.UTC().Format("2006-01-02 15:04 MST"))
		pause := s.CommentRetry
		if pause <= 0 {
			pause = 30 * time.Second
		}
		s.hooks.Add(1)
		go func() {
			defer s.hooks.Done()
			log := s.Log.With().Str("ticket", ticket).Str("phase", string(phase)).Logger()
			const attempts = 3
			for i := 1; ; i++ {
				err := c.Comment(context.Background(), ticket, text)
				if err == nil {
					log.Info().Msg("commented on the ticket")
					return
				}
				if i == attempts {
					log.Error().Err(err).Int("attempts", i).Msg("could not comment on the ticket; giving up (the release is not affected)")
					return
				}
				log.Warn().Err(err).Int("attempt", i).Msg("could not comment on the ticket; retrying")
				time.Sleep(pause)
			}
		}()
	}
}
