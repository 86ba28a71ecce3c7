package postgres

import (
	"errors"

	"github.com/dobrobot/dobrobot/commands"
)

// Deployed returns every (env, component) entry, by env then component.
func (t *tx) Deployed() ([]commands.Deployed, error) {
	return nil, errors.New("postgres: Deployed is not implemented yet")
}

// PutDeployed adds or replaces the entry of (d.Env, d.Component).
func (t *tx) PutDeployed(d commands.Deployed) error {
	return errors.New("postgres: PutDeployed is not implemented yet")
}
