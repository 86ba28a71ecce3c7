package commands_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// chain returns n sealed entries, seq 1 to n.
func chain(n int) []commands.AuditEntry {
	var out []commands.AuditEntry
	seq, hash := uint64(0), commands.GenesisHash
	for i := range n {
		e := commands.Seal(commands.AuditEntry{Time: time.Unix(int64(1_700_000_000+i), 0).UTC(), Actor: "U0ANN",
			Action: commands.ActionRequest, Ticket: fmt.Sprintf("PAY-%d", i+1), To: commands.StateRequested}, seq, hash)
		out = append(out, e)
		seq, hash = e.Seq, e.Hash
	}
	return out
}

func TestVerifyTail(t *testing.T) {
	edited := func(es []commands.AuditEntry, i int) []commands.AuditEntry {
		es[i].Actor = "U0EVE"
		return es
	}
	tests := []struct {
		name    string
		entries []commands.AuditEntry // the whole chain
		window  int                   // how many of the newest are checked
		wantSeq uint64                // 0: no error
	}{
		{"empty", nil, 10, 0},
		{"all of it", chain(5), 5, 0},
		{"the newest three", chain(5), 3, 0},
		{"an edit older than the window is not seen", edited(chain(5), 0), 3, 0},
		{"an edited entry in the window", edited(chain(5), 3), 3, 4},
		{"the entry before the window edited", edited(chain(5), 1), 3, 2},
		{"the oldest is missing", chain(5)[1:], 4, 2},
		{"an entry in the window missing", append(chain(5)[:3:3], chain(5)[4]), 2, 5},
		{"the first of the window does not follow the one before", append(chain(5)[:2:2], chain(5)[3:]...), 2, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es := tc.entries
			n := min(tc.window, len(es))
			var before *commands.AuditEntry
			if len(es) > n {
				before = &es[len(es)-n-1]
			}
			err := commands.VerifyTail(before, es[len(es)-n:])
			var ce *commands.ChainError
			switch {
			case tc.wantSeq == 0 && err != nil:
				t.Errorf("VerifyTail = %v, want no error", err)
			case tc.wantSeq != 0 && (!errors.As(err, &ce) || ce.Seq != tc.wantSeq):
				t.Errorf("VerifyTail = %v, want a ChainError at seq %d", err, tc.wantSeq)
			}
		})
	}
}
