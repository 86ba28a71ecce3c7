package commands

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"
)

// The retry policy of a hook result whose commit failed: 100 ms, doubling,
// at most 30 s between tries, with no overall limit (the result must not be
// lost while the bot runs).
const (
	resultRetryFirst = 100 * time.Millisecond
	resultRetryMax   = 30 * time.Second
)

// heldResult is a hook's result that could not be committed yet: kept in
// memory and recorded again until it lands or an admin's command records it.
type heldResult struct {
	hr   HookRun
	res  HookResult
	stop context.CancelFunc // ends the retries

	mu      sync.Mutex
	cause   error // the last failed commit's error
	settled bool  // an admin's command recorded it
}

// outcome says how the hook ended, as the end of a sentence.
func (p *heldResult) outcome() string {
	if p.res.OK {
		return "it succeeded"
	}
	return "it failed (" + p.res.Error + ")"
}

// text says, for a person who asked to change the release, that the hook
// has ended and why its result is not recorded yet.
func (p *heldResult) text(ticket string, now time.Time) Text {
	p.mu.Lock()
	cause := p.cause
	p.mu.Unlock()
	ended := "succeeded"
	if !p.res.OK {
		ended = "failed (" + p.res.Error + ")"
	}
	return say("The %s hook of %s ended and %s %s, but its result could not be recorded yet (%s): dobrobot keeps retrying.",
		p.hr.Phase, ticket, ended, since(now, p.res.Ended), ErrorMessage(cause))
}

func (p *heldResult) isSettled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.settled
}

// heldResult returns the held result of hook attempt a, if there is one.
func (s *Service) heldResult(a string) (*heldResult, bool) {
	v, ok := s.held.Load(a)
	if !ok {
		return nil, false
	}
	return v.(*heldResult), true
}

// settled is called after an admin's command committed p: the retries stop.
func (s *Service) settled(p *heldResult) {
	p.mu.Lock()
	p.settled = true
	p.mu.Unlock()
	s.held.CompareAndDelete(p.hr.Attempt, p)
	p.stop()
}

// keepRecording records a hook's result. When the commit fails (a full
// disk, a lost database), the result is kept in memory and recorded again
// with exponential backoff until it lands, an admin's command records it,
// or ctx (the Service's HookContext) ends: then the result is lost and a
// restart calls the hook's outcome unknown, as it does for a hook it finds
// running.
//
// With Config.HandIn the retries go on for handInWindow after ctx ends: the
// Service's HookContext ends when this instance loses the leadership, and a
// deposed instance still hands in the result of a hook that ended (see
// recordHook).
func (s *Service) keepRecording(ctx context.Context, log zerolog.Logger, id uint64, hr HookRun, res HookResult) {
	if s.cfg.HandIn != nil {
		var cancel context.CancelFunc
		ctx, cancel = outlive(ctx, handInWindow)
		defer cancel()
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	p := &heldResult{hr: hr, res: res, stop: stop}
	defer s.held.CompareAndDelete(hr.Attempt, p)
	tries := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		if p.isSettled() {
			return struct{}{}, backoff.Permanent(errSettled)
		}
		tries++
		err := s.recordHook(id, hr, res)
		switch {
		case err == nil:
			return struct{}{}, nil
		case errors.Is(err, errNotCurrent), ErrorCode(err) == ENOTFOUND:
			return struct{}{}, backoff.Permanent(err)
		}
		p.mu.Lock()
		p.cause = err
		p.mu.Unlock()
		// Held from the first failure on: commands on the release now say
		// so, and an admin's records it.
		s.held.Store(hr.Attempt, p)
		if tries == 1 {
			log.Error().Err(err).Msg("could not record the hook's result; keeping it and retrying until it lands")
		} else {
			log.Warn().Err(err).Int("tries", tries).Msg("could not record the hook's result yet")
		}
		return struct{}{}, err
	}, backoff.WithBackOff(s.resultBackOff()), backoff.WithMaxElapsedTime(0))
	switch {
	case err == nil && tries > 1:
		log.Info().Int("tries", tries).Msg("recorded the hook's result after retrying")
	case err == nil:
	case p.isSettled():
		log.Info().Msg("an admin's command recorded the held hook result")
	case errors.Is(err, errNotCurrent):
		log.Warn().Err(err).Bool("ok", res.OK).Msg("hook result refused, nothing changed: the release no longer waits for this attempt (an admin's command recorded it, another attempt ran, or the release moved on after a recovery called it unknown)")
	default:
		log.Error().Err(err).Int("tries", tries).Bool("ok", res.OK).Msg("gave up recording the hook's result (shutting down): it is lost, and a restart will call its outcome unknown")
	}
}

// handInWindow is how long an instance keeps trying to record a hook's
// result after its HookContext ended (it lost the leadership), with
// Config.HandIn. It stays under the grace a deposed instance gives its
// Service to end (cmd/dobrobot's hookGrace).
const handInWindow = 30 * time.Second

// outlive returns a context with ctx's values that ends d after ctx ends,
// or when cancel is called.
func outlive(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(d, cancel)
		context.AfterFunc(out, func() { t.Stop() })
	})
	return out, func() { stop(); cancel() }
}

// resultBackOff returns the retry policy of one held result.
func (s *Service) resultBackOff() backoff.BackOff {
	if s.cfg.ResultBackOff != nil {
		return s.cfg.ResultBackOff()
	}
	return &backoff.ExponentialBackOff{InitialInterval: resultRetryFirst, Multiplier: 2, MaxInterval: resultRetryMax}
}
