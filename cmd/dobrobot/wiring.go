package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/hook"
	"github.com/dobrobot/dobrobot/tracker"
)

// config wires the core to its adapters for configuration c: the
// commands.Config that each command (run, console) completes with what its
// own adapters give, then builds the Service from.
func (a *app) config(c *Config, store commands.Store) (commands.Config, error) {
	tr, err := a.tracker(c)
	if err != nil {
		return commands.Config{}, err
	}
	hooks, envHooks, err := a.hooks(c)
	if err != nil {
		return commands.Config{}, err
	}
	weekly, err := c.Reports.weeklySchedule(c.zoneName())
	if err != nil {
		return commands.Config{}, err
	}
	policy := c.Policy()
	for i := range policy.Envs {
		policy.Envs[i].Hooks = envHooks[i]
	}
	var commentOn []commands.Phase
	for _, p := range c.Tracker.CommentOn {
		commentOn = append(commentOn, commands.Phase(p))
	}
	return commands.Config{
		Store:     store,
		Tracker:   tr.Tracker,
		Commenter: tr.comments,
		Hooks:     hooks,
		Policy:    policy,
		Clock:     commands.RealClock(),
		Log:       a.log,
		CommentOn: commentOn,
		Reminders: c.Reminders.core(c.Timezone),
		Timezone:  c.location(),
		Freezes:   c.freezes(),
		// The weekly report (reports.weekly); validate has checked it.
		WeeklyReport: weekly,
		// The hand-off queue's claim window (turns).
		ClaimWindow: c.Queue.claimWindow(),
		// Approval expiry and the re-check at dep start (expiry.go, recheck.go).
		ApprovalTTL:    time.Duration(c.ApprovalTTL),
		RecheckOnStart: c.Tracker.RecheckOnStart,
		InboxTTL:       c.inboxTTL(),
	}, nil
}

// intakeInboxTTL is how long the inbox keeps what it saw when the CI intake
// is on: a delivery's answer is its inbox record, and GitHub lets a person
// redeliver a webhook for three days; a day more than that.
const intakeInboxTTL = 4 * 24 * time.Hour

// inboxTTL is the core's InboxTTL for c: its default (48 h), or
// intakeInboxTTL with the intake listening, so that a redelivered build is
// answered as it was the first time rather than judged again.
func (c *Config) inboxTTL() time.Duration {
	if c.Intake.Listen != "" {
		return intakeInboxTTL
	}
	return 0
}

// trackerPorts is the configured tracker as each of its consumers uses it.
type trackerPorts struct {
	commands.Tracker
	comments commands.Commenter                    // nil: it takes no comments
	check    func(context.Context) (string, error) // nil: loading it was the check
}

// tracker builds the configured tracker.
func (a *app) tracker(c *Config) (trackerPorts, error) {
	t := c.Tracker
	switch t.Kind {
	case "jira":
		if t.URL == "" {
			return trackerPorts{}, usagef("tracker.url is empty: set your Jira's base URL")
		}
		if t.Token == "" {
			return trackerPorts{}, usagef("tracker.token is empty: set it, for example to ${JIRA_TOKEN}")
		}
		j, err := tracker.NewJira(tracker.JiraConfig{
			URL: t.URL, User: t.User, Token: t.Token, Timeout: t.Timeout.Std(5 * time.Second),
			RequiredFields: t.RequiredFields, ComponentMap: t.ComponentMap, Log: a.log,
		})
		if err != nil {
			return trackerPorts{}, usageError{fmt.Errorf("tracker: %w", err)}
		}
		return trackerPorts{Tracker: j, comments: j, check: j.Check}, nil
	default: // file
		if len(t.Tickets) > 0 {
			s, err := tracker.NewStatic(t.Tickets, t.URL)
			if err != nil {
				return trackerPorts{}, usageError{fmt.Errorf("tracker.tickets: %w", err)}
			}
			return trackerPorts{Tracker: s}, nil
		}
		if t.File == "" {
			return trackerPorts{}, usagef("tracker.file is empty: name the YAML file of tickets (tracker.kind: file)")
		}
		path := t.File
		if !filepath.IsAbs(path) && c.path != "" && fileExists(c.path) {
			path = filepath.Join(filepath.Dir(c.path), path)
		}
		f, err := tracker.OpenFile(path, t.URL)
		if err != nil {
			return trackerPorts{}, usageError{fmt.Errorf("tracker.file: %w", err)}
		}
		return trackerPorts{Tracker: f}, nil
	}
}

// hooks builds the executors of the configured hooks, the top level's and
// each environment's (in c.envs' order); an error names every bad one.
func (a *app) hooks(c *Config) (commands.Hooks, []commands.Hooks, error) {
	h, envs, problems := a.buildHooks(c)
	if len(problems) > 0 {
		return h, envs, usageError{errors.New(strings.Join(problems, "; "))}
	}
	return h, envs, nil
}

// buildHooks builds the executors of the configured hooks, the top level's
// and each environment's, and returns a problem ("hooks.PHASE…: why") for
// each one that is wrong, all of them, so that config check shows every bad
// hook and not only the first. A top-level hook an environment inherits is
// checked once, at the top level.
func (a *app) buildHooks(c *Config) (commands.Hooks, []commands.Hooks, []string) {
	top, problems := a.buildHookSet("hooks", c.Hooks, HooksConfig{})
	envs := make([]commands.Hooks, len(c.envs))
	for i, e := range c.envs {
		h, p := a.buildHookSet("environments."+e.Name+".hooks", e.hooks, c.Hooks)
		envs[i], problems = h, append(problems, p...)
	}
	return top, envs, problems
}

// buildHookSet builds the executors of one hooks section, hc, whose dotted
// path is key. Problems of a phase hc shares with inherited (the top level)
// are not reported again.
func (a *app) buildHookSet(key string, hc, inherited HooksConfig) (commands.Hooks, []string) {
	var (
		h        commands.Hooks
		problems []string
	)
	for _, p := range []struct {
		name string
		cfg  *HookConfig
		top  *HookConfig
		dst  *commands.Executor
	}{{"start", hc.Start, inherited.Start, &h.Start}, {"finish", hc.Finish, inherited.Finish, &h.Finish}, {"cancel", hc.Cancel, inherited.Cancel, &h.Cancel}} {
		if p.cfg == nil {
			continue
		}
		report := p.cfg != p.top
		if p.cfg.Webhook != nil {
			w, err := hook.NewWebhook(p.cfg.Webhook.URL, p.cfg.Webhook.Secret)
			if err != nil {
				if report {
					problems = append(problems, fmt.Sprintf("%s.%s.webhook: %v", key, p.name, err))
				}
				continue
			}
			w.Timeout, w.Log = p.cfg.Timeout.Std(30*time.Second), a.log
			*p.dst = w
			continue
		}
		e := &hook.Exec{
			Argv: p.cfg.Exec, Env: hc.Env, Timeout: p.cfg.Timeout.Std(30 * time.Minute),
			MaxOutput: p.cfg.MaxOutput, Log: a.log,
		}
		if err := e.Validate(); err != nil {
			if report {
				problems = append(problems, fmt.Sprintf("%s.%s: %v", key, p.name, err))
			}
			continue
		}
		*p.dst = e
	}
	return h, problems
}
