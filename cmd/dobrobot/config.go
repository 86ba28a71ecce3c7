package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/bot"
	"github.com/dobrobot/dobrobot/cmd/internal/monitor"
	"github.com/dobrobot/dobrobot/commands"
	"go.yaml.in/yaml/v3"
)

// Config is dobrobot's configuration file (docs/configuration.md).
type Config struct {
	Slack      SlackConfig       `yaml:"slack"`
	Storage    StorageConfig     `yaml:"storage"`
	Tracker    TrackerConfig     `yaml:"tracker"`
	Roles      RolesConfig       `yaml:"roles"`
	Components []string          `yaml:"-"` // the names of ComponentEntries, at load
	Hooks      HooksConfig       `yaml:"hooks"`
	Users      map[string]string `yaml:"users"` // console: readable names for user IDs
	HTTP       HTTPConfig        `yaml:"http"`
	// Environments lists the environments in promotion order; none: one,
	// production, from the top level (docs/configuration.md).
	Environments       []EnvironmentConfig `yaml:"environments"`
	DefaultEnvironment string              `yaml:"default_environment"`
	Reminders          RemindersConfig     `yaml:"reminders"`
	Queue              QueueConfig         `yaml:"queue"`
	Intake             IntakeConfig        `yaml:"intake"` // the CI intake (docs/ci.md)
	// ComponentEntries is the components key as written: names, or
	// {name, repo} for a component built from a GitHub repository.
	ComponentEntries []ComponentEntry `yaml:"components"`
	// Timezone is the zone of every time shown to people (default UTC),
	// an IANA name such as Europe/Berlin.
	Timezone string `yaml:"timezone"`
	// Freezes are the freeze windows (freezes.go).
	Freezes []FreezeConfig `yaml:"freezes"`
	// Reports configures the weekly report (weeklyreport.go).
	Reports ReportsConfig `yaml:"reports"`
	// ApprovalTTL: an accepted release not started within it goes back to
	// requested (docs/reminders.md); absent: approvals never expire.
	ApprovalTTL Duration `yaml:"approval_ttl"`

	path  string
	envs  []resolvedEnv       // Environments with the top level merged in, at load
	repos map[string][]string // repository (lower case) → its components, from ComponentEntries
}

// SlackConfig is the slack section.
type SlackConfig struct {
	AppToken string `yaml:"app_token"`
	BotToken string `yaml:"bot_token"`
	APIURL   string `yaml:"api_url"`
	Channel  string `yaml:"channel"`
	// Connections is how many Socket Mode connections run keeps open (0:
	// bot.DefaultConnections).
	Connections int `yaml:"connections"`
}

// StorageConfig is the storage section.
type StorageConfig struct {
	Kind string `yaml:"kind"` // bbolt (default) or postgres
	Path string `yaml:"path"` // bbolt: the database file
	// The keys below are for kind postgres (docs/operations.md).
	DSN           string   `yaml:"dsn"`            // e.g. ${DOBROBOT_PG_DSN}
	LockDSN       string   `yaml:"lock_dsn"`       // a direct connection for the leader lock; default dsn
	Schema        string   `yaml:"schema"`         // default dobrobot
	LeaderTimeout Duration `yaml:"leader_timeout"` // how long a silent leader keeps the lock; default 5s
}

// HTTPConfig is the http section: the optional listener for /healthz and
// /metrics.
type HTTPConfig struct {
	// Listen is host:port; empty turns the listener off. An empty host
	// means 127.0.0.1.
	Listen string `yaml:"listen"`
}

// TrackerConfig is the tracker section.
type TrackerConfig struct {
	Kind              string            `yaml:"kind"`
	URL               string            `yaml:"url"`
	User              string            `yaml:"user"`
	Token             string            `yaml:"token"`
	File              string            `yaml:"file"`
	Timeout           Duration          `yaml:"timeout"`
	Projects          []string          `yaml:"projects"`
	ReadyStatuses     []string          `yaml:"ready_statuses"`
	RequireAssignee   bool              `yaml:"require_assignee"`
	RequireFixVersion bool              `yaml:"require_fix_version"`
	RequiredFields    []string          `yaml:"required_fields"`
	ComponentMap      map[string]string `yaml:"component_map"`
	CommentOn         []string          `yaml:"comment_on"`
	Tickets           []commands.Ticket `yaml:"tickets"` // kind: file, tickets inline (the demo)
	// RecheckOnStart: dep start asks the tracker again (docs/reminders.md).
	RecheckOnStart bool `yaml:"recheck_on_start"`
}

// RolesConfig is the roles section.
type RolesConfig struct {
	Requesters []string `yaml:"requesters"`
	Approvers  []string `yaml:"approvers"`
	Admins     []string `yaml:"admins"`
}

// HooksConfig is the hooks section.
type HooksConfig struct {
	Env    []string    `yaml:"env"`
	Start  *HookConfig `yaml:"start"`
	Finish *HookConfig `yaml:"finish"`
	Cancel *HookConfig `yaml:"cancel"`
}

// HookConfig is one phase's hook: exec or webhook.
type HookConfig struct {
	Exec      []string       `yaml:"exec"`
	Webhook   *WebhookConfig `yaml:"webhook"`
	Timeout   Duration       `yaml:"timeout"`
	MaxOutput int            `yaml:"max_output"`
}

// WebhookConfig is a webhook hook's target.
type WebhookConfig struct {
	URL    string `yaml:"url"`
	Secret string `yaml:"secret"`
}

// Duration is a time.Duration written like 30s, 5m or 1h30m.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration (like 30s, 5m, 1h30m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Std returns d as a time.Duration, or def when d is zero.
func (d Duration) Std(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

//go:embed demo.yaml
var demoYAML []byte

// DemoDB is where the demo keeps its database.
const DemoDB = "dobrobot-demo.db"

// envRef is a reference to an environment variable: ${NAME} or
// ${NAME:-default}. The default is literal text up to the first "}". Any
// other $ (a lone one, $$, $NAME, ${1}) is not a reference and stays as
// written; there is no escape, and none was ever needed.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// LoadConfig reads and checks the YAML file at path. ${VAR} in any value is
// replaced by the environment variable (lookupEnv, like os.LookupEnv); an
// unset one is an error naming the key and the variable, and ${VAR:-default}
// gives default when VAR is unset or empty.
func LoadConfig(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parseConfig(data, lookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.path = path
	return c, nil
}

// DemoConfig returns the built-in demo configuration.
func DemoConfig() *Config {
	c, err := parseConfig(demoYAML, func(string) (string, bool) { return "", false })
	if err != nil {
		panic("demo config: " + err.Error()) // a build defect, caught by tests
	}
	c.path = "(built-in demo)"
	return c
}

func parseConfig(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if root.Kind == 0 {
		return nil, errors.New("the file is empty: see docs/configuration.md")
	}
	c := &Config{}
	var unset []string
	expand(&root, "", lookupEnv, &unset)
	if len(unset) > 0 {
		// Only names and keys: a value, set or default, may be a secret.
		return nil, fmt.Errorf("%s (set them, or write ${VAR:-default} where a default will do; see docs/configuration.md)", strings.Join(unset, "; "))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, err
	}
	c.resolveComponents()
	c.normalise()
	if err := c.validate(); err != nil {
		return c, err
	}
	c.envs = c.resolveEnvs()
	return c, nil
}

// expand replaces ${VAR} and ${VAR:-default} in scalar values (never in keys,
// never re-parsed as YAML, so a value cannot inject structure). key is the
// node's dotted path (storage.path, hooks.start.exec[1]); each unset
// variable without a default is added to unset as "KEY (line N): ${VAR} is
// not set". An unset variable used to become "" silently, and
// "${STATE_DIRECTORY}/dobrobot.db" a database at the root (issue 12).
func expand(n *yaml.Node, key string, lookupEnv func(string) (string, bool), unset *[]string) {
	switch n.Kind {
	case yaml.ScalarNode:
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			m := envRef.FindStringSubmatch(ref)
			name, def := m[1], m[2]
			v, ok := lookupEnv(name)
			switch {
			case def != "" && v == "":
				return def[len(":-"):] // like the shell's :-, for unset and empty
			case !ok:
				*unset = append(*unset, fmt.Sprintf("%s (line %d): ${%s} is not set", orRoot(key), n.Line, name))
			}
			return v
		})
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if key != "" {
				k = key + "." + k
			}
			expand(n.Content[i+1], k, lookupEnv, unset)
		}
	case yaml.SequenceNode:
		for i, child := range n.Content {
			expand(child, fmt.Sprintf("%s[%d]", key, i), lookupEnv, unset)
		}
	default: // a document, or an alias (whose target is expanded where it is defined)
		for _, child := range n.Content {
			expand(child, key, lookupEnv, unset)
		}
	}
}

func orRoot(key string) string {
	if key == "" {
		return "the file"
	}
	return key
}

func (c *Config) normalise() {
	if c.Tracker.Kind == "" {
		c.Tracker.Kind = "file"
	}
	if c.Storage.Kind == "" {
		c.Storage.Kind = "bbolt"
	}
	for i, comp := range c.Components {
		c.Components[i] = strings.ToLower(strings.TrimSpace(comp))
	}
	if strings.HasPrefix(c.HTTP.Listen, ":") {
		c.HTTP.Listen = "127.0.0.1" + c.HTTP.Listen
	}
	c.normaliseIntake()
	if c.Slack.APIURL != "" && !strings.HasSuffix(c.Slack.APIURL, "/") {
		c.Slack.APIURL += "/" // slack-go joins method names to it
	}
	c.normaliseEnvs()
}

// validate checks what every verb needs; verb-specific checks are in need*.
func (c *Config) validate() error {
	var problems []string
	switch c.Tracker.Kind {
	case "file", "jira":
	default:
		problems = append(problems, fmt.Sprintf("tracker.kind is %q: use jira or file", c.Tracker.Kind))
	}
	if c.Slack.Connections < 0 || c.Slack.Connections > bot.MaxConnections {
		problems = append(problems, fmt.Sprintf("slack.connections is %d: use 1 to %d (default %d)", c.Slack.Connections, bot.MaxConnections, bot.DefaultConnections))
	}
	switch c.Storage.Kind {
	case "bbolt", "postgres":
	default:
		problems = append(problems, fmt.Sprintf("storage.kind is %q: use bbolt (one instance, a file) or postgres (two or more instances)", c.Storage.Kind))
	}
	for _, comp := range c.Components {
		if comp == commands.AllComponents || !commands.ValidComponent(comp) {
			problems = append(problems, fmt.Sprintf("components: %q is not a valid component name (letters, digits, . _ -; not all)", comp))
		}
	}
	for _, list := range [][]string{c.Roles.Requesters, c.Roles.Approvers, c.Roles.Admins} {
		for _, id := range list {
			if !validUserOrGroup(id) {
				problems = append(problems, fmt.Sprintf("roles: %q is not a Slack user or user-group ID (U…, W… or S…)", id))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Users)) {
		if id := c.Users[name]; !userIDPattern.MatchString(id) {
			problems = append(problems, fmt.Sprintf("users.%s: %q is not a Slack user ID (U… or W…)", name, id))
		}
	}
	for _, p := range c.Tracker.CommentOn {
		if p != string(commands.PhaseStart) && p != string(commands.PhaseFinish) {
			problems = append(problems, fmt.Sprintf("tracker.comment_on: %q is not a phase (start, finish)", p))
		}
	}
	problems = append(problems, hookProblems("hooks", c.Hooks.Start, c.Hooks.Finish, c.Hooks.Cancel)...)
	problems = append(problems, c.validateEnvs()...)
	problems = append(problems, c.Reminders.problems()...)
	if c.ApprovalTTL != 0 && time.Duration(c.ApprovalTTL) < minReminder {
		problems = append(problems, fmt.Sprintf("approval_ttl is %s: use at least %s, or leave it out to turn it off", time.Duration(c.ApprovalTTL), minReminder))
	}
	problems = append(problems, c.Queue.problems()...)
	problems = append(problems, c.timeProblems()...)
	if _, err := c.Reports.weeklySchedule(c.zoneName()); err != nil {
		problems = append(problems, err.Error())
	}
	if c.HTTP.Listen != "" {
		if err := monitor.CheckListen(c.HTTP.Listen); err != nil {
			problems = append(problems, "http.listen: "+err.Error())
		}
	}
	problems = append(problems, c.repoProblems()...)
	problems = append(problems, c.intakeProblems()...)
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// hookProblems checks the hooks of one hooks section (key: its dotted path),
// in phase order.
func hookProblems(key string, start, finish, cancel *HookConfig) []string {
	var problems []string
	for _, p := range []struct {
		name string
		h    *HookConfig
	}{{"start", start}, {"finish", finish}, {"cancel", cancel}} {
		h, name := p.h, key+"."+p.name
		switch {
		case h == nil:
		case len(h.Exec) > 0 && h.Webhook != nil:
			problems = append(problems, fmt.Sprintf("%s: set exec or webhook, not both", name))
		case len(h.Exec) == 0 && h.Webhook == nil:
			problems = append(problems, fmt.Sprintf("%s: set exec (an argv list) or webhook", name))
		case len(h.Exec) > 0 && h.Exec[0] == "":
			problems = append(problems, fmt.Sprintf("%s.exec: the program is empty", name))
		}
	}
	return problems
}

var (
	userOrGroup   = regexp.MustCompile(`^[UWS][A-Z0-9]{2,}$`)
	userIDPattern = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
)

func validUserOrGroup(id string) bool { return userOrGroup.MatchString(id) }

// needSlack checks the keys `run` uses.
func (c *Config) needSlack() error {
	var problems []string
	check := func(key, v, prefix string) {
		switch {
		case v == "":
			problems = append(problems, key+" is empty")
		case prefix != "" && !strings.HasPrefix(v, prefix):
			problems = append(problems, fmt.Sprintf("%s does not look like a Slack %s… token", key, prefix))
		}
	}
	check("slack.app_token", c.Slack.AppToken, "xapp-")
	check("slack.bot_token", c.Slack.BotToken, "xoxb-")
	if c.Slack.Channel == "" {
		problems = append(problems, "slack.channel is empty: set the release channel's ID (C…)")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Policy is the part of the configuration the core enforces.
func (c *Config) Policy() commands.Policy {
	return commands.Policy{
		Requesters: c.Roles.Requesters,
		Approvers:  c.Roles.Approvers,
		Admins:     c.Roles.Admins,
		Components: c.Components,
		Channel:    c.Slack.Channel,
		Rules: commands.Rules{
			Projects:          c.Tracker.Projects,
			ReadyStatuses:     c.Tracker.ReadyStatuses,
			RequireAssignee:   c.Tracker.RequireAssignee,
			RequireFixVersion: c.Tracker.RequireFixVersion,
			RequiredFields:    c.Tracker.RequiredFields,
		},
		Envs:       envPolicies(c.envs),
		DefaultEnv: c.defaultEnv(),
	}
}

// envPolicies returns the resolved environments' policies, without their
// hooks' executors (wiring builds those), or nil without environments.
func envPolicies(envs []resolvedEnv) []commands.EnvPolicy {
	if len(envs) == 0 {
		return nil
	}
	out := make([]commands.EnvPolicy, len(envs))
	for i, e := range envs {
		out[i] = e.EnvPolicy
	}
	return out
}
