package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

// want is encoding/json's quoting of s, with or without HTML escaping.
func want(t testing.TB, s string, html bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

var seeds = []string{
	"", "plain", `"quoted"`, `back\slash`, "<b>&amp;</b>", "line\nbreak\ttab\rreturn", "\b\f\x00\x01\x1f\x7f",
	"ünïcödé ✓ 🚀", "\u2028\u2029", "\xff\xfe invalid \xc3", "\xe2\x80", "a\u2028b<c>d&e\"f\\g", "\u202e\u2066 bidi",
}

// TestAppendIsEncodingJSON: both modes write encoding/json's bytes.
func TestAppendIsEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		for _, html := range []bool{true, false} {
			if got, w := string(Append(nil, s, html)), want(t, s, html); got != w {
				t.Errorf("Append(%q, html %v) = %s, want %s", s, html, got, w)
			}
		}
	}
}

// FuzzAppend: for any string, both modes write encoding/json's bytes.
func FuzzAppend(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, html := range []bool{true, false} {
			if got, w := string(Append([]byte("x"), s, html)), "x"+want(t, s, html); got != w {
				t.Errorf("Append(%q, html %v) = %s, want %s", s, html, got, w)
			}
		}
	})
}
