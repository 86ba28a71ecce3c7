package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dobrobot/dobrobot/commands"
)

// t0 is the suite's clock. Times are UTC with microsecond precision, which
// every store can keep exactly.
var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

// opts treats nil and empty slices and maps alike: stores may return either.
var opts = cmp.Options{cmpopts.EquateEmpty()}

var errBoom = errors.New("boom: fn failed on purpose")

func release(ticket string, state commands.State, minute int) commands.Release {
	return commands.Release{
		Ticket:     ticket,
		Summary:    "Summary of " + ticket,
		URL:        "https://example.atlassian.net/browse/" + ticket,
		State:      state,
		NeedAdmin:  true,
		Requester:  "U01ANN",
		Components: []string{"backend", "payments"},
		Locks:      []string{"backend"},
		Created:    at(minute),
		Updated:    at(minute),
	}
}

func update(t *testing.T, s commands.Store, fn func(commands.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// write runs fn in an Update and returns its value.
func write[T any](t *testing.T, s commands.Store, fn func(commands.Tx) (T, error)) T {
	t.Helper()
	var v T
	update(t, s, func(tx commands.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v
}

// writeEach passes each of items through fn (a Tx method such as PutRelease)
// in one transaction and returns what fn returned for each.
func writeEach[T any](t *testing.T, s commands.Store, items []T, fn func(commands.Tx, T) (T, error)) []T {
	t.Helper()
	return write(t, s, func(tx commands.Tx) ([]T, error) {
		out := make([]T, 0, len(items))
		for _, it := range items {
			v, err := fn(tx, it)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	})
}

// read runs fn in a View and returns its value.
func read[T any](t *testing.T, s commands.Store, fn func(commands.Tx) (T, error)) T {
	t.Helper()
	var v T
	err := s.View(context.Background(), func(tx commands.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	return v
}

// put stores new releases in one transaction and returns them as stored.
func put(t *testing.T, s commands.Store, rs ...commands.Release) []commands.Release {
	t.Helper()
	return writeEach(t, s, rs, commands.Tx.PutRelease)
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := commands.ErrorCode(err); got != code {
		t.Errorf("%s: error code %q (%v), want %q", what, got, err, code)
	}
	if err != nil && commands.ErrorMessage(err) == "" {
		t.Errorf("%s: error %#v has no message", what, err)
	}
}

func ids(rs []commands.Release) []uint64 {
	out := []uint64{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func effectIDs(es []commands.Effect) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func eventIDs(es []commands.InboxEvent) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// audit returns the entries matching f.
func audit(t *testing.T, s commands.Store, f commands.AuditFilter) []commands.AuditEntry {
	t.Helper()
	out := []commands.AuditEntry{}
	if err := s.Audit(context.Background(), f, func(e commands.AuditEntry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("Audit: %v", err)
	}
	return out
}

// verified returns the whole audit log after checking its chain.
func verified(t *testing.T, s commands.Store) []commands.AuditEntry {
	t.Helper()
	v := commands.NewVerifier()
	out := []commands.AuditEntry{}
	if err := s.Audit(context.Background(), commands.AuditFilter{}, func(e commands.AuditEntry) error {
		out = append(out, e)
		return v.Add(e)
	}); err != nil {
		t.Fatalf("the audit chain does not verify: %v", err)
	}
	return out
}

func entry(actor, ticket string, action commands.Action, from, to commands.State, minute int) commands.AuditEntry {
	return commands.AuditEntry{
		Time: at(minute), Actor: actor, Action: action, Ticket: ticket, From: from, To: to,
		Detail: fmt.Sprintf("event Ev%04d", minute),
	}
}

func appendAudit(t *testing.T, s commands.Store, es ...commands.AuditEntry) []commands.AuditEntry {
	t.Helper()
	return writeEach(t, s, es, commands.Tx.AppendAudit)
}

type head struct {
	Seq  uint64
	Hash string
}

func auditHead(t *testing.T, s commands.Store) head {
	t.Helper()
	return read(t, s, func(tx commands.Tx) (head, error) {
		seq, hash, err := tx.AuditHead()
		return head{seq, hash}, err
	})
}
