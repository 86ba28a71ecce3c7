package commands

import (
	"strings"
)

// incident TICKET [in ENV] [note]: the team decides that a deployment done
// earlier caused an incident. The release keeps its state (done); the mark
// is an audit entry (ActionIncident, done>done, like a rollback's
// rolled_back) that a report reads as a change failure of that deployment,
// counted in the period it was done in, and as the start of a time to
// restore for its components. Who may mark it: its requester, who knows
// the change, or an admin (whoRequesterOrAdmin), as for cancel.

// incidentDetail is the start of an incident entry's detail; the report
// reads the components after it (listAfter).
const incidentDetail = "components: "

// incident marks the command's ticket's last done release (in the command's
// environment, when named) as an incident's cause.
func (r *cmdRun) incident() error {
	rel, err := r.lastDone(r.cmd.Ticket, r.cmd.Env)
	if err != nil {
		return err
	}
	if err := r.authorize(&rel); err != nil {
		return err
	}
	detail := incidentDetail + strings.Join(rel.Components, ",")
	if r.cmd.Text != "" {
		detail += "; note: " + r.cmd.Text
	}
	if err := r.auditRelease(ActionIncident, rel, rel.State, rel.State, detail); err != nil {
		return err
	}
	where := ""
	if r.s.envConfigured() {
		where = " in " + r.s.envName(rel)
	}
	r.thread(rel, say("%v marked this release as the cause of an incident%s.", Person(r.m.User), noteSuffix(r.cmd.Text)))
	r.reply(say("Marked %v%s (done %s) as the cause of an incident: reports count it as a change failure, and its time to restore runs from now.",
		TicketRef(rel), where, r.s.clockAt(rel.Updated, layoutDate)))
	return nil
}

// noteSuffix is ": note" for a note, else nothing.
func noteSuffix(note string) string {
	if note == "" {
		return ""
	}
	return ": " + note
}

// lastDone returns ticket's most recent done release, in env when set. A
// ticket done in several environments, with none named, is refused with
// the list: an incident never guesses the deployment.
func (r *cmdRun) lastDone(ticket, env string) (Release, error) {
	all, err := r.tx.Releases(ticket, 0)
	if err != nil {
		return Release{}, err
	}
	if len(all) == 0 {
		return Release{}, Errorf(ENOTFOUND, "%s has never been requested: nothing to mark.", ticket)
	}
	var found []Release
	var envs []string
	for _, rel := range all { // newest first
		name := r.s.envName(rel)
		if rel.State != StateDone || (env != "" && name != env) || contains(envs, name) {
			continue
		}
		found = append(found, rel)
		envs = append(envs, name)
	}
	switch {
	case len(found) == 1 || (len(found) > 1 && env != ""):
		return found[0], nil
	case len(found) > 1:
		return Release{}, Errorf(ECONFLICT, "%s was done in %s: say which, e.g. incident %s in %s.", ticket, joinTickets(envs), ticket, envs[0])
	case env != "":
		for _, rel := range all {
			if r.s.envName(rel) == env {
				return Release{}, Errorf(ECONFLICT, "%s has no done release in %s (its last is %s): only a done release can be an incident's cause.", ticket, env, rel.State)
			}
		}
		return Release{}, Errorf(ENOTFOUND, "%s has never been requested in %s: nothing to mark.", ticket, env)
	}
	return Release{}, Errorf(ECONFLICT, "%s has no done release (its last is %s): only a done release can be an incident's cause.", ticket, all[0].State)
}
