package commands

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AuditEntry is one line of the tamper-evident audit log. Entries form a hash
// chain: each Hash covers the previous entry's Hash and this entry's fields
// (see Seal and docs/audit.md for the exact bytes).
type AuditEntry struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`
	Action   Action    `json:"action"`
	Ticket   string    `json:"ticket"`
	From     State     `json:"from"`
	To       State     `json:"to"`
	Detail   string    `json:"detail"`
	PrevHash string    `json:"prev_hash"`
	Hash     string    `json:"hash"`
	// Via is where the action came from: SourceSlack, SourceConsole, … (see
	// via.go). Entries written before it existed have "" and hash as before.
	Via string `json:"via"`
	// Env and Version are the environment and the version of the release
	// the entry is about (Release.Env, Release.Build); empty when it names
	// none, as every entry written before environments existed, which hash
	// as before.
	Env     string `json:"env,omitempty"`
	Version string `json:"version,omitempty"`
}

// GenesisHash is the previous hash of the first entry: 64 zeros.
var GenesisHash = strings.Repeat("0", 64)

// AuditColumns are the CSV header's column names, in order. via is last so
// that seq … hash keep their places (and a re-check of the hashes its
// column numbers).
var AuditColumns = []string{"seq", "time", "actor", "action", "ticket", "from", "to", "detail", "prev_hash", "hash", "via", "env", "version"}

// TimeFormat is how audit times are written, hashed and exported.
const TimeFormat = time.RFC3339Nano

// Record returns the entry's fields as strings, in AuditColumns order.
func (e AuditEntry) Record() []string {
	return []string{
		strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(TimeFormat), e.Actor, string(e.Action),
		e.Ticket, string(e.From), string(e.To), e.Detail, e.PrevHash, e.Hash, e.Via, e.Env, e.Version,
	}
}

// ComputeHash returns the hash the entry should carry: the lowercase hex
// SHA-256 of its first nine fields (seq … prev_hash, as in Record) joined by
// "\n"; followed, when Via, Env or Version is not empty, by "\n" and Via;
// followed, when Env or Version is not empty, by "\n", Env, "\n" and
// Version. An entry without them (all of them before they existed) hashes
// exactly as it always did. No field may hold a newline; Seal and Clean
// guarantee it, and prev_hash, which comes just before via, must be the
// previous entry's hash, so no text can move across a boundary. An entry
// with Env or Version always has every one of the twelve fields hashed, so
// an empty via is not confused with a missing one.
func (e AuditEntry) ComputeHash() string {
	rec := e.Record()
	data := strings.Join(rec[:9], "\n")
	if e.Via != "" || e.Env != "" || e.Version != "" {
		data += "\n" + e.Via
	}
	if e.Env != "" || e.Version != "" {
		data += "\n" + e.Env + "\n" + e.Version
	}
	sum := sha256.Sum256([]byte(data))
	return hex.EncodeToString(sum[:])
}

// Seal fills in the chain fields of e as the entry following one with seq
// prevSeq and hash prevHash (0 and GenesisHash for the first), and returns it.
// Stores call it when they append, so every store chains the same way.
func Seal(e AuditEntry, prevSeq uint64, prevHash string) AuditEntry {
	e.Seq = prevSeq + 1
	e.PrevHash = prevHash
	e.Time = e.Time.UTC()
	e.Actor, e.Ticket, e.Detail, e.Via = Clean(e.Actor), Clean(e.Ticket), Clean(e.Detail), Clean(e.Via)
	e.Env, e.Version = Clean(e.Env), Clean(e.Version)
	e.Hash = e.ComputeHash()
	return e
}

// cleanMax is the longest text Clean keeps, in bytes (before its "…").
const cleanMax = 1000

// Clean replaces control characters (C0 with newlines, DEL and C1) with
// spaces and bidirectional embeddings, overrides and isolates with U+FFFD,
// and bounds the length, so any text is safe in a log line, a CSV cell and
// the hashed record, and cannot hide or reorder what is around it.
func Clean(s string) string {
	const max = cleanMax
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case isBidiControl(r):
			return '\uFFFD'
		case unsafeRune(r):
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// ChainError says where an audit chain breaks.
type ChainError struct {
	Seq    uint64
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s", e.Seq, e.Reason)
}

// Verifier checks an audit chain one entry at a time, in order.
type Verifier struct {
	seq  uint64
	hash string
}

// NewVerifier returns a Verifier expecting the first entry of the chain.
func NewVerifier() *Verifier { return &Verifier{hash: GenesisHash} }

// Add checks the next entry; it returns a *ChainError at the first break.
func (v *Verifier) Add(e AuditEntry) error {
	switch {
	case e.Seq != v.seq+1:
		return &ChainError{Seq: e.Seq, Reason: fmt.Sprintf("expected seq %d (an entry is missing or out of order)", v.seq+1)}
	case e.PrevHash != v.hash:
		return &ChainError{Seq: e.Seq, Reason: "prev_hash does not match the previous entry's hash"}
	case e.ComputeHash() != e.Hash:
		return &ChainError{Seq: e.Seq, Reason: "hash does not match the entry's contents (edited?)"}
	}
	v.seq, v.hash = e.Seq, e.Hash
	return nil
}

// Head returns the seq and hash of the last entry checked.
func (v *Verifier) Head() (uint64, string) { return v.seq, v.hash }

// VerifyTail checks the newest entries of a chain, given oldest first, as
// the stores' VerifyRecent read them. before is the entry just before them,
// or nil when they are the oldest of all: the first must then have seq 1 and
// the genesis hash as its prev_hash. before's own hash is checked, not its
// link to the entries before it. It returns a *ChainError at the first break.
func VerifyTail(before *AuditEntry, window []AuditEntry) error {
	v := NewVerifier()
	switch {
	case before != nil && before.ComputeHash() != before.Hash:
		return &ChainError{Seq: before.Seq, Reason: "hash does not match the entry's contents (edited?)"}
	case before != nil:
		v.seq, v.hash = before.Seq, before.Hash
	case len(window) > 0 && window[0].Seq != 1:
		return &ChainError{Seq: window[0].Seq, Reason: fmt.Sprintf("the oldest entry has seq %d, expected 1 (entries are missing)", window[0].Seq)}
	}
	for _, e := range window {
		if err := v.Add(e); err != nil {
			return err
		}
	}
	return nil
}
