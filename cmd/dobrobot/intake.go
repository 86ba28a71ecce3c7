package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/dobrobot/dobrobot/cmd/internal/intake"
	"github.com/dobrobot/dobrobot/cmd/internal/monitor"
	"github.com/dobrobot/dobrobot/commands"
)

// IntakeConfig is the intake section: the CI intake's own listener
// (docs/ci.md). Off unless listen is set.
type IntakeConfig struct {
	// Listen is host:port, with the rules of http.listen.
	Listen string `yaml:"listen"`
	// Secret signs POST /builds; empty: no /builds.
	Secret string `yaml:"secret"`
	// GitHubSecret is the GitHub webhook's secret; empty: no /github.
	GitHubSecret string `yaml:"github_secret"`
	// TicketPattern finds a ticket in a branch name or commit message;
	// empty: intake.DefaultTicketPattern.
	TicketPattern string `yaml:"ticket_pattern"`
}

// ComponentEntry is one entry of components: a name, or {name, repo} for a
// component built from a GitHub repository ("owner/name").
type ComponentEntry struct {
	Name string
	Repo string
}

// UnmarshalYAML reads a plain name or a {name, repo} mapping.
func (e *ComponentEntry) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		e.Name = n.Value
		return nil
	}
	var obj struct {
		Name string `yaml:"name"`
		Repo string `yaml:"repo"`
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a component is a name or {name, repo}", n.Line)
	}
	if err := n.Decode(&obj); err != nil {
		return err
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k != "name" && k != "repo" {
			return fmt.Errorf("line %d: a component has name and repo, not %q", n.Content[i].Line, k)
		}
	}
	e.Name, e.Repo = obj.Name, obj.Repo
	return nil
}

// repoPattern is a GitHub repository's full name.
var repoPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// resolveComponents sets Components, and the repository map, from the
// entries of the file (a file without components keeps Components as set).
func (c *Config) resolveComponents() {
	if c.ComponentEntries == nil {
		return
	}
	c.Components = make([]string, len(c.ComponentEntries))
	c.repos = nil
	for i, e := range c.ComponentEntries {
		name := strings.ToLower(strings.TrimSpace(e.Name))
		c.Components[i] = name
		if e.Repo == "" || !repoPattern.MatchString(e.Repo) {
			continue // repoProblems says so
		}
		if c.repos == nil {
			c.repos = map[string][]string{}
		}
		key := strings.ToLower(e.Repo)
		c.repos[key] = append(c.repos[key], name)
	}
}

// repoProblems returns a problem for each component's repo that is not
// owner/name.
func (c *Config) repoProblems() []string {
	var problems []string
	for i, e := range c.ComponentEntries {
		if e.Repo != "" && !repoPattern.MatchString(e.Repo) {
			problems = append(problems, fmt.Sprintf("components[%d].repo: %q is not a GitHub repository (owner/name)", i, e.Repo))
		}
	}
	return problems
}

// Repos returns the repositories the configured components are built
// from ("owner/name", lower case) and each one's components.
func (c *Config) Repos() map[string][]string { return c.repos }

// normaliseIntake gives an intake.listen of ":port" the host 127.0.0.1, as
// http.listen.
func (c *Config) normaliseIntake() {
	if strings.HasPrefix(c.Intake.Listen, ":") {
		c.Intake.Listen = "127.0.0.1" + c.Intake.Listen
	}
}

// intakeProblems checks the intake section. Only names: a secret's value
// is never said.
func (c *Config) intakeProblems() []string {
	in := c.Intake
	var problems []string
	if in.TicketPattern != "" {
		if _, err := regexp.Compile(in.TicketPattern); err != nil {
			problems = append(problems, fmt.Sprintf("intake.ticket_pattern: %v", err))
		}
	}
	if in.Listen == "" {
		return problems
	}
	if err := monitor.CheckListen(in.Listen); err != nil {
		problems = append(problems, "intake.listen: "+err.Error())
	}
	if in.Secret == "" && in.GitHubSecret == "" {
		problems = append(problems, "intake.listen is set, and neither intake.secret (POST /builds) nor intake.github_secret (POST /github) is: set one, for example ${DOBROBOT_INTAKE_SECRET}")
	}
	if c.HTTP.Listen != "" && c.HTTP.Listen == in.Listen && !strings.HasSuffix(in.Listen, ":0") { // :0 is a free port each
		problems = append(problems, "intake.listen and http.listen are the same address: give the intake its own")
	}
	return problems
}

// checkIntake says for config check what the intake serves, and warns of
// a GitHub endpoint that could take nothing.
func (c *Config) checkIntake(r *checkReport) {
	in := c.Intake
	if in.Listen == "" {
		return
	}
	var serves []string
	if in.Secret != "" {
		serves = append(serves, "POST /builds")
	}
	if in.GitHubSecret != "" {
		repos := fmt.Sprintf("%d repositories", len(c.repos))
		if len(c.repos) == 1 {
			repos = "1 repository"
		}
		serves = append(serves, "POST /github ("+repos+")")
	}
	r.info(fmt.Sprintf("intake: %s on %s", strings.Join(serves, " and "), in.Listen))
	if in.GitHubSecret != "" && len(c.repos) == 0 {
		r.warn("intake.github_secret is set and no component has a repo: every GitHub build would be refused (422); write components as {name, repo}")
	}
}

// ticketPattern is the compiled intake.ticket_pattern (checked at load).
func (c *Config) ticketPattern() *regexp.Regexp {
	if c.Intake.TicketPattern == "" {
		return nil
	}
	return regexp.MustCompile(c.Intake.TicketPattern)
}

// buildGate is the core as the intake sees it: the Service of this
// instance while it leads, and an EUNAVAILABLE answer (503, Retry-After)
// otherwise — on a PostgreSQL standby, or between terms — so that CI
// retries and the leader judges the delivery afresh.
type buildGate struct {
	mu      sync.Mutex
	svc     intake.BuildService // nil between terms
	leading func() bool         // nil: always (bbolt, the console)
}

// set makes svc the Service deliveries go to; nil: none (503).
func (g *buildGate) set(svc intake.BuildService) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.svc = svc
}

// Build hands b to the leading Service.
func (g *buildGate) Build(ctx context.Context, b commands.Build) (commands.BuildAnswer, error) {
	g.mu.Lock()
	svc := g.svc
	g.mu.Unlock()
	if svc == nil || (g.leading != nil && !g.leading()) {
		return commands.BuildAnswer{}, commands.Errorf(commands.EUNAVAILABLE, "this dobrobot instance does not lead now: try again shortly")
	}
	return svc.Build(ctx, b)
}

// startIntake starts the CI intake when intake.listen is set; nil without.
func startIntake(c *Config, gate *buildGate, log zerolog.Logger) (*intake.Server, error) {
	if c.Intake.Listen == "" {
		return nil, nil
	}
	return intake.Start(c.Intake.Listen, intake.Options{
		Secret: c.Intake.Secret, GitHubSecret: c.Intake.GitHubSecret, TicketPattern: c.ticketPattern(),
		Repos: c.Repos(), Service: gate, Log: log.With().Str("component", "intake").Logger(),
	})
}
