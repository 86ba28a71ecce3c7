package tracker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	jira "github.com/andygrunwald/go-jira"
	"github.com/dobrobot/dobrobot/commands"
)

// ticket maps the fields object of Jira's issue JSON to a commands.Ticket.
func (j *Jira) ticket(key string, raw json.RawMessage) (commands.Ticket, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return commands.Ticket{}, fmt.Errorf("jira: issue %s: the answer has no fields", key)
	}
	var f struct {
		Summary     string             `json:"summary"`
		Status      *jira.Status       `json:"status"`
		Assignee    *jira.User         `json:"assignee"`
		FixVersions []*jira.FixVersion `json:"fixVersions"`
		Components  []*jira.Component  `json:"components"`
		Project     *jira.Project      `json:"project"`
		IssueType   *jira.IssueType    `json:"issuetype"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return commands.Ticket{}, fmt.Errorf("jira: issue %s: decode fields: %w", key, err)
	}
	t := commands.Ticket{
		Key:     key,
		Project: commands.ProjectOf(key),
		Summary: strings.TrimSpace(f.Summary),
		URL:     j.base + "/browse/" + key,
		Fields:  make(map[string]string, len(j.required)),
	}
	if f.Status != nil {
		t.Status = strings.TrimSpace(f.Status.Name)
	}
	if a := f.Assignee; a != nil {
		t.Assignee = firstNonBlank(a.DisplayName, a.EmailAddress, a.Name, a.AccountID, a.Key)
		if t.Assignee == "" {
			// Assigned to someone Jira describes with no name the bot may see.
			t.Assignee = "(unnamed user)"
		}
	}
	for _, v := range f.FixVersions {
		if v != nil && strings.TrimSpace(v.Name) != "" {
			t.FixVersions = append(t.FixVersions, strings.TrimSpace(v.Name))
		}
	}
	for _, c := range f.Components {
		if c == nil || strings.TrimSpace(c.Name) == "" {
			continue
		}
		name := strings.TrimSpace(c.Name)
		if mapped, ok := j.compMap[name]; ok {
			name = mapped
		}
		if !slices.Contains(t.Components, name) {
			t.Components = append(t.Components, name)
		}
	}
	if f.Project != nil && f.Project.Key != "" {
		t.Project = f.Project.Key
	}
	if f.IssueType != nil {
		t.IssueType = strings.TrimSpace(f.IssueType.Name)
	}
	if len(j.required) > 0 {
		var all map[string]json.RawMessage
		if err := json.Unmarshal(raw, &all); err != nil {
			return commands.Ticket{}, fmt.Errorf("jira: issue %s: decode fields: %w", key, err)
		}
		for _, id := range j.required {
			s, err := fieldString(all[id])
			if err != nil {
				return commands.Ticket{}, fmt.Errorf("jira: issue %s: field %s: %w", key, id, err)
			}
			t.Fields[id] = s
		}
	}
	return t, nil
}

// fieldString is the string form of a field's JSON value, empty when the
// field has no value: a string is itself, a number is formatted, an object
// (option, user, version…) is its value or name, an array joins its
// elements' forms with ", ". An object of an unknown shape is its compact
// JSON, so that a field that has a value never reads as empty.
func fieldString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("decode: %w", err)
	}
	return valueString(v), nil
}

func valueString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(v)
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
		return v.String()
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			if s := valueString(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		if len(v) == 0 {
			return ""
		}
		for _, k := range []string{"value", "name", "displayName", "emailAddress", "key"} {
			if s, ok := v[k].(string); ok && strings.TrimSpace(s) != "" {
				s = strings.TrimSpace(s)
				// A cascading select: "Parent - Child".
				if child, ok := v["child"].(map[string]any); ok && k == "value" {
					if c := valueString(child); c != "" {
						s += " - " + c
					}
				}
				return s
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
	return fmt.Sprint(v)
}
