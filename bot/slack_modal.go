package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/dobrobot/dobrobot/commands"
)

// TicketSearcher finds the tickets dobro would accept (the allowed
// projects, a ready status) whose key or summary matches what a person
// typed, at most max: tracker.Ready. Only the Slack modal searches, so the
// port is the adapter's, not the core's.
type TicketSearcher interface {
	SearchTickets(ctx context.Context, text string, max int) ([]commands.Ticket, error)
}

// Prechecker checks a form's ticket before anything is recorded, as dobro
// would (*commands.Service's Precheck): a refusal is shown on the form's
// ticket field and nothing is queued.
type Prechecker interface {
	Precheck(ctx context.Context, m commands.Message) error
}

// Modal configures the form /dobro alone opens. A Slack without one
// answers /dobro alone with help.
type Modal struct {
	// Tickets lists the ticket select's options as the person types; nil
	// offers only the key typed.
	Tickets TicketSearcher
	// Policy is the configured policy (before commands.NewService fills
	// it in): its environments (none configured: no environment select),
	// default environment and components.
	Policy commands.Policy
	// Timeout bounds the tracker's part of a suggestion and of a
	// submission's check, so that each ack makes Slack's 3 s (2 s).
	Timeout time.Duration
}

// The form's IDs: the callback of the view, and each input's block and
// action (the same string).
const (
	modalCallback   = "dobro"
	blockTicket     = "ticket"
	blockEnv        = "env"
	blockComponents = "components"
	blockOptions    = "options"
	blockNote       = "note"
	// typeTheKey is the value of the option offered when the tracker is
	// slow: choosing it is answered on the field with how to type a key.
	typeTheKey = "-"
	// modalTriggerBudget bounds views.open: the trigger is good for 3 s
	// from the command, and the ack must follow.
	modalTriggerBudget = 2500 * time.Millisecond
)

func (m *Modal) timeout() time.Duration { return positiveOr(m.Timeout, 2*time.Second) }

// envs returns the configured environments' names, nil without any.
func (m *Modal) envs() []string {
	if len(m.Policy.Envs) == 0 {
		return nil
	}
	return m.Policy.EnvNames()
}

// components returns the components the form offers: those of every
// environment, in order, each once, or the top level's without any.
func (m *Modal) components() []string {
	if len(m.Policy.Envs) == 0 {
		return m.Policy.Components
	}
	var out []string
	for _, e := range m.Policy.Envs {
		for _, c := range e.Components {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// defaultEnv is the environment preselected: default_environment, else the last.
func (m *Modal) defaultEnv() string {
	envs := m.envs()
	if m.Policy.DefaultEnv != "" || len(envs) == 0 {
		return m.Policy.DefaultEnv
	}
	return envs[len(envs)-1]
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func option(value, text string) *slack.OptionBlockObject {
	if r := []rune(text); len(r) > 75 { // Slack's limit for an option's text
		text = string(r[:74]) + "…"
	}
	return slack.NewOptionBlockObject(value, plain(text), nil)
}

// modalMetadata is what the form carries for its submission: where /dobro
// was typed, which is where the answer goes, as for a typed command.
type modalMetadata struct {
	Channel string `json:"channel"`
}

// view builds the form opened for /dobro typed in channel.
func (m *Modal) view(channel string) slack.ModalViewRequest {
	meta, _ := json.Marshal(modalMetadata{Channel: channel})
	ticket := slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, plain("Type a key or words of the summary"), blockTicket)
	zero := 0
	ticket.MinQueryLength = &zero // the ready tickets are listed before anything is typed
	blocks := []slack.Block{
		slack.NewInputBlock(blockTicket, plain("Ticket"), plain("Tickets ready for release; or type the whole key and pick it."), ticket),
	}
	if envs := m.envs(); len(envs) > 0 {
		opts := make([]*slack.OptionBlockObject, len(envs))
		var initial *slack.OptionBlockObject
		for i, e := range envs {
			opts[i] = option(e, e)
			if e == m.defaultEnv() {
				initial = opts[i]
			}
		}
		sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Environment"), blockEnv, opts...)
		sel.InitialOption = initial
		blocks = append(blocks, slack.NewInputBlock(blockEnv, plain("Environment"), nil, sel))
	}
	if comps := m.components(); len(comps) > 0 {
		opts := make([]*slack.OptionBlockObject, len(comps))
		for i, c := range comps {
			opts[i] = option(c, c)
		}
		sel := slack.NewOptionsMultiSelectBlockElement(slack.MultiOptTypeStatic, plain("The ticket's components"), blockComponents, opts...)
		blocks = append(blocks, slack.NewInputBlock(blockComponents, plain("Components"),
			plain("Leave empty to lock the ticket's own components."), sel).WithOptional(true))
	}
	flagOpts := []*slack.OptionBlockObject{
		slack.NewOptionBlockObject(commands.NoNeedAdmin, plain("No admin needed"), plain("The release needs no admin to run it (no_need_admin).")),
	}
	if len(m.envs()) > 0 { // dobro reads hotfix only with environments configured
		flagOpts = append(flagOpts, slack.NewOptionBlockObject(commands.HotfixWord, plain("Hotfix"),
			plain("Ask to go first: once an admin accepts it, it goes ahead of the waiting releases (hotfix).")))
	}
	flags := slack.NewCheckboxGroupsBlockElement(blockOptions, flagOpts...)
	blocks = append(blocks, slack.NewInputBlock(blockOptions, plain("Options"), nil, flags).WithOptional(true))
	note := slack.NewPlainTextInputBlockElement(plain("What it is for (optional)"), blockNote)
	note.MaxLength = 500
	blocks = append(blocks, slack.NewInputBlock(blockNote, plain("Note"), nil, note).WithOptional(true))
	return slack.ModalViewRequest{
		Type: slack.VTModal, Title: plain("Dobro"), Submit: plain("Request"), Close: plain("Cancel"),
		CallbackID: modalCallback, PrivateMetadata: string(meta), Blocks: slack.Blocks{BlockSet: blocks},
	}
}

// openModal opens the form for a /dobro typed alone, first and at once:
// the trigger is good for 3 s, and nothing slow comes before it. If Slack
// refuses (the trigger expired), the person is told how to go on.
func (ses *session) openModal(sock *socket, req socketmode.Request, in inbound, log zerolog.Logger, read time.Time) {
	ctx, cancel := context.WithTimeout(ses.work, modalTriggerBudget)
	defer cancel()
	api, _ := ses.api()
	_, err := api.OpenViewContext(ctx, in.trigger, ses.Modal.view(in.msg.Channel))
	if err == nil {
		log.Debug().Msg("opened the dobro form")
		ses.ack(sock, req, log, read)
		return
	}
	log.Warn().Err(err).Dur("after", time.Since(read)).Msg("could not open the dobro form")
	text := commands.Text{commands.Plain(fmt.Sprintf("The form could not open (%s): try /dobro again, or type the command, like /dobro dobro PAY-123.", slackError(err)))}
	if ses.Standby != nil || ses.Service == nil {
		ses.ackWith(sock, req, log, read, map[string]any{"text": text.String()})
		return
	}
	// The ack may come too late for Slack to show it; the outbox's answer
	// does not.
	if err := ses.Service.Redirect(ses.work, in.msg, text); err != nil {
		log.Error().Err(err).Msg("could not record an event; not acked, so Slack redelivers it")
		return
	}
	ses.ack(sock, req, log, read)
}

// slackError is the error code of a Web API error, or a short description.
func slackError(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return "Slack did not answer in time"
}

// interaction is the part of a view_submission or block_suggestion payload
// the bot reads.
type interaction struct {
	Type string `json:"type"`
	Team struct {
		ID string `json:"id"`
	} `json:"team"`
	User struct {
		ID     string `json:"id"`
		TeamID string `json:"team_id"`
	} `json:"user"`
	View struct {
		ID              string `json:"id"`
		CallbackID      string `json:"callback_id"`
		PrivateMetadata string `json:"private_metadata"`
		State           struct {
			Values map[string]map[string]struct {
				Value          string `json:"value"`
				SelectedOption *struct {
					Value string `json:"value"`
				} `json:"selected_option"`
				SelectedOptions []struct {
					Value string `json:"value"`
				} `json:"selected_options"`
			} `json:"values"`
		} `json:"state"`
	} `json:"view"`
	ActionID string `json:"action_id"`
	Value    string `json:"value"` // block_suggestion: what is typed
}

// formInteraction handles the interactions of the form: it answers a
// block_suggestion, and a view_submission it refuses, in their acks
// (handled true). A view_submission that passes comes back as the command
// it stands for, to be received and handled as a typed one. Anything else
// is left to parseAction.
func (ses *session) formInteraction(sock *socket, req socketmode.Request, log zerolog.Logger, read time.Time) (inbound, bool) {
	var p interaction
	if ses.Modal == nil || json.Unmarshal(req.Payload, &p) != nil ||
		p.Type != "view_submission" && p.Type != "block_suggestion" {
		return inbound{}, false
	}
	switch {
	case p.Team.ID != ses.me.Team, p.User.TeamID != "" && p.User.TeamID != ses.me.Team:
		return skip("form of another team"), false
	case p.User.ID == "" || p.User.ID == ses.me.User:
		return skip("form without a user, or the bot's"), false
	case p.View.CallbackID != modalCallback:
		return skip("another form: " + p.View.CallbackID), false
	}
	log = log.With().Str("user", p.User.ID).Str("view", p.View.ID).Logger()
	if p.Type == "block_suggestion" {
		ses.ackWith(sock, req, log, read, map[string]any{"options": ses.suggest(p.Value, log)})
		return inbound{}, true
	}
	m, field, problem := ses.formCommand(p, read)
	if problem == "" {
		if pc, ok := ses.Service.(Prechecker); ok && ses.Standby == nil {
			ctx, cancel := context.WithTimeout(ses.work, ses.Modal.timeout())
			err := pc.Precheck(ctx, m)
			cancel()
			switch commands.ErrorCode(err) {
			case "":
			case commands.EUNAVAILABLE:
				// Not known in time: the form closes and the command
				// is answered where it was typed, as a typed dobro is.
				log.Info().Str("why", commands.ErrorMessage(err)).Msg("could not check the form's ticket in time; handled as typed")
			default:
				field, problem = blockTicket, commands.ErrorMessage(err)
			}
		}
	}
	if problem != "" {
		log.Info().Str("field", field).Str("problem", problem).Msg("the dobro form was refused on a field")
		ses.ackWith(sock, req, log, read, map[string]any{"response_action": "errors", "errors": map[string]string{field: clip(problem, 300)}})
		return inbound{}, true
	}
	return inbound{kind: inboundCommand, msg: m}, false
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

var formChannel = regexp.MustCompile(`^[CDG][A-Z0-9]{2,30}$`)

// formCommand builds the dobro command a submitted form stands for, or
// says which field is wrong and why. The command is checked by parsing it
// back: a note whose words would read as part of the command (a trailing
// "on x", no_need_admin) is refused on the note rather than change what
// is requested.
func (ses *session) formCommand(p interaction, read time.Time) (commands.Message, string, string) {
	values := p.View.State.Values
	selected := func(block string) string {
		if v := values[block][block].SelectedOption; v != nil {
			return v.Value
		}
		return ""
	}
	var meta modalMetadata
	if json.Unmarshal([]byte(p.View.PrivateMetadata), &meta) != nil || !formChannel.MatchString(meta.Channel) {
		return commands.Message{}, blockTicket, "This form is out of date: close it and type /dobro again."
	}
	key := strings.ToUpper(strings.TrimSpace(selected(blockTicket)))
	switch {
	case key == "" || key == typeTheKey:
		return commands.Message{}, blockTicket, "Type the ticket's whole key, like PAY-123, and pick it from the list."
	case !commands.ValidTicket(key):
		return commands.Message{}, blockTicket, fmt.Sprintf("%s is not a ticket key (like PAY-123).", clip(key, 40))
	}
	words := []string{string(commands.VerbDobro), key}
	envs := ses.Modal.envs()
	env := selected(blockEnv)
	switch {
	case len(envs) == 0:
		env = ""
	case env == "":
		env = ses.Modal.defaultEnv()
	case !slices.Contains(envs, env):
		return commands.Message{}, blockEnv, fmt.Sprintf("%s is not an environment: open the form again.", clip(env, 40))
	}
	if env != "" {
		words = append(words, "to", env)
	}
	var comps []string
	for _, o := range values[blockComponents][blockComponents].SelectedOptions {
		if !slices.Contains(ses.Modal.components(), o.Value) {
			return commands.Message{}, blockComponents, fmt.Sprintf("%s is not a component: open the form again.", clip(o.Value, 40))
		}
		comps = append(comps, o.Value)
	}
	if len(comps) > 0 {
		words = append(words, "on", strings.Join(comps, ","))
	}
	checked := func(flag string) bool {
		return slices.ContainsFunc(values[blockOptions][blockOptions].SelectedOptions, func(o struct {
			Value string `json:"value"`
		}) bool {
			return o.Value == flag
		})
	}
	noAdmin, hotfix := checked(commands.NoNeedAdmin), len(envs) > 0 && checked(commands.HotfixWord)
	if noAdmin {
		words = append(words, commands.NoNeedAdmin)
	}
	note := strings.Join(strings.Fields(values[blockNote][blockNote].Value), " ")
	words = append(words, note)
	if hotfix {
		words = append(words, commands.HotfixWord) // dobro reads it as the note's last word
	}
	text := strings.Join(words, " ")
	cmd, err := commands.ParseIn(text, envs)
	if err != nil {
		return commands.Message{}, blockNote, commands.ErrorMessage(err)
	}
	// The note must come back whole: a word the parser takes out of it
	// (no_need_admin, on x, hotfix) would change the request.
	if cmd.Ticket != key || cmd.Env != env || cmd.Build != "" || cmd.NoNeedAdmin != noAdmin || cmd.Hotfix != hotfix || !slices.Equal(cmd.Components, comps) ||
		cmd.Text != strings.Join(strings.Fields(commands.Clean(note)), " ") {
		return commands.Message{}, blockNote, "Part of the note reads as part of the command (to, version, on, no_need_admin, hotfix): reword it."
	}
	via := commands.ViaSlash
	if strings.HasPrefix(meta.Channel, "D") {
		via = commands.ViaDM
	}
	return commands.Message{
		EventID: "modal:" + p.View.ID, Team: p.Team.ID, User: p.User.ID, Channel: meta.Channel,
		Text: strings.TrimSpace(text), Via: via, Time: read.UTC(),
	}, "", ""
}

// suggest returns the ticket select's options for what is typed: the
// tracker's matches within the modal's timeout, the key typed when it is
// one, and when the tracker is slow or fails, an option that says to type
// the key.
func (ses *session) suggest(typed string, log zerolog.Logger) []*slack.OptionBlockObject {
	key := strings.ToUpper(strings.TrimSpace(typed))
	if !commands.ValidTicket(key) {
		key = ""
	}
	var opts []*slack.OptionBlockObject
	failed := false
	if t := ses.Modal.Tickets; t != nil {
		ctx, cancel := context.WithTimeout(ses.work, ses.Modal.timeout())
		began := time.Now()
		found, err := t.SearchTickets(ctx, typed, 20)
		cancel()
		if err != nil {
			failed = true
			log.Warn().Err(err).Dur("took", time.Since(began)).Msg("could not search the tracker for the form; offered the typed key")
		}
		for _, tk := range found {
			opts = append(opts, option(tk.Key, tk.Key+" — "+commands.Clean(tk.Summary)))
			if tk.Key == key {
				key = ""
			}
		}
	}
	if key != "" {
		opts = append([]*slack.OptionBlockObject{option(key, key+" (as typed)")}, opts...)
	}
	if failed && len(opts) == 0 {
		opts = append(opts, option(typeTheKey, "The tracker is slow: type the whole key, like PAY-123"))
	}
	if opts == nil {
		opts = []*slack.OptionBlockObject{} // no match: Slack shows "no results"
	}
	return opts
}
