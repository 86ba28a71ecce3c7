package main

import "context"

// RunCmd runs the Slack bot.
type RunCmd struct{}

// Run connects to Slack and serves the release channel until stopped.
func (RunCmd) Run(ctx context.Context, a *app) error {
	c, err := a.mustConfig("run")
	if err != nil {
		return err
	}
	if err := c.needSlack(); err != nil {
		return usageError{err}
	}
	return usagef("run: the Slack adapter is not built yet; use dobrobot console")
}
