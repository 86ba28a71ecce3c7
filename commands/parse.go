package commands

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxText bounds a command's length in bytes; longer messages are refused.
const MaxText = 4000

// NoNeedAdmin is the dobro flag for a release that needs no admin.
const NoNeedAdmin = "no_need_admin"

// Parse turns the text of a message (after the bot's mention) into a Command,
// for a configuration without environments. Every input either parses or
// returns an *Error with code EINVALID whose message says what is wrong and
// how to write it.
func Parse(text string) (Command, error) { return ParseIn(text, nil) }

// ParseIn is Parse for a configuration with the environments envs. Right
// after the ticket, a command that takes one may name its environment (in
// ENV; dobro says to ENV, or in ENV) and dobro its version (version V), in
// either order; lock and unlock may name an environment after the
// component. Without environments those words are what they always were,
// part of a note or a reason ("dobro PAY-1 to fix checkout"); with them, a
// name that is not one of envs is refused with the list, rather than sending
// a release to the default environment with a note "to prod".
func ParseIn(text string, envs []string) (Command, error) {
	if len(text) > MaxText {
		return Command{}, Errorf(EINVALID, "That message is too long (%d bytes; at most %d). Try help.", len(text), MaxText)
	}
	if !utf8.ValidString(text) {
		return Command{}, Errorf(EINVALID, "That message is not valid UTF-8 text. Try help.")
	}
	if i := strings.IndexFunc(text, refusedRune); i >= 0 {
		r, _ := utf8.DecodeRuneInString(text[i:])
		return Command{}, Errorf(EINVALID, "That message contains the invisible character U+%04X (%s): write it again without it. Nothing was changed.", r, runeKind(r))
	}
	words := strings.Fields(text)
	if len(words) == 0 {
		return Command{}, Errorf(EINVALID, "Say what to do, for example dobro PAY-123. Try help.")
	}
	verb := strings.ToLower(words[0])
	args := words[1:]
	if verb == "dep" {
		if len(args) == 0 {
			return Command{}, Errorf(EINVALID, "dep needs start or finish: dep start PAY-123, dep finish PAY-123.")
		}
		sub := strings.ToLower(args[0])
		if !isVerb(Verb("dep " + sub)) {
			return Command{}, Errorf(EINVALID, "dep %s is not a command%s: use dep start TICKET or dep finish TICKET.", quoteArg(args[0]), didYouMean(sub, depWords(), " (did you mean dep %s?)"))
		}
		verb, args = "dep "+sub, args[1:]
	}
	spec, ok := lookup(Verb(verb))
	if !ok {
		return Command{}, Errorf(EINVALID, "%s is not a command%s. Try help.", quoteArg(words[0]), didYouMean(verb, verbWords(), " (did you mean %s?)"))
	}
	return parseArgs(spec, args, envs)
}

// depWords returns the second words of the verbs that start with dep.
func depWords() []string {
	var out []string
	for _, w := range verbWords() {
		if sub, ok := strings.CutPrefix(w, "dep "); ok {
			out = append(out, sub)
		}
	}
	return out
}

// parseArgs reads the words after a verb by the verb's grammar.
func parseArgs(spec verbSpec, args []string, envs []string) (Command, error) {
	v := spec.Verb
	c := Command{Verb: v}
	// where reads "in ENV" right after args[0] (the ticket or the
	// component), when there are environments.
	where := func() error {
		var err error
		c.Env, args, err = inEnv(v, args, envs)
		return err
	}
	switch spec.Args {
	case argNone:
		if len(args) > 0 {
			return Command{}, Errorf(EINVALID, "%s takes nothing more: just %s.", v, v)
		}
	case argTicket:
		t, err := ticketArg(v, args)
		if err != nil {
			return Command{}, err
		}
		if err := where(); err != nil {
			return Command{}, err
		}
		if len(args) > 1 {
			return Command{}, Errorf(EINVALID, "%s takes one ticket: %s %s.", v, v, t)
		}
		c.Ticket = t
	case argTicketReason:
		t, err := ticketArg(v, args)
		if err != nil {
			return Command{}, err
		}
		if err := where(); err != nil {
			return Command{}, err
		}
		c.Ticket, c.Text = t, freeText(args[1:])
	case argOptionalTicket:
		if v == VerbHistory {
			return parseHistory(args, envs)
		}
		if len(args) > 0 {
			if _, err := ticketArg(v, args); err == nil {
				if err := where(); err != nil {
					return Command{}, err
				}
			}
		}
		if len(args) > 1 {
			return Command{}, Errorf(EINVALID, "%s takes at most one ticket: %s or %s PAY-123.", v, v, v)
		}
		if len(args) == 1 {
			t, err := ticketArg(v, args)
			if err != nil {
				return Command{}, err
			}
			c.Ticket = t
		}
	case argComponent, argComponentReason:
		if len(args) == 0 {
			return Command{}, Errorf(EINVALID, "%s needs a component: %s backend (or %s all).", v, v, v)
		}
		comp := strings.ToLower(args[0])
		if !ValidComponent(comp) {
			return Command{}, Errorf(EINVALID, "%s is not a component name (letters, digits, . _ -).", quoteArg(args[0]))
		}
		c.Component = comp
		if err := where(); err != nil {
			return Command{}, err
		}
		if spec.Args == argComponent && len(args) > 1 {
			return Command{}, Errorf(EINVALID, "%s takes one component: %s %s.", v, v, comp)
		}
		c.Text = freeText(args[1:])
	case argRequest:
		return parseDobro(args, envs)
	case argAudit:
		return parseAudit(args)
	case argRollback:
		return parseRollback(args, envs)
	case argPromote:
		t, err := ticketArg(v, args)
		if err != nil {
			return Command{}, err
		}
		c.Ticket = t
		if len(args) >= 2 && len(envs) > 0 && (strings.EqualFold(args[1], "to") || strings.EqualFold(args[1], "in")) {
			if c.Env, err = envArg(v, args[1], args[2:], envs); err != nil {
				return Command{}, err
			}
			args = args[2:]
		}
		if len(args) > 1 {
			return Command{}, Errorf(EINVALID, "%s takes a ticket and, with environments, to ENV: %s %s to production.", v, v, t)
		}
	case argOptionalComponent:
		if len(args) > 1 {
			return Command{}, Errorf(EINVALID, "%s takes at most one component: %s or %s backend.", v, v, v)
		}
		if len(args) == 1 {
			comp := strings.ToLower(args[0])
			if !ValidComponent(comp) {
				return Command{}, Errorf(EINVALID, "%s is not a component name (letters, digits, . _ -).", quoteArg(args[0]))
			}
			c.Component = comp
		}
	case argReport:
		return parseReport(args, envs)
	case argOverrides:
		return parseOverrides(args)
	case argStart, argFreeze, argName:
		return parseFreezeArgs(spec, args, envs)
	}
	return c, nil
}

// inEnv reads "in ENV" right after args[0] when there are environments, and
// returns ENV and args without those two words.
func inEnv(v Verb, args []string, envs []string) (string, []string, error) {
	if len(envs) == 0 || len(args) < 2 || !strings.EqualFold(args[1], "in") {
		return "", args, nil
	}
	env, err := envArg(v, args[1], args[2:], envs)
	if err != nil {
		return "", nil, err
	}
	return env, append([]string{args[0]}, args[3:]...), nil
}

// envArg reads the environment that follows the word kw (in or to).
func envArg(v Verb, kw string, rest []string, envs []string) (string, error) {
	list := strings.Join(envs, ", ")
	if len(rest) == 0 {
		return "", Errorf(EINVALID, "%s needs an environment after %s: one of %s.", v, quoteArg(strings.ToLower(kw)), list)
	}
	env := strings.ToLower(rest[0])
	if !slices.Contains(envs, env) {
		return "", Errorf(EINVALID, "%s is not an environment: %s%s.", quoteArg(rest[0]), list, didYouMean(env, envs, " (did you mean %s?)"))
	}
	return env, nil
}

// refusedRune reports whether a command may not contain r: a control
// character other than the line breaks and tabs that separate words, or a
// bidirectional embedding, override or isolate. Such characters can hide or
// reorder text in the audit log, a terminal or a reply, and a command that
// held one would not read back as itself (the fuzzer's "dobro A0-0 on\x000").
func refusedRune(r rune) bool {
	return r != '\n' && r != '\r' && r != '\t' && unsafeRune(r)
}

func runeKind(r rune) string {
	if isBidiControl(r) {
		return "a bidirectional text control"
	}
	return "a control character"
}

func parseDobro(args []string, envs []string) (Command, error) {
	t, err := ticketArg(VerbDobro, args)
	if err != nil {
		return Command{}, err
	}
	c := Command{Verb: VerbDobro, Ticket: t}
	rest := args[1:]
	// With environments: "to ENV" (or "in ENV") and "version V", each at
	// most once, in either order, right after the ticket.
words:
	for len(envs) > 0 && len(rest) > 0 {
		switch w := strings.ToLower(rest[0]); {
		case (w == "to" || w == "in") && c.Env == "":
			if c.Env, err = envArg(VerbDobro, w, rest[1:], envs); err != nil {
				return Command{}, err
			}
		case w == "version" && c.Build == "":
			if len(rest) < 2 || !ValidBuild(rest[1]) {
				got := "nothing"
				if len(rest) >= 2 {
					got = quoteArg(rest[1])
				}
				return Command{}, Errorf(EINVALID, "version needs a version like 2.4.0 or v2.4.0-rc.1 (letters, digits, . _ + -, at most 128), not %s: dobro %s version 2.4.0.", got, t)
			}
			c.Build = rest[1]
		default:
			break words
		}
		rest = rest[2:]
	}
	// no_need_admin may stand anywhere after the ticket.
	note := rest[:0:0]
	for _, w := range rest {
		if strings.EqualFold(w, NoNeedAdmin) {
			c.NoNeedAdmin = true
			continue
		}
		note = append(note, w)
	}
	// "on a,b" is recognised right after the ticket or as the last words, so
	// a note may still say "fix on checkout" in its middle.
	onAt := -1
	switch {
	case len(note) >= 2 && strings.EqualFold(note[0], "on"):
		onAt = 0
	case len(note) >= 2 && strings.EqualFold(note[len(note)-2], "on"):
		onAt = len(note) - 2
	}
	if onAt >= 0 {
		comps, err := componentList(note[onAt+1])
		if err != nil {
			return Command{}, err
		}
		c.Components = comps
		note = slices.Delete(slices.Clone(note), onAt, onAt+2)
	}
	if len(envs) > 0 { // without environments "hotfix" stays in the note, as before
		note, c.Hotfix = cutHotfix(note)
	}
	c.Text = freeText(note)
	return c, nil
}

func ticketArg(v Verb, args []string) (string, error) {
	if len(args) == 0 {
		return "", Errorf(EINVALID, "%s needs a ticket: %s PAY-123.", v, v)
	}
	t, ok := TicketKey(args[0])
	if !ok {
		return "", Errorf(EINVALID, "%s is not a ticket key: write it like PAY-123 (%s PAY-123).", quoteArg(args[0]), v)
	}
	return t, nil
}

// TicketKey extracts a ticket key from the forms a user may write: PAY-1,
// #PAY-1, pay-1, or a tracker link …/browse/PAY-1 (a chat adapter turns its
// own link markup into the link first). The whole word must be a key:
// "PAY-1;rm" is not PAY-1.
func TicketKey(word string) (string, bool) {
	w := word
	if key, ok := browseKey(w); ok {
		return key, true
	}
	w = strings.TrimPrefix(w, "#")
	w = strings.ToUpper(w)
	if !ValidTicket(w) {
		return "", false
	}
	return w, true
}

// browseKey returns the key of a tracker link: http(s)://host/…/browse/KEY.
func browseKey(s string) (string, bool) {
	if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
		return "", false
	}
	_, after, ok := strings.Cut(s, "/browse/")
	if !ok {
		return "", false
	}
	if i := strings.IndexAny(after, "?#/"); i >= 0 {
		after = after[:i]
	}
	key := strings.ToUpper(after)
	return key, ValidTicket(key)
}

func freeText(words []string) string {
	return strings.Join(strings.Fields(Clean(strings.Join(words, " "))), " ")
}

func quoteArg(s string) string {
	const max = 40
	s = Clean(s)
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	// The word is echoed in a plain span: an adapter escapes it, so
	// markup a user typed cannot become a mention.
	return `"` + s + `"`
}

// didYouMean formats the closest candidate (edit distance ≤ 2) into format, or
// returns "" when none is close.
func didYouMean(word string, candidates []string, format string) string {
	if len(word) > 32 {
		return ""
	}
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestD {
			best, bestD = c, d
		}
		// "dep" alone is a prefix of the dep commands.
		if first, _, ok := strings.Cut(c, " "); ok && editDistance(word, first) < bestD {
			best, bestD = c, editDistance(word, first)
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(format, best)
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
