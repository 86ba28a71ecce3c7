package postgres

import (
	"encoding/json"
	"fmt"

	"github.com/dobrobot/dobrobot/commands"
)

// Deployed returns every (env, component) entry, ordered by env then
// component: environments × components rows, whatever the history's length.
func (t *tx) Deployed() ([]commands.Deployed, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	return all[commands.Deployed](t, t.q.deployed, "what is where")
}

// PutDeployed adds or replaces the entry of (d.Env, d.Component).
func (t *tx) PutDeployed(d commands.Deployed) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := checkName("environment", d.Env); err != nil {
		return err
	}
	if err := checkName("component", d.Component); err != nil {
		return err
	}
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("postgres: encode deployed entry of %s in %s: %w", d.Component, d.Env, err)
	}
	if _, err := t.pg.Exec(t.ctx, t.q.putDeployed, d.Env, d.Component, data); err != nil {
		return t.wrap(err, "put deployed entry of %s in %s", d.Component, d.Env)
	}
	return nil
}
