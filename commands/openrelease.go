package commands

// openRelease returns ticket's open release in env, or ENOTFOUND. With env
// "" it returns the ticket's one open release whatever its environment;
// when there are several it returns the newest. (The core, not this helper,
// is to refuse that ambiguity with the list: see "The pipeline (issue 14)"
// in docs/architecture.md.) With env set it returns the open release whose
// EnvName is env, so that a release written before environments existed is
// found in DefaultEnv.
func openRelease(tx Tx, ticket, env string) (Release, error) {
	open, err := tx.OpenReleases(ticket)
	if err != nil {
		return Release{}, err
	}
	for i := len(open) - 1; i >= 0; i-- {
		if env == "" || open[i].EnvName() == env {
			return open[i], nil
		}
	}
	return Release{}, Errorf(ENOTFOUND, "%s has no open release.", ticket)
}
