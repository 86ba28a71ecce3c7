package storage

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/dobrobot/dobrobot/commands"
)

// checkEncodeEffect fails t unless encodeEffect writes exactly json.Marshal's bytes for e.
func checkEncodeEffect(t testing.TB, e commands.Effect) {
	t.Helper()
	want, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := encodeEffect(e)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("encodeEffect(%#v)\n got %s\nwant %s", e, got, want)
	}
}

// trickyStrings are what JSON escapes, each on its own and in company.
var trickyStrings = []string{
	"", "plain", `"quoted"`, `back\slash`, "<b>&amp;</b>", "line\nbreak\ttab\rreturn", "\b\f\x00\x01\x1f\x7f",
	"ünïcödé ✓ 🚀", "\u2028\u2029", "\xff\xfe invalid \xc3", "\xe2\x80", "a\u2028b<c>d&e\"f\\g",
	"\u202e\u2066 bidi", "x" + string(rune(0x10ffff)),
}

// TestEncodeEffectIsMarshal: the outbox's encoder writes the bytes
// json.Marshal writes, for every field and every string JSON escapes.
func TestEncodeEffectIsMarshal(t *testing.T) {
	rel := &commands.Release{ID: 9, Ticket: "PAY-9", Env: "qa", Build: "2.4.0", State: commands.StateAccepted,
		Requester: "U1", Components: []string{"backend"}, Locks: []string{"backend"},
		Created: time.Date(2026, 12, 5, 3, 4, 5, 6, time.UTC), Version: 3}
	cases := []commands.Effect{
		{},
		{ID: 1, Kind: commands.EffectReply},
		{ID: 2, Kind: commands.EffectCard, Release: rel, Text: commands.Text{commands.Plain("x")}},
		{ID: 3, Kind: commands.EffectDM, User: "U1", Buttons: []commands.Button{{Label: "Accept", Command: "accept PAY-1", Style: "primary"}, {Label: "Reject", Command: "reject PAY-1"}}},
		{ID: 4, Kind: commands.EffectPost, Legacy: "*old* <@U1> text"},
		{ID: 5, Text: commands.Text{{}, {Kind: commands.SpanPerson, ID: "U1"}, {Kind: commands.SpanTicket, Text: "PAY-1", URL: "https://x/PAY-1?a=1&b=<2>"}}},
	}
	for _, s := range trickyStrings {
		cases = append(cases, commands.Effect{ID: 7, Kind: commands.EffectKind(s), Event: s, User: s, Channel: s, Via: commands.Via(s), Thread: s,
			Text: commands.Text{commands.Plain(s), {Kind: commands.SpanKind(s), Text: s, ID: s, URL: s}}, Legacy: s,
			Buttons: []commands.Button{{Label: s, Command: s, Style: s}}})
	}
	cases = append(cases, everyField())
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		cases = append(cases, randomEffect(rng))
	}
	for _, e := range cases {
		checkEncodeEffect(t, e)
	}
}

// everyField is an Effect with every string field of Effect, Span and
// Button set, by reflection: a field added to any of them that encodeEffect
// does not write makes TestEncodeEffectIsMarshal fail.
func everyField() commands.Effect {
	var e commands.Effect
	fill := func(v reflect.Value) {
		for i := range v.NumField() {
			if f := v.Field(i); f.Kind() == reflect.String {
				f.SetString(v.Type().Field(i).Name)
			}
		}
	}
	e.Text = commands.Text{{}}
	e.Buttons = []commands.Button{{}}
	fill(reflect.ValueOf(&e).Elem())
	fill(reflect.ValueOf(&e.Text[0]).Elem())
	fill(reflect.ValueOf(&e.Buttons[0]).Elem())
	e.ID = 42
	e.Release = &commands.Release{ID: 1}
	e.Export = &commands.AuditExport{Format: "jsonl", Since: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Ticket: "PAY-1"}
	for i := range reflect.TypeFor[commands.Effect]().NumField() {
		switch f := reflect.TypeFor[commands.Effect]().Field(i); f.Type.Kind() {
		case reflect.String, reflect.Uint64, reflect.Slice, reflect.Pointer:
		default:
			panic("encodeEffect's test does not know Effect." + f.Name)
		}
	}
	return e
}

func randomEffect(rng *rand.Rand) commands.Effect {
	str := func() string {
		if rng.IntN(3) == 0 {
			return ""
		}
		s := trickyStrings[rng.IntN(len(trickyStrings))]
		if rng.IntN(2) == 0 {
			s += trickyStrings[rng.IntN(len(trickyStrings))]
		}
		return s
	}
	e := commands.Effect{ID: rng.Uint64(), Kind: commands.EffectKind(str()), Event: str(), User: str(), Channel: str(),
		Via: commands.Via(str()), Thread: str(), Legacy: str()}
	for range rng.IntN(5) {
		e.Text = append(e.Text, commands.Span{Kind: commands.SpanKind(str()), Text: str(), ID: str(), URL: str()})
	}
	for range rng.IntN(3) {
		e.Buttons = append(e.Buttons, commands.Button{Label: str(), Command: str(), Style: str()})
	}
	if rng.IntN(4) == 0 {
		e.Release = &commands.Release{ID: rng.Uint64(), Ticket: str(), Note: str()}
	}
	if rng.IntN(8) == 0 {
		e.Export = &commands.AuditExport{Format: str(), Ticket: str()}
	}
	return e
}

// FuzzEncodeEffect: for any strings, the outbox's encoder writes
// json.Marshal's bytes.
func FuzzEncodeEffect(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, s, uint64(1))
	}
	f.Fuzz(func(t *testing.T, a, b string, id uint64) {
		checkEncodeEffect(t, commands.Effect{ID: id, Kind: commands.EffectKind(a), User: b, Thread: a + b,
			Text:    commands.Text{{Text: a}, {Kind: commands.SpanKind(b), ID: a, URL: b}},
			Buttons: []commands.Button{{Label: a, Command: b}}, Legacy: b})
	})
}

// BenchmarkEncodeEffect is the outbox's encoding of a queue reply of 20
// releases, next to encoding/json's.
func BenchmarkEncodeEffect(b *testing.B) {
	var text commands.Text
	for i := range 20 {
		text = append(text, commands.Plain("\n1. "), commands.Span{Kind: commands.SpanTicket, Text: "PAY-1", URL: "https://jira.example/browse/PAY-1"},
			commands.Plain(" — accepted — requester "), commands.Span{Kind: commands.SpanPerson, ID: "U0REQ"},
			commands.Plain(", approver "), commands.Span{Kind: commands.SpanPerson, ID: "U0APP"}, commands.Plain(", components "),
			commands.Span{Kind: commands.SpanComponent, Text: "comp" + string(rune('a'+i))}, commands.Plain(" — waiting 12 min"))
	}
	e := commands.Effect{ID: 7, Kind: commands.EffectReply, Channel: "C1", User: "U1", Thread: "1.2", Text: text}
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeEffect(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
