package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dobrobot/dobrobot/commands"
)

// The scheduler's buckets (schema 4). bucketDue holds each commands.Due
// under dueKey, so a cursor walks them in time order; bucketDueIndex maps
// (release, kind) to the time part of its dueKey, so that replacing or
// deleting one costs O(log n) without a scan.
var (
	bucketDue      = []byte("due")
	bucketDueIndex = []byte("due_index")
)

// dueBuckets are the buckets schema 4 adds.
var dueBuckets = [][]byte{bucketDue, bucketDueIndex}

// migrateDue is the migration to schema 4: it only creates the scheduler's
// buckets, empty; nothing older is due.
func migrateDue(tx *bolt.Tx) error {
	for _, name := range dueBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %q: %w", name, err)
		}
	}
	return nil
}

// dueKey orders due records by time, then kind, then release: the 12-byte
// timeKey, the kind, a zero byte (which no kind holds), the release ID.
func dueKey(at []byte, kind commands.DueKind, release uint64) []byte {
	k := make([]byte, 0, len(at)+len(kind)+9)
	k = append(k, at...)
	return append(k, ticketKey(string(kind), release)...)
}

// dueIndexKey is (release, kind): the release ID first, so that a release's
// records sit together.
func dueIndexKey(release uint64, kind commands.DueKind) []byte {
	return append(encodeID(release), kind...)
}

func (t *tx) dueBuckets() (due, index *bolt.Bucket, err error) {
	if due, err = t.bucket(bucketDue); err != nil {
		return nil, nil, err
	}
	index, err = t.bucket(bucketDueIndex)
	return due, index, err
}

// PutDue adds or replaces the record of (d.Release, d.Kind).
func (t *tx) PutDue(d commands.Due) error {
	if err := checkName("due kind", string(d.Kind)); err != nil {
		return err
	}
	due, index, err := t.dueBuckets()
	if err != nil {
		return err
	}
	d.At = d.At.UTC()
	v, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("storage: encode due %s of release %d: %w", d.Kind, d.Release, err)
	}
	if err := t.deleteDue(due, index, d.Release, d.Kind); err != nil {
		return err
	}
	at := timeKey(d.At)
	if err := due.Put(dueKey(at, d.Kind, d.Release), v); err != nil {
		return fmt.Errorf("storage: put due %s of release %d: %w", d.Kind, d.Release, err)
	}
	if err := index.Put(dueIndexKey(d.Release, d.Kind), at); err != nil {
		return fmt.Errorf("storage: index due %s of release %d: %w", d.Kind, d.Release, err)
	}
	return nil
}

// DeleteDue removes the record of (release, kind), if any.
func (t *tx) DeleteDue(release uint64, kind commands.DueKind) error {
	due, index, err := t.dueBuckets()
	if err != nil {
		return err
	}
	return t.deleteDue(due, index, release, kind)
}

func (t *tx) deleteDue(due, index *bolt.Bucket, release uint64, kind commands.DueKind) error {
	ik := dueIndexKey(release, kind)
	at := index.Get(ik)
	if at == nil {
		return nil
	}
	if err := due.Delete(dueKey(at, kind, release)); err != nil {
		return fmt.Errorf("storage: delete due %s of release %d: %w", kind, release, err)
	}
	if err := index.Delete(ik); err != nil {
		return fmt.Errorf("storage: unindex due %s of release %d: %w", kind, release, err)
	}
	return nil
}

// DueBefore returns up to max records (max <= 0: all) with At <= before,
// oldest first, reading only those.
func (t *tx) DueBefore(before time.Time, max int) ([]commands.Due, error) {
	due, err := t.bucket(bucketDue)
	if err != nil {
		return nil, err
	}
	end := timeKey(before)
	var out []commands.Due
	c := due.Cursor()
	for k, v := c.First(); k != nil && (max <= 0 || len(out) < max); k, v = c.Next() {
		if len(k) < len(end) || bytes.Compare(k[:len(end)], end) > 0 {
			break
		}
		d, err := decodeDue(k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// NextDue returns the earliest record, if any.
func (t *tx) NextDue() (commands.Due, bool, error) {
	due, err := t.bucket(bucketDue)
	if err != nil {
		return commands.Due{}, false, err
	}
	k, v := due.Cursor().First()
	if k == nil {
		return commands.Due{}, false, nil
	}
	d, err := decodeDue(k, v)
	return d, err == nil, err
}

func decodeDue(k, v []byte) (commands.Due, error) {
	var d commands.Due
	if err := json.Unmarshal(v, &d); err != nil {
		return d, fmt.Errorf("storage: decode due %q: %w", k, err)
	}
	return d, nil
}
