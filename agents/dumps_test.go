package agents

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestDumps3WritesAsDumps: the envelopes written directly are byte for byte
// what encoding/json writes (dumps), for texts with every kind of character
// it escapes or keeps: quotes, backslashes, newlines, control characters,
// HTML characters, non-ASCII, invalid UTF-8, U+2028 and U+2029.
func TestDumps3WritesAsDumps(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	alphabet := []string{"a", "Z", " ", "<", ">", "&", "'", "\"", "\\", "/", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f",
		"é", "日本", "😀", "\u2028", "\u2029", "\xff", "\xed\xa0\x80", "\xe2\x80", "{", "}", ":", ","}
	at := time.Date(2026, 12, 6, 17, 0, 0, 0, time.FixedZone("X", 3600))
	if _, direct := appendQuoted(nil, "a \"quoted\"\tline\r\n<b> & \\ é 日本 😀"); !direct {
		t.Fatal("a text of quotes, tabs, newlines, HTML characters, backslashes and non-ASCII is not written directly")
	}
	for i := range 50_000 {
		var b strings.Builder
		for range r.IntN(24) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		text := b.String()
		for _, c := range []struct{ got, want string }{
			{UserMessage(text, at), dumps(envelope{"user_message", text, LocalTime(at)})},
			{SystemAlert(text, at), dumps(envelope{"system_alert", text, LocalTime(at)})},
			{Heartbeat(text, at), dumps(struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
				Time   string `json:"time"`
			}{"heartbeat", text, LocalTime(at)})},
			{FunctionResponse(i%2 == 0, text, at), dumps(struct {
				Status  string `json:"status"`
				Message string `json:"message"`
				Time    string `json:"time"`
			}{map[bool]string{true: "OK", false: "Failed"}[i%2 == 0], text, LocalTime(at)})},
		} {
			if c.got != c.want {
				t.Fatalf("text %q:\ngot  %q\nwant %q", text, c.got, c.want)
			}
		}
	}
}

// BenchmarkEnvelope writes a user message's envelope directly (the
// runtime's way) and through encoding/json (dumps, the baseline).
//
//	go test ./agents -run '^$' -bench Envelope
func BenchmarkEnvelope(b *testing.B) {
	text := "Hello, how are you today? I wanted to ask about the \"plan\" we made.\nThanks!"
	at := time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
	b.Run("dumps", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = dumps(envelope{"user_message", text, LocalTime(at)})
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = UserMessage(text, at)
		}
	})
}
