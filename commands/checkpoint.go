package commands

import (
	"context"
	"fmt"
)

// CheckpointText is the message that posts a checkpoint to the release
// channel.
func CheckpointText(cp Checkpoint) string {
	return fmt.Sprintf("Audit checkpoint: seq %d, hash %s (check a copy with: dobrobot audit verify --checkpoint %s)", cp.Seq, cp.Hash, cp)
}

// Checkpoint posts the audit chain's head to the release channel (an
// EffectPost through the outbox), so that a copy of it lives outside the
// database: a later rewrite of the chain up to it no longer matches it. The
// bot calls it at each start and every day. It writes no audit entry: an
// entry would change the head it posts, so that two checkpoints of an idle
// log would never match, and it records nothing the chain does not hold.
// An empty log has no head to post; it returns the zero Checkpoint.
func (s *Service) Checkpoint(ctx context.Context) (Checkpoint, error) {
	var cp Checkpoint
	err := s.Store.Update(ctx, func(tx Tx) error {
		var err error
		if cp.Seq, cp.Hash, err = tx.AuditHead(); err != nil || cp.Seq == 0 {
			return err
		}
		_, err = tx.Emit(Effect{Kind: EffectPost, Text: CheckpointText(cp)})
		return err
	})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	if cp.Seq == 0 {
		return Checkpoint{}, nil
	}
	s.Log.Info().Uint64("seq", cp.Seq).Str("hash", cp.Hash).Msg("audit checkpoint posted to the release channel")
	s.notify()
	return cp, nil
}
