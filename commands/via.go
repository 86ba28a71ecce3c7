package commands

// The sources an audit entry's Via names: where the action came from.
const (
	SourceSlack     = "slack"     // a mention, a DM, a button or a slash command in Slack
	SourceConsole   = "console"   // dobrobot console
	SourceCI        = "ci"        // a CI pipeline
	SourceScheduler = "scheduler" // a scheduled job
	SourceCLI       = "cli"       // a dobrobot subcommand (e.g. an admin's command line)
	SourceDobrobot  = "dobrobot"  // the bot itself: hook results, restart recovery, checkpoints
)

// ActionOperator records that someone opened the database of a run
// configuration in the console (dobrobot console --as-operator): Actor is
// the console's user, Detail the OS user and host. It changes no state.
const ActionOperator Action = "operator"

// AuditSourceOf returns the audit source of a message that came via v: slack
// for a mention, a DM, a button or a slash command, console for the console, and "" for a
// way it does not know. It is the one place that maps one to the other.
func AuditSourceOf(v Via) string {
	switch v {
	case ViaMention, ViaDM, ViaButton, ViaSlash:
		return SourceSlack
	case ViaConsole:
		return SourceConsole
	}
	return ""
}

// source returns the audit source of what r records: the one set for the
// run (the bot's own runs set SourceDobrobot), or its message's.
func (r *cmdRun) source() string {
	if r.src != "" {
		return r.src
	}
	return AuditSourceOf(r.m.Via)
}
