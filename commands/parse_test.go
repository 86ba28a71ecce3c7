package commands_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want commands.Command
	}{
		{"dobro PAY-123", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-123"}},
		{"DOBRO pay-123", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-123"}},
		{"dobro #PAY-1", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1"}},
		{"dobro https://x.atlassian.net/browse/PAY-7", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-7"}},
		{"dobro https://x.atlassian.net/browse/PAY-7?focus=1", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-7"}},
		{"dobro PAY-1 no_need_admin", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", NoNeedAdmin: true}},
		{"dobro PAY-1 NO_NEED_ADMIN hotfix", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", NoNeedAdmin: true, Text: "hotfix"}},
		{"dobro PAY-1 on backend,DB", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Components: []string{"backend", "db"}}},
		{"dobro PAY-1 fix on checkout page on backend", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Components: []string{"backend"}, Text: "fix on checkout page"}},
		// Parse takes plain text: chat markup is the adapter's to unwrap
		// (bot's commandText), so here it is only words.
		{"dobro PAY-1 ping <!channel> and <@U123>", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Text: "ping <!channel> and <@U123>"}},
		{"queue", commands.Command{Verb: commands.VerbQueue}},
		{"  Queue  ", commands.Command{Verb: commands.VerbQueue}},
		{"accept PAY-1", commands.Command{Verb: commands.VerbAccept, Ticket: "PAY-1"}},
		{"reject PAY-1 tests are red", commands.Command{Verb: commands.VerbReject, Ticket: "PAY-1", Text: "tests are red"}},
		{"here PAY-1", commands.Command{Verb: commands.VerbHere, Ticket: "PAY-1"}},
		{"dep start PAY-1", commands.Command{Verb: commands.VerbStart, Ticket: "PAY-1"}},
		{"DEP Finish pay-1", commands.Command{Verb: commands.VerbFinish, Ticket: "PAY-1"}},
		{"cancel PAY-1", commands.Command{Verb: commands.VerbCancel, Ticket: "PAY-1"}},
		{"cancel PAY-1 wrong build", commands.Command{Verb: commands.VerbCancel, Ticket: "PAY-1", Text: "wrong build"}},
		{"lock backend db migration", commands.Command{Verb: commands.VerbLock, Component: "backend", Text: "db migration"}},
		{"lock ALL", commands.Command{Verb: commands.VerbLock, Component: "all"}},
		{"unlock backend", commands.Command{Verb: commands.VerbUnlock, Component: "backend"}},
		{"status PAY-1", commands.Command{Verb: commands.VerbStatus, Ticket: "PAY-1"}},
		{"history", commands.Command{Verb: commands.VerbHistory}},
		{"history PAY-1", commands.Command{Verb: commands.VerbHistory, Ticket: "PAY-1"}},
		{"log PAY-1", commands.Command{Verb: commands.VerbLog, Ticket: "PAY-1"}},
		{"help", commands.Command{Verb: commands.VerbHelp}},
		// Line breaks and tabs separate words like spaces (a multi-line
		// message is one command; its note is one line).
		{"dobro PAY-1 line one\nline two\r\n\tthree", commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Text: "line one line two three"}},
		{"reject\tPAY-1\nnot yet", commands.Command{Verb: commands.VerbReject, Ticket: "PAY-1", Text: "not yet"}},
	}
	for _, tt := range tests {
		got, err := commands.Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		in       string
		contains string // the message must say this
	}{
		{"", "Say what to do"},
		{"   ", "Say what to do"},
		{"dobor PAY-1", `did you mean dobro`},
		{"acept PAY-1", `did you mean accept`},
		{"deploy PAY-1", "not a command"},
		{"dep", "dep needs start or finish"},
		{"dep strat PAY-1", "did you mean dep start"},
		{"dobro", "dobro needs a ticket"},
		{"accept", "accept needs a ticket"},
		{"accept PAY-1;rm", `"PAY-1;rm" is not a ticket key`},
		{"accept PAY-1 PAY-2", "accept takes one ticket"},
		{"dobro pay_1", "is not a ticket key"},
		{"dobro 1PAY-1", "is not a ticket key"},
		{"dobro P-1", "is not a ticket key"},
		{"dobro PAY-", "is not a ticket key"},
		{"dobro $(touch /tmp/pwned)", "is not a ticket key"},
		{"dobro `id`", "is not a ticket key"},
		{"dobro PAY-1|ls", "is not a ticket key"},
		{"dobro <https://evil.example/browse/PAY-1|PAY-2>", "is not a ticket key"},
		{"dobro <https://x.atlassian.net/wiki/PAY-1|PAY-1>", "is not a ticket key"},
		{"dobro PAY-1 on", ""}, // "on" alone is just a note word
		{"dobro PAY-1 on back;end", "is not a component name"},
		{"lock", "lock needs a component"},
		{"lock ../etc", "is not a component name"},
		{"unlock backend now", "unlock takes one component"},
		{"queue PAY-1", "queue takes nothing more"},
		{"history PAY-1 PAY-2", "history takes at most one ticket"},
		{"dobro PAY-1 \xff\xfe", "not valid UTF-8"},
		// Issue 12, items 11 and 13: control characters and bidirectional
		// embeddings, overrides and isolates are refused, named, wherever
		// they stand (the fuzzer's "doBro A0-0 on\x000" read as a note that
		// printed as a component).
		{"doBro A0-0 on\x000", "U+0000"},
		{"dobro PAY-1 a\x00b", "U+0000"},
		{"dobro PAY-1 fix\x07", "U+0007"},
		{"reject PAY-1 \x1b[31mred", "U+001B"},
		{"cancel PAY-1 oops\x7f", "U+007F"},
		{"lock backend x\u0085y", "U+0085"},
		{"dobro PAY-1 \u009f", "U+009F"},
		{"dobro PAY-1 \u202a", "U+202A"},
		{"reject PAY-1 \u202b", "U+202B"},
		{"cancel PAY-1 \u202c", "U+202C"},
		{"lock backend \u202d", "U+202D"},
		{"dobro PAY-1 \u202e", "U+202E"},
		{"dobro PAY-1 \u2066x", "U+2066"},
		{"reject PAY-1 \u2067", "U+2067"},
		{"cancel PAY-1 \u2068", "U+2068"},
		{"lock backend \u2069", "U+2069"},
		{"\u202edobro PAY-1", "U+202E"},
		{"dep\x00 start PAY-1", "U+0000"},
		{"dobro PAY-1 " + strings.Repeat("x", commands.MaxText), "too long"},
	}
	for _, tt := range tests {
		got, err := commands.Parse(tt.in)
		if tt.contains == "" {
			if err != nil {
				t.Errorf("Parse(%q) = error %v, want a command", tt.in, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want an error saying %q", tt.in, got, tt.contains)
			continue
		}
		if code := commands.ErrorCode(err); code != commands.EINVALID {
			t.Errorf("Parse(%q) code = %s, want %s", tt.in, code, commands.EINVALID)
		}
		if !strings.Contains(err.Error(), tt.contains) {
			t.Errorf("Parse(%q) = %q, want it to say %q", tt.in, err.Error(), tt.contains)
		}
	}
}

func TestTicketKey(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"PAY-1", "PAY-1", true},
		{"pay-1", "PAY-1", true},
		{"#PAY-1", "PAY-1", true},
		{"A1B2-99", "A1B2-99", true},
		{"PAY-1;rm", "", false},
		{"PAY-1\n", "", false},
		{"PAY-1\x00", "", false},
		{"PAY-1\u202e", "", false},
		{"--help", "", false},
		{"../../etc/passwd", "", false},
		{"https://x/browse/PAY-1", "PAY-1", true},
		{"https://x/browse/pay-1?focus=1", "PAY-1", true},
		{"https://x/browse/PAY-1;rm", "", false},
		{"<PAY-1>", "", false},
		{"<https://x/browse/PAY-1|PAY-1>", "", false}, // chat markup: the adapter's to unwrap
		{"##PAY-1", "", false},
		{strings.Repeat("A", 70) + "-1", "", false},
	}
	for _, tt := range tests {
		got, ok := commands.TicketKey(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("TicketKey(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParse checks that every input parses or is refused with EINVALID, and
// that a parsed command renders to text that parses back to it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"dobro PAY-1", "dobro PAY-1 on backend,db no_need_admin note here", "dep start PAY-1",
		"reject PAY-1 <https://x|y> <!channel>", "lock all freeze", "history", "dobro <https://j/browse/A-1|A-1>",
		"accept PAY-1;rm", "dobro PAY-1 $(id) `id` a|b a&&b", "dobro PAY-1 \u202e", "\xff", "dep", "on on on",
		"dobro PAY-1 on a on b", "dobro PAY-1 <<a>> <x<y>>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := commands.Parse(in)
		if err != nil {
			if commands.ErrorCode(err) != commands.EINVALID {
				t.Fatalf("Parse(%q): code %s, want %s", in, commands.ErrorCode(err), commands.EINVALID)
			}
			if err.Error() == "" {
				t.Fatalf("Parse(%q): empty message", in)
			}
			return
		}
		if c.Ticket != "" && !commands.ValidTicket(c.Ticket) {
			t.Fatalf("Parse(%q): invalid ticket %q accepted", in, c.Ticket)
		}
		again, err := commands.Parse(c.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, but its rendering %q is refused: %v", in, c, c.String(), err)
		}
		if diff := cmp.Diff(c, again); diff != "" {
			t.Fatalf("round trip of %q via %q (-first +second):\n%s", in, c.String(), diff)
		}
	})
}

// BenchmarkParseMax parses the largest accepted message.
func BenchmarkParseMax(b *testing.B) {
	in := "dobro PAY-1 " + strings.Repeat("word ", commands.MaxText/5-3)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := commands.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func TestComponentName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"backend", "backend"},
		{"Payments API", "payments-api"},
		{"  iOS / Widgets ", "ios-widgets"},
		{"a,b;c", "a-b-c"},
		{"--", ""},
		{"_x", "x"},
		{"Ünïcode", "n-code"},
		{strings.Repeat("a", 100), strings.Repeat("a", 63)},
	}
	for _, tt := range tests {
		if got := commands.ComponentName(tt.in); got != tt.want {
			t.Errorf("ComponentName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestParseIn: with environments, "in ENV" (dobro: "to ENV") and dobro's
// "version V" are read right after the ticket (lock and unlock: after the
// component); an unknown environment is refused with the list. Without
// environments the same words are part of a note or a reason, as they always
// were (docs/architecture.md, "The pipeline").
func TestParseIn(t *testing.T) {
	envs := []string{"qa", "production"}
	tests := []struct {
		in      string
		envs    []string
		want    commands.Command
		wantErr string
	}{
		{in: "dobro PAY-1 to qa version 2.4.0 on backend fix it no_need_admin", envs: envs, want: commands.Command{Verb: commands.VerbDobro,
			Ticket: "PAY-1", Env: "qa", Build: "2.4.0", Components: []string{"backend"}, Text: "fix it", NoNeedAdmin: true}},
		{in: "dobro pay-1 VERSION v2.4.0+build.7 TO Production", envs: envs, want: commands.Command{Verb: commands.VerbDobro,
			Ticket: "PAY-1", Env: "production", Build: "v2.4.0+build.7"}},
		{in: "dobro PAY-1 in qa", envs: envs, want: commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Env: "qa"}},
		{in: "dobro PAY-1 to qa to fix checkout", envs: envs, want: commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Env: "qa", Text: "to fix checkout"}},
		{in: "dobro PAY-1 fix to qa", envs: envs, want: commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Text: "fix to qa"}},
		{in: "dobro PAY-1 to prod", envs: envs, wantErr: `"prod" is not an environment: qa, production.`},
		{in: "dobro PAY-1 to qs", envs: envs, wantErr: `"qs" is not an environment: qa, production (did you mean qa?).`},
		{in: "dobro PAY-1 to", envs: envs, wantErr: `dobro needs an environment after "to": one of qa, production.`},
		{in: "dobro PAY-1 version", envs: envs, wantErr: "version needs a version like 2.4.0 or v2.4.0-rc.1 (letters, digits, . _ + -, at most 128), not nothing: dobro PAY-1 version 2.4.0."},
		{in: "dobro PAY-1 version 2.4;rm", envs: envs, wantErr: `version needs a version like 2.4.0 or v2.4.0-rc.1 (letters, digits, . _ + -, at most 128), not "2.4;rm": dobro PAY-1 version 2.4.0.`},
		{in: "accept PAY-1 in qa", envs: envs, want: commands.Command{Verb: commands.VerbAccept, Ticket: "PAY-1", Env: "qa"}},
		{in: "accept PAY-1 in", envs: envs, wantErr: `accept needs an environment after "in": one of qa, production.`},
		{in: "accept PAY-1 in qa now", envs: envs, wantErr: "accept takes one ticket: accept PAY-1."},
		{in: "reject PAY-1 in qa not now", envs: envs, want: commands.Command{Verb: commands.VerbReject, Ticket: "PAY-1", Env: "qa", Text: "not now"}},
		{in: "reject PAY-1 in a rush", envs: envs, wantErr: `"a" is not an environment: qa, production (did you mean qa?).`},
		{in: "status PAY-1 in production", envs: envs, want: commands.Command{Verb: commands.VerbStatus, Ticket: "PAY-1", Env: "production"}},
		{in: "lock backend in qa maintenance window", envs: envs, want: commands.Command{Verb: commands.VerbLock, Component: "backend", Env: "qa", Text: "maintenance window"}},
		{in: "unlock backend in qa", envs: envs, want: commands.Command{Verb: commands.VerbUnlock, Component: "backend", Env: "qa"}},
		{in: "unlock backend in qa now", envs: envs, wantErr: "unlock takes one component: unlock backend."},
		{in: "rollback Backend to v1.2.0 IN production", envs: envs, want: commands.Command{Verb: commands.VerbRollback, Component: "backend", Env: "production", Build: "v1.2.0"}},
		{in: "rollback backend", envs: envs, want: commands.Command{Verb: commands.VerbRollback, Component: "backend"}},
		{in: "rollback", envs: envs, wantErr: "rollback needs a component: rollback backend [in production] [to 2.4.0]."},
		{in: "rollback all", envs: envs, wantErr: `"all" is not a component name (letters, digits, . _ -): rollback backend.`},
		{in: "rollback backend to 1;rm", envs: envs, wantErr: `to needs a version like 2.4.0 (letters, digits, . _ + -, at most 128), not "1;rm": rollback backend to 2.4.0.`},
		{in: "rollback backend in prod", envs: envs, wantErr: `"prod" is not an environment: qa, production.`},
		{in: "rollback backend please", envs: envs, wantErr: `rollback takes a component, then in ENV and to VERSION: rollback backend in production to 2.4.0, not "please".`},
		{in: "rollback backend to 1 to 2", envs: envs, wantErr: `rollback takes a component, then in ENV and to VERSION: rollback backend in production to 2.4.0, not "to".`},
		{in: "rollback backend to 2.0", want: commands.Command{Verb: commands.VerbRollback, Component: "backend", Build: "2.0"}},
		{in: "dobro PAY-1 to qa login down HOTFIX no_need_admin", envs: envs, want: commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Env: "qa", Text: "login down", Hotfix: true, NoNeedAdmin: true}},
		{in: "dobro PAY-1 hotfix on backend", envs: envs, want: commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Components: []string{"backend"}, Hotfix: true}},
		{in: "dobro PAY-1 hotfix on backend", want: commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Components: []string{"backend"}, Text: "hotfix"}},
		{in: "dobro PAY-1 hotfix the login page", envs: envs, want: commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Text: "hotfix the login page"}},
		// Without environments, exactly as before.
		{in: "dobro PAY-1 to fix checkout", want: commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Text: "to fix checkout"}},
		{in: "dobro PAY-1 version 2 of the fix", want: commands.Command{Verb: commands.VerbDobro, Ticket: "PAY-1", Text: "version 2 of the fix"}},
		{in: "reject PAY-1 in a rush", want: commands.Command{Verb: commands.VerbReject, Ticket: "PAY-1", Text: "in a rush"}},
		{in: "lock backend in qa", want: commands.Command{Verb: commands.VerbLock, Component: "backend", Text: "in qa"}},
		{in: "accept PAY-1 in qa", wantErr: "accept takes one ticket: accept PAY-1."},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := commands.ParseIn(tt.in, tt.envs)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || commands.ErrorCode(err) != commands.EINVALID {
					t.Fatalf("ParseIn(%q) = %+v, %v; want the refusal %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIn(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseIn(%q) (-want +got):\n%s", tt.in, diff)
			}
			again, err := commands.ParseIn(got.String(), tt.envs)
			if err != nil || !cmp.Equal(got, again) {
				t.Errorf("%q renders as %q, which parses as %+v, %v", tt.in, got.String(), again, err)
			}
		})
	}
}

// FuzzParseIn is FuzzParse with environments: whatever parses renders as
// text that parses back to the same command, and a named environment is
// always one of them.
func FuzzParseIn(f *testing.F) {
	for _, s := range []string{
		"dobro PAY-1 to qa version 2.4.0 on backend fix it no_need_admin", "dobro PAY-1 version v1 in production to x",
		"accept PAY-1 in qa", "reject PAY-1 in qa in a rush", "lock all in qa freeze", "unlock backend in production",
		"status PAY-1 in", "dobro PAY-1 to qa to qa version 1 version 2", "dobro PAY-1 version 1+2 on a,b in qa",
		"promote PAY-1", "promote PAY-1 to production", "promote PAY-1 in qa extra", "where", "where backend", "where a b",
		"dobro PAY-1 hotfix", "dobro PAY-1 x hotfix hotfix", "dobro PAY-1 hotfix on a,b", "dobro PAY-1 on a hotfix no_need_admin",
		"rollback backend", "rollback backend in production to v2.4.0", "rollback backend to 1.0 in qa", "rollback all",
		"rollback backend to", "rollback backend in qa in qa", "rollback backend to 1 to 2", "rollback backend note",
		"dep start PAY-1 force hotfix for the outage", "dep start PAY-1 in production FORCE x", "dep start PAY-1 force", "dep start PAY-1 now",
		"freeze until 18:00 release day", "freeze in production until 2026-12-27T09:00 xmas", "freeze in qa until 2h", "freeze until soon",
		"unfreeze u0ann-dec05-1800", "unfreeze a b", "freezes",
		"incident PAY-1", "incident PAY-1 in production db timeouts", "incident PAY-1 in", "incident", "incident PAY-1 in qa in qa",
		"history at 2026-11-01", "history at 2026-11-01T14:32:00Z", "history at", "history at noon", "history AT 2026-11-01 x",
		"history on backend by @U0ANN since 2026-11-01 until 2026-11-02", "history PAY-1 in qa on a", "history until 2026-11-01 since 2026-11-02",
		"history by x by y", "history on", "history since 2026-11-01T10:00:00+02:00",
		"overrides", "overrides since 2026-11-01", "overrides since", "overrides x y",
	} {
		f.Add(s)
	}
	envs := []string{"qa", "production"}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := commands.ParseIn(in, envs)
		if err != nil {
			if commands.ErrorCode(err) != commands.EINVALID || err.Error() == "" {
				t.Fatalf("ParseIn(%q): %v (code %s), want a worded EINVALID", in, err, commands.ErrorCode(err))
			}
			return
		}
		if c.Env != "" && !slices.Contains(envs, c.Env) {
			t.Fatalf("ParseIn(%q): environment %q is not one of %q", in, c.Env, envs)
		}
		if c.Build != "" && !commands.ValidBuild(c.Build) {
			t.Fatalf("ParseIn(%q): version %q accepted", in, c.Build)
		}
		again, err := commands.ParseIn(c.String(), envs)
		if err != nil {
			t.Fatalf("ParseIn(%q) = %+v, but its rendering %q is refused: %v", in, c, c.String(), err)
		}
		if diff := cmp.Diff(c, again); diff != "" {
			t.Fatalf("round trip of %q via %q (-first +second):\n%s", in, c.String(), diff)
		}
	})
}
