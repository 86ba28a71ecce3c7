package commands

import (
	"strings"
)

// A verb is described once, in verbs: its words, its arguments, who may use
// it, whether it changes state and the method that carries it out. Parse,
// authorize, help (Help, docs/commands.md), the audit of refusals and the
// metrics' verb names all read this table; the method lives in the file of
// its noun (release.go, deploy.go, locks.go, reads.go).

// Verb names a command.
type Verb string

// The commands, as typed after @dobrobot.
const (
	VerbDobro   Verb = "dobro"
	VerbQueue   Verb = "queue"
	VerbAccept  Verb = "accept"
	VerbReject  Verb = "reject"
	VerbHere    Verb = "here"
	VerbStart   Verb = "dep start"
	VerbFinish  Verb = "dep finish"
	VerbCancel  Verb = "cancel"
	VerbLock    Verb = "lock"
	VerbUnlock  Verb = "unlock"
	VerbStatus  Verb = "status"
	VerbHistory Verb = "history"
	VerbLog     Verb = "log"
	VerbAudit   Verb = "audit"
	VerbHelp    Verb = "help"
	VerbPromote Verb = "promote"
	VerbWhere   Verb = "where"
	VerbHome    Verb = "home"
)

// VerbRollback is the pipeline's rollback (rollback.go).
const VerbRollback Verb = "rollback"

// VerbIncident marks a done release as an incident's cause (incident.go).
const VerbIncident Verb = "incident"

// VerbExtend snoozes the deploying reminder (reminders_more.go).
const VerbExtend Verb = "extend"

// VerbUnknown is the verb reported to an Observer for a message that names
// no command.
const VerbUnknown Verb = "unknown"

// verbSpec describes one verb.
type verbSpec struct {
	Verb     Verb    // the words that name it, as typed after @dobrobot
	Args     argKind // what follows the words (parseArgs)
	Who      who     // who may use it (authorize)
	Does     string  // for whoAdmin's refusal: "Only admins can <Does>"
	Changes  bool    // it may change state: its refusals are audited
	Needs    need    // what prepare fetches for it before its transaction
	Run      func(*cmdRun) error
	Syntax   string // for help and docs/commands.md
	Describe string // likewise
}

// argKind is the grammar of what follows a verb's words (parseArgs).
type argKind int

const (
	argNone              argKind = iota + 1 // nothing (0 is no verb's)
	argTicket                               // one ticket
	argTicketReason                         // a ticket, then free text
	argOptionalTicket                       // at most one ticket
	argComponent                            // one component
	argComponentReason                      // a component, then free text
	argRequest                              // dobro's: a ticket, a note, on a,b, no_need_admin
	argPromote                              // a ticket, then to ENV (or in ENV) with environments
	argOptionalComponent                    // at most one component
	argAudit                                // audit's: format, since, until, ticket (parseAudit)
	argReport                               // report's: an environment, a period (reportcmd.go)
	argRollback                             // a component, then in ENV and to VERSION (parseRollback)
	argStart                                // dep start's: a ticket, then force REASON… (freezeparse.go)
	argFreeze                               // freeze's: [in ENV] until T [reason…] (freezeparse.go)
	argName                                 // unfreeze's: one name (freezeparse.go)
	argOverrides                            // overrides': since T (overrides.go)
)

// need names what a command needs from the network, fetched before its
// transaction (prepare).
type need int

const (
	needTicket    need = 1 << iota // the ticket from the tracker, and the approvers to ask
	needAdmins                     // the admins, to ask one to claim the release
	needApprovers                  // every environment's approvers and admins (promote)
	needReport                     // the report, read from the audit log (reportcmd.go)
	needRoles                      // the actor's roles, for a verb anyone may use (home)
	needRecheck                    // dep start: the ticket again, with tracker.recheck_on_start (recheck.go)
)

// who is the rule deciding who may use a verb (authorize).
type who int

const (
	whoAnyone           who = iota
	whoRequester            // a requester (a member of the release channel when none are configured)
	whoApprover             // an approver
	whoOtherApprover        // an approver other than the release's requester
	whoAdmin                // an admin
	whoRequesterOrAdmin     // the release's requester or admin, or any admin
	// whoDeployer is whoRequesterOrAdmin where the release's environment
	// names no deployers; where it does, a deployer or an admin.
	whoDeployer
	// whoRequesterOrEnvAdmin is anyone who may request releases in the
	// command's environment, or an admin of it (rollback: no release yet).
	whoRequesterOrEnvAdmin
)

// String is the rule as help says it.
func (w who) String() string {
	switch w {
	case whoRequester:
		return "requester"
	case whoApprover, whoOtherApprover:
		return "approver"
	case whoAdmin:
		return "admin"
	case whoRequesterOrAdmin, whoRequesterOrEnvAdmin:
		return "requester or admin"
	case whoDeployer:
		return "requester or admin (deployer where configured)"
	}
	return "anyone"
}

// verbs is every verb, in the order help shows them. It is filled in init
// because the methods it names read it (through lookup and Help), which a
// package variable's initialiser may not.
var verbs []verbSpec

// Help is the table of every command, in the order help shows them: verbs
// as people read it.
var Help []Usage

// Usage describes one command for help and docs/commands.md.
type Usage struct {
	Verb     Verb
	Syntax   string
	Who      string
	Describe string
}

func init() {
	verbs = []verbSpec{
		{Verb: VerbDobro, Args: argRequest, Who: whoRequester, Changes: true, Needs: needTicket, Run: (*cmdRun).dobro,
			Syntax: "dobro TICKET [to ENV] [version V] [note or link…] [on COMPONENT,…] [hotfix] [no_need_admin]", Describe: "check the ticket in the tracker, queue a release, ask the approvers"},
		{Verb: VerbQueue, Args: argNone, Who: whoAnyone, Run: (*cmdRun).queue,
			Syntax: "queue", Describe: "the open releases in queue order, each waiting one with its place for the components it waits for and about when its turn comes, whose turn it is and until when, then the component locks (and, on PostgreSQL, which instance leads)"},
		{Verb: VerbAccept, Args: argTicket, Who: whoOtherApprover, Changes: true, Needs: needAdmins, Run: (*cmdRun).accept,
			Syntax: "accept TICKET", Describe: "grant the release (never your own)"},
		{Verb: VerbReject, Args: argTicketReason, Who: whoApprover, Changes: true, Run: (*cmdRun).reject,
			Syntax: "reject TICKET [reason]", Describe: "refuse the release and tell the requester why"},
		{Verb: VerbHere, Args: argTicket, Who: whoAdmin, Does: "claim releases", Changes: true, Run: (*cmdRun).here,
			Syntax: "here TICKET", Describe: "claim an accepted release as its admin"},
		{Verb: VerbStart, Args: argStart, Who: whoDeployer, Changes: true, Needs: needRecheck, Run: (*cmdRun).start,
			Syntax: "dep start TICKET [force REASON…]", Describe: "take the components' locks and run the start hook; during a freeze window only an admin of the environment can, with force and a reason (audited, announced)"},
		{Verb: VerbFinish, Args: argTicket, Who: whoDeployer, Changes: true, Run: (*cmdRun).finish,
			Syntax: "dep finish TICKET", Describe: "run the finish hook, release the locks, close the release"},
		{Verb: VerbCancel, Args: argTicketReason, Who: whoRequesterOrAdmin, Changes: true, Run: (*cmdRun).cancel,
			Syntax: "cancel TICKET [reason]", Describe: "withdraw a release that has not finished; frees its locks"},
		{Verb: VerbExtend, Args: argTicket, Who: whoRequesterOrAdmin, Changes: true, Run: (*cmdRun).extend,
			Syntax: "extend TICKET", Describe: "still deploying: snooze the deploying reminder for reminders.repeat (or reminders.deploying without it)"},
		{Verb: VerbLock, Args: argComponentReason, Who: whoAdmin, Does: "freeze components", Changes: true, Run: (*cmdRun).lock,
			Syntax: "lock COMPONENT [in ENV] [reason]", Describe: "freeze a component (all freezes every component) in one environment, or without in in every one"},
		{Verb: VerbUnlock, Args: argComponent, Who: whoAdmin, Does: "unfreeze components", Changes: true, Run: (*cmdRun).unlock,
			Syntax: "unlock COMPONENT [in ENV]", Describe: "unfreeze a component (the freeze of that environment, or without in the one of every environment)"},
		{Verb: VerbFreeze, Args: argFreeze, Who: whoAdmin, Does: "freeze environments", Changes: true, Run: (*cmdRun).freeze,
			Syntax: "freeze [in ENV] until T [reason…]", Describe: "freeze every component (in one environment, or without in in every one) until T (15:04, 2026-12-27, 2026-12-27T09:00 or 2h, in the configured timezone); it ends by itself"},
		{Verb: VerbUnfreeze, Args: argName, Who: whoAdmin, Does: "end freezes", Changes: true, Run: (*cmdRun).unfreeze,
			Syntax: "unfreeze NAME", Describe: "end a freeze set from chat before its time (freezes lists their names)"},
		{Verb: VerbFreezes, Args: argNone, Who: whoAnyone, Run: (*cmdRun).freezes,
			Syntax: "freezes", Describe: "the freezes in force now and the next window of each configured one"},
		{Verb: VerbPromote, Args: argPromote, Who: whoRequester, Changes: true, Needs: needApprovers, Run: (*cmdRun).promote,
			Syntax: "promote TICKET [to ENV]", Describe: "open the ticket's release in the next environment (or the one named) for the version and components done in the last one; needs environments"},
		{Verb: VerbWhere, Args: argOptionalComponent, Who: whoAnyone, Run: (*cmdRun).where,
			Syntax: "where [COMPONENT]", Describe: "what runs where: per environment and component, the version and ticket last done there, by whom and when, and what is deploying now"},
		{Verb: VerbRollback, Args: argRollback, Who: whoRequesterOrEnvAdmin, Changes: true, Needs: needApprovers, Run: (*cmdRun).rollback,
			Syntax: "rollback COMPONENT [in ENV] [to VERSION]", Describe: "deploy again the version of a component done in the environment before the current one (or the one named), as a release of the ticket that deployed it, with the usual approvals, locks and hooks; the release it replaces is recorded as rolled back; needs environments"},
		{Verb: VerbIncident, Args: argTicketReason, Who: whoRequesterOrAdmin, Changes: true, Run: (*cmdRun).incident,
			Syntax: "incident TICKET [in ENV] [note]", Describe: "mark the ticket's last done release (in ENV) as the cause of an incident: a change failure in reports, whose time to restore starts now (docs/reports.md)"},
		{Verb: VerbHome, Args: argNone, Who: whoAnyone, Needs: needRoles, Run: (*cmdRun).home,
			Syntax: "home", Describe: "your App Home: the releases waiting for you (with the command each button types), the queue, locks, freezes and where"},
		{Verb: VerbStatus, Args: argTicket, Who: whoAnyone, Run: (*cmdRun).status,
			Syntax: "status TICKET", Describe: "the release's state, people, locks and last hook result"},
		{Verb: VerbHistory, Args: argOptionalTicket, Who: whoAnyone, Run: (*cmdRun).history,
			Syntax: "history [TICKET] [in ENV] [on COMPONENT] [by @person] [since T] [until T] or history at T", Describe: "the ticket's releases (in one environment with in), or the most recent releases; on, by (the requester), since and until (T a date or RFC 3339 time, when requested) filter them, from the audit log; at T: the releases deploying at that moment"},
		{Verb: VerbLog, Args: argTicket, Who: whoAnyone, Run: (*cmdRun).log,
			Syntax: "log TICKET", Describe: "the output of the release's last hook"},
		{Verb: VerbAudit, Args: argAudit, Who: whoAdmin, Does: "export the audit log", Run: (*cmdRun).auditExport,
			Syntax: auditSyntax, Describe: "the audit log as a file, FORMAT csv (the default) or jsonl, TIME RFC 3339 or a date: sent in your DM with the bot, written to a file in the console"},
		{Verb: VerbReport, Args: argReport, Who: whoAnyone, Needs: needReport, Run: (*cmdRun).report,
			Syntax: "report [ENV] [last 30d or since DATE [until DATE]]", Describe: "the DORA figures per environment (deploys, lead time, change failure rate, time to restore) next to the period before; last 30d by default (docs/reports.md)"},
		{Verb: VerbOverrides, Args: argOverrides, Who: whoAnyone, Run: (*cmdRun).overrides,
			Syntax: "overrides [since T]", Describe: "the admin overrides from the audit log, newest first: starts forced during a freeze, hotfixes let go first, releases started, finished or cancelled by an admin for their requester; the last 30 days by default"},
		{Verb: VerbHelp, Args: argNone, Who: whoAnyone, Run: (*cmdRun).help,
			Syntax: "help", Describe: "this list"},
	}
	Help = make([]Usage, len(verbs))
	for i, v := range verbs {
		Help[i] = Usage{Verb: v.Verb, Syntax: v.Syntax, Who: v.Who.String(), Describe: v.Describe}
	}
}

// lookup returns the description of verb v.
func lookup(v Verb) (verbSpec, bool) {
	for _, s := range verbs {
		if s.Verb == v {
			return s, true
		}
	}
	return verbSpec{}, false
}

// Changes reports whether v names a command that may change state. A
// refused command that may is audited.
func (v Verb) Changes() bool {
	s, ok := lookup(v)
	return ok && s.Changes
}

// VerbOf returns the verb a text starts with, even when the text does not
// parse ("DEP launch X" gives "dep launch"): the name a refusal's audit
// entry gives the command.
func VerbOf(text string) Verb {
	f := strings.Fields(text)
	if len(f) == 0 {
		return ""
	}
	v := strings.ToLower(f[0])
	if v == "dep" && len(f) > 1 {
		v += " " + strings.ToLower(f[1])
	}
	return Verb(v)
}

// observedVerb is the verb an Observer is told: the command's, the known
// verb a message that did not parse starts with, or VerbUnknown, so that
// metric labels stay few.
func observedVerb(cmd Command, perr error, text string) Verb {
	if perr == nil {
		return cmd.Verb
	}
	if v := VerbOf(text); isVerb(v) {
		return v
	}
	return VerbUnknown
}

func isVerb(v Verb) bool {
	_, ok := lookup(v)
	return ok
}

// verbWords returns the words of every verb, for "did you mean".
func verbWords() []string {
	out := make([]string, 0, len(verbs))
	for _, s := range verbs {
		out = append(out, string(s.Verb))
	}
	return out
}

// Command is a parsed command.
type Command struct {
	Verb        Verb
	Ticket      string   // upper-cased, valid key; empty where none was given
	Component   string   // lock, unlock
	Components  []string // dobro … on a,b
	NoNeedAdmin bool     // dobro … no_need_admin
	Hotfix      bool     // dobro … hotfix (its last word)
	Text        string   // dobro's note; reject's, cancel's and lock's reason
	// Env is the environment named by in ENV (dobro: to ENV), Build the
	// version named by dobro … version V; both only with environments
	// configured (ParseIn), empty when not named.
	Env   string
	Build string
	// Force is dep start … force REASON (the reason in Text); Until is
	// freeze's T as typed; Name is unfreeze's (freezeparse.go).
	Force bool
	Until string
	Name  string
	// Export is what audit asks for (parseAudit); nil for other verbs.
	Export *AuditExport
}

// Changes reports whether the command may change state (and so is audited
// when refused).
func (c Command) Changes() bool { return c.Verb.Changes() }

// String renders c as text that Parse (ParseIn, for a command that names an
// environment) turns back into c.
func (c Command) String() string {
	parts := []string{string(c.Verb)}
	spec, _ := lookup(c.Verb)
	switch spec.Args {
	case argAudit:
		return auditString(c.Export)
	case argComponent, argComponentReason, argRollback:
		parts = append(parts, c.Component)
	case argOptionalComponent:
		if c.Component != "" {
			parts = append(parts, c.Component)
		}
	case argNone:
	default:
		if c.Ticket != "" {
			parts = append(parts, c.Ticket)
		}
	}
	switch {
	case c.Env != "" && c.Verb == VerbDobro:
		parts = append(parts, "to", c.Env)
	case c.Env != "":
		parts = append(parts, "in", c.Env)
	}
	if c.Component != "" && c.Verb == VerbHistory {
		parts = append(parts, "on", c.Component) // history's filter (historyfilter.go)
	}
	if c.Build != "" && c.Verb == VerbRollback {
		parts = append(parts, "to", c.Build)
	} else if c.Build != "" {
		parts = append(parts, "version", c.Build)
	}
	if len(c.Components) > 0 {
		parts = append(parts, "on", strings.Join(c.Components, ","))
	}
	if c.Until != "" {
		parts = append(parts, "until", c.Until)
	}
	if c.Force {
		parts = append(parts, "force")
	}
	if c.Name != "" {
		parts = append(parts, c.Name)
	}
	if c.Text != "" {
		parts = append(parts, c.Text)
	}
	if c.Hotfix {
		parts = append(parts, HotfixWord)
	}
	if c.NoNeedAdmin {
		parts = append(parts, NoNeedAdmin)
	}
	return strings.Join(parts, " ")
}
