package commands

import (
	"strings"
)

// VerbUnknown is the verb reported to an Observer for a message that names
// no command.
const VerbUnknown Verb = "unknown"

// verbWord is the verb a text starts with, even when it does not parse.
type verbWord string

func verbOf(text string) verbWord {
	f := strings.Fields(text)
	if len(f) == 0 {
		return ""
	}
	v := strings.ToLower(f[0])
	if v == "dep" && len(f) > 1 {
		v += " " + strings.ToLower(f[1])
	}
	return verbWord(v)
}

func (v verbWord) changes() bool { return Command{Verb: Verb(v)}.Changes() }

// observedVerb is the verb an Observer is told: the command's, the known
// verb a message that did not parse starts with, or VerbUnknown, so that
// metric labels stay few.
func observedVerb(cmd Command, perr error, text string) Verb {
	if perr == nil {
		return cmd.Verb
	}
	v := Verb(verbOf(text))
	for _, u := range Help {
		if u.Verb == v {
			return v
		}
	}
	return VerbUnknown
}

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
	VerbHelp    Verb = "help"
)

// Command is a parsed command.
type Command struct {
	Verb        Verb
	Ticket      string   // upper-cased, valid key; empty where none was given
	Component   string   // lock, unlock
	Components  []string // dobro … on a,b
	NoNeedAdmin bool     // dobro … no_need_admin
	Text        string   // dobro's note; reject's, cancel's and lock's reason
}

// Changes reports whether the command may change state (and so is audited
// when refused).
func (c Command) Changes() bool {
	switch c.Verb {
	case VerbDobro, VerbAccept, VerbReject, VerbHere, VerbStart, VerbFinish, VerbCancel, VerbLock, VerbUnlock:
		return true
	}
	return false
}

// Usage describes one command for help and docs/commands.md.
type Usage struct {
	Verb     Verb
	Syntax   string
	Who      string
	Describe string
}

// Help is the table of every command, in the order help shows them.
var Help = []Usage{
	{VerbDobro, "dobro TICKET [note or link…] [on COMPONENT,…] [no_need_admin]", "requester", "check the ticket in the tracker, queue a release, ask the approvers"},
	{VerbQueue, "queue", "anyone", "the open releases in order, then the component locks (and, on PostgreSQL, which instance leads)"},
	{VerbAccept, "accept TICKET", "approver", "grant the release (never your own)"},
	{VerbReject, "reject TICKET [reason]", "approver", "refuse the release and tell the requester why"},
	{VerbHere, "here TICKET", "admin", "claim an accepted release as its admin"},
	{VerbStart, "dep start TICKET", "requester or admin", "take the components' locks and run the start hook"},
	{VerbFinish, "dep finish TICKET", "requester or admin", "run the finish hook, release the locks, close the release"},
	{VerbCancel, "cancel TICKET [reason]", "requester or admin", "withdraw a release that has not finished; frees its locks"},
	{VerbLock, "lock COMPONENT [reason]", "admin", "freeze a component (all freezes every component)"},
	{VerbUnlock, "unlock COMPONENT", "admin", "unfreeze a component"},
	{VerbStatus, "status TICKET", "anyone", "the release's state, people, locks and last hook result"},
	{VerbHistory, "history [TICKET]", "anyone", "the ticket's releases, or the most recent releases"},
	{VerbLog, "log TICKET", "anyone", "the output of the release's last hook"},
	{VerbHelp, "help", "anyone", "this list"},
}

func verbWords() []string {
	out := make([]string, 0, len(Help))
	for _, u := range Help {
		out = append(out, string(u.Verb))
	}
	return out
}

// String renders c as text that Parse turns back into c.
func (c Command) String() string {
	parts := []string{string(c.Verb)}
	switch c.Verb {
	case VerbLock, VerbUnlock:
		parts = append(parts, c.Component)
	case VerbQueue, VerbHelp:
	default:
		if c.Ticket != "" {
			parts = append(parts, c.Ticket)
		}
	}
	if len(c.Components) > 0 {
		parts = append(parts, "on", strings.Join(c.Components, ","))
	}
	if c.Text != "" {
		parts = append(parts, c.Text)
	}
	if c.NoNeedAdmin {
		parts = append(parts, NoNeedAdmin)
	}
	return strings.Join(parts, " ")
}
