package commands

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Checkpoint names one entry of the audit chain by its seq and hash. Posted
// where the database's users can read it (the release channel), it lets
// anyone check later that the chain was not rewritten up to it.
type Checkpoint struct {
	Seq  uint64
	Hash string
}

// String returns "SEQ:HASH", the form ParseCheckpoint reads.
func (c Checkpoint) String() string { return strconv.FormatUint(c.Seq, 10) + ":" + c.Hash }

// ParseCheckpoint reads "SEQ:HASH": a seq of 1 or more and a 64-digit hex
// hash (upper case is accepted and lowered).
func ParseCheckpoint(s string) (Checkpoint, error) {
	seqText, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if !ok || err != nil || seq == 0 {
		return Checkpoint{}, Errorf(EINVALID, "checkpoint %q: want SEQ:HASH, e.g. 42:%s (SEQ a number from 1)", s, strings.Repeat("ab", 32))
	}
	hash = strings.ToLower(hash)
	if b, err := hex.DecodeString(hash); err != nil || len(b) != 32 {
		return Checkpoint{}, Errorf(EINVALID, "checkpoint %q: the hash must be 64 hex digits", s)
	}
	return Checkpoint{Seq: seq, Hash: hash}, nil
}

// CheckpointError says that the chain does not contain a checkpoint: the
// entry at its seq has another hash, or the chain is shorter.
type CheckpointError struct {
	Checkpoint Checkpoint
	Reason     string
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("the audit chain does not match checkpoint %s: %s", e.Checkpoint, e.Reason)
}

// errPastHead stops VerifyStore's walk at the head its state was read with.
var errPastHead = errors.New("past the head")

// VerifyStore checks the whole audit chain of s and replays it against the
// stored open releases, locks and freezes, read in one transaction together
// with the chain's head; entries appended after that head (by a bot running
// meanwhile) are left out, so the comparison is of one consistent moment.
// With against set, the chain must also contain that checkpoint. It returns
// the head it checked, and a *ChainError, *ProjectionError or
// *CheckpointError for what it found, or the store's error.
func VerifyStore(ctx context.Context, s Store, against *Checkpoint) (Checkpoint, error) {
	var (
		head  Checkpoint
		open  []Release
		locks []Lock
	)
	err := s.View(ctx, func(tx Tx) error {
		var err error
		if head.Seq, head.Hash, err = tx.AuditHead(); err != nil {
			return err
		}
		if open, err = tx.Open(); err != nil {
			return err
		}
		locks, err = tx.Locks()
		return err
	})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("reading the stored state: %w", err)
	}
	v := NewVerifier()
	p := NewProjection()
	err = s.Audit(ctx, AuditFilter{}, func(e AuditEntry) error {
		if e.Seq > head.Seq {
			return errPastHead
		}
		if err := v.Add(e); err != nil {
			return err
		}
		if against != nil && e.Seq == against.Seq && e.Hash != against.Hash {
			return &CheckpointError{Checkpoint: *against, Reason: fmt.Sprintf("the entry at seq %d has hash %s", e.Seq, e.Hash)}
		}
		return p.Add(e)
	})
	if err != nil && !errors.Is(err, errPastHead) {
		return Checkpoint{}, err
	}
	seq, hash := v.Head()
	if seq != head.Seq || hash != head.Hash {
		return Checkpoint{}, &ChainError{Seq: seq + 1, Reason: fmt.Sprintf("the log ends at seq %d, but the store's head is seq %d (entries are missing)", seq, head.Seq)}
	}
	if against != nil && against.Seq > seq {
		return Checkpoint{}, &CheckpointError{Checkpoint: *against, Reason: fmt.Sprintf("the chain has only %d entries", seq)}
	}
	if err := p.Compare(open, locks); err != nil {
		return Checkpoint{}, err
	}
	return head, nil
}

// CheckpointText is the message that posts a checkpoint to the release
// channel.
func CheckpointText(cp Checkpoint) Text {
	return say("Audit checkpoint: seq %d, hash %s (check a copy with: dobrobot audit verify --checkpoint %s)", cp.Seq, cp.Hash, cp)
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
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
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
	s.cfg.Log.Info().Uint64("seq", cp.Seq).Str("hash", cp.Hash).Msg("audit checkpoint posted to the release channel")
	s.notify()
	return cp, nil
}
