package tracker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dobrobot/dobrobot/commands"
	"go.yaml.in/yaml/v3"
)

// Compile-time checks that the adapters implement the port.
var (
	_ commands.Tracker = (*Static)(nil)
	_ commands.Tracker = (*File)(nil)
	_ commands.Tracker = (*Jira)(nil)
)

// Static is a Tracker over a fixed set of tickets held in memory, such as
// the tickets embedded in the demo configuration. It is safe for concurrent
// use.
type Static struct {
	tickets map[string]commands.Ticket
}

// NewStatic returns a Static tracker serving tickets. Keys are upper-cased
// and must be ticket keys, each at most once. A ticket without a project
// gets the one in its key; one without a URL gets baseURL/browse/KEY when
// baseURL is set.
func NewStatic(tickets []commands.Ticket, baseURL string) (*Static, error) {
	m, err := index(tickets, baseURL, func(i int) string { return fmt.Sprintf("ticket %d", i+1) })
	if err != nil {
		return nil, fmt.Errorf("tracker: %w", err)
	}
	return &Static{tickets: m}, nil
}

// Ticket returns the ticket with the given key: EINVALID when key is not a
// ticket key, ENOTFOUND when there is no such ticket.
func (s *Static) Ticket(_ context.Context, key string) (commands.Ticket, error) {
	return lookup(s.tickets, key)
}

// File is a Tracker over tickets kept in a YAML file, in the format
//
//	tickets:
//	  - key: PAY-1
//	    summary: Faster checkout
//	    status: Ready for Release
//	    assignee: ann@example.com
//	    fix_versions: ["2.4.0"]
//	    components: [backend, payments]
//	    fields: {customfield_10010: "QA passed"}
//	    project: PAY          # optional: derived from the key
//	    issue_type: Story     # optional
//	    url: https://…        # optional: derived from the base URL
//
// Each lookup checks the file's modification time and size and reloads it
// when they changed, so tickets can be edited while the bot runs. While the
// file on disk is unreadable or invalid, lookups fail with EUNAVAILABLE
// naming the problem: the tracker fails closed rather than answer from a
// file it can no longer read. File is safe for concurrent use.
type File struct {
	path    string
	baseURL string

	mu      sync.Mutex
	mod     time.Time // of the file last read
	size    int64
	tickets map[string]commands.Ticket
	err     error // why the file last read is unusable; nil when tickets is current
}

// OpenFile reads the tickets in the YAML file at path; see File for the
// format. Tickets without a URL link to baseURL/browse/KEY when baseURL is
// set. A file that cannot be read or parsed is an error naming the file and,
// for bad YAML, the line.
func OpenFile(path, baseURL string) (*File, error) {
	f := &File{path: path, baseURL: strings.TrimRight(baseURL, "/")}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reload(); err != nil {
		return nil, fmt.Errorf("tracker: %w", err)
	}
	return f, nil
}

// Ticket returns the ticket with the given key, reloading the file first if
// it changed: EINVALID when key is not a ticket key, ENOTFOUND when there is
// no such ticket, EUNAVAILABLE when the file can no longer be read or parsed.
func (f *File) Ticket(_ context.Context, key string) (commands.Ticket, error) {
	if !commands.ValidTicket(key) {
		return commands.Ticket{}, invalidKey(key)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reload(); err != nil {
		return commands.Ticket{}, commands.Errorf(commands.EUNAVAILABLE,
			"could not use the tickets file (%v): not queued, fix the file and try again", err)
	}
	return lookup(f.tickets, key)
}

// reload rereads the file if its modification time or size changed since it
// was last read. It remembers a bad file's error, so a broken file is read
// once per change, not once per lookup. f.mu must be held.
func (f *File) reload() error {
	fi, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("read tickets: %w", err)
	}
	if f.tickets != nil || f.err != nil {
		if fi.ModTime().Equal(f.mod) && fi.Size() == f.size {
			return f.err
		}
	}
	f.mod, f.size = fi.ModTime(), fi.Size()
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.err = fmt.Errorf("read tickets: %w", err)
		return f.err
	}
	m, err := parseTickets(data, f.baseURL)
	if err != nil {
		f.err = fmt.Errorf("read tickets from %s: %w", f.path, err)
		return f.err
	}
	f.tickets, f.err = m, nil
	return nil
}

// parseTickets parses a tickets file: unknown keys are errors (a misspelt
// fix_versions must not silently read as "no fix version").
func parseTickets(data []byte, baseURL string) (map[string]commands.Ticket, error) {
	var doc struct {
		Tickets []commands.Ticket `yaml:"tickets"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, flatten(err)
	}
	// A second pass for the line of each entry, to name it in errors.
	var lines struct {
		Tickets []yaml.Node `yaml:"tickets"`
	}
	if err := yaml.Unmarshal(data, &lines); err != nil {
		return nil, flatten(err)
	}
	return index(doc.Tickets, baseURL, func(i int) string {
		if i < len(lines.Tickets) {
			return fmt.Sprintf("line %d", lines.Tickets[i].Line)
		}
		return fmt.Sprintf("ticket %d", i+1)
	})
}

// flatten puts yaml's multi-line unmarshal errors on one line.
func flatten(err error) error {
	if msg := err.Error(); strings.Contains(msg, "\n") {
		return fmt.Errorf("%s", strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", ";")), " "))
	}
	return err
}

// index checks and completes tickets and indexes them by key; where names
// the i-th ticket in errors.
func index(tickets []commands.Ticket, baseURL string, where func(i int) string) (map[string]commands.Ticket, error) {
	baseURL = strings.TrimRight(baseURL, "/")
	m := make(map[string]commands.Ticket, len(tickets))
	for i, t := range tickets {
		t.Key = strings.ToUpper(strings.TrimSpace(t.Key))
		if !commands.ValidTicket(t.Key) {
			return nil, fmt.Errorf("%s: %q is not a ticket key (like PAY-123)", where(i), t.Key)
		}
		if _, dup := m[t.Key]; dup {
			return nil, fmt.Errorf("%s: ticket %s is listed twice", where(i), t.Key)
		}
		if t.Project == "" {
			t.Project = commands.ProjectOf(t.Key)
		}
		if t.URL == "" && baseURL != "" {
			t.URL = baseURL + "/browse/" + t.Key
		}
		m[t.Key] = t
	}
	return m, nil
}

// lookup returns a copy of the ticket with the given key, so callers cannot
// change the tracker's tickets through its slices and map.
func lookup(tickets map[string]commands.Ticket, key string) (commands.Ticket, error) {
	if !commands.ValidTicket(key) {
		return commands.Ticket{}, invalidKey(key)
	}
	t, ok := tickets[key]
	if !ok {
		return commands.Ticket{}, commands.Errorf(commands.ENOTFOUND,
			"%s was not found or is not visible to the bot", key)
	}
	t.FixVersions = slices.Clone(t.FixVersions)
	t.Components = slices.Clone(t.Components)
	t.Fields = maps.Clone(t.Fields)
	return t, nil
}

func invalidKey(key string) error {
	if len(key) > 64 {
		key = key[:64] + "…"
	}
	return commands.Errorf(commands.EINVALID, "%q is not a ticket key (like PAY-123)", key)
}
