package storage

import (
	"encoding/json"
	"fmt"

	"github.com/dobrobot/dobrobot/commands"
)

// deployedKey orders the deployed bucket by environment, then component:
// the environment, a zero byte (which no name holds), the component.
func deployedKey(env, component string) []byte {
	k := make([]byte, 0, len(env)+1+len(component))
	k = append(k, env...)
	k = append(k, 0)
	return append(k, component...)
}

// Deployed returns every (env, component) entry, ordered by env then
// component. It reads the deployed bucket only: environments × components
// entries, whatever the history's length.
func (t *tx) Deployed() ([]commands.Deployed, error) {
	b, err := t.bucket(bucketDeployed)
	if err != nil {
		return nil, err
	}
	var out []commands.Deployed
	err = b.ForEach(func(k, v []byte) error {
		var d commands.Deployed
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("storage: decode deployed entry %q: %w", k, err)
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutDeployed adds or replaces the entry of (d.Env, d.Component).
func (t *tx) PutDeployed(d commands.Deployed) error {
	if err := checkName("environment", d.Env); err != nil {
		return err
	}
	if err := checkName("component", d.Component); err != nil {
		return err
	}
	b, err := t.bucket(bucketDeployed)
	if err != nil {
		return err
	}
	v, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("storage: encode deployed entry of %s in %s: %w", d.Component, d.Env, err)
	}
	if err := b.Put(deployedKey(d.Env, d.Component), v); err != nil {
		return fmt.Errorf("storage: put deployed entry of %s in %s: %w", d.Component, d.Env, err)
	}
	return nil
}
