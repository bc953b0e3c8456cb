package proto

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParseIRC(t *testing.T) {
	for _, tc := range []struct {
		line string
		want IRC
		err  bool
	}{
		{line: "NICK alice", want: IRC{Command: "NICK", Params: []string{"alice"}}},
		{line: "nick alice\r\n", want: IRC{Command: "NICK", Params: []string{"alice"}}},
		{line: "USER a 0 * :Alice L", want: IRC{Command: "USER", Params: []string{"a", "0", "*", "Alice L"}}},
		{line: ":bob!b@h PRIVMSG #x ::-)", want: IRC{Prefix: "bob!b@h", Command: "PRIVMSG", Params: []string{"#x", ":-)"}}},
		{line: "PRIVMSG  #x   hi  ", want: IRC{Command: "PRIVMSG", Params: []string{"#x", "hi"}}},
		{line: "CAP END :", want: IRC{Command: "CAP", Params: []string{"END", ""}}},
		{line: `@time=2026-11-22T03:10:54.123Z;+a=x\sy\:z\\;b :s 001 n :hi`, want: IRC{
			Tags:   []Tag{{"time", "2026-11-22T03:10:54.123Z"}, {"+a", `x y;z\`}, {"b", ""}},
			Prefix: "s", Command: "001", Params: []string{"n", "hi"}}},
		{line: "X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16", want: IRC{Command: "X",
			Params: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15 16"}}},
		{line: "", err: true},
		{line: ":prefix-only", err: true},
		{line: "PRIV/MSG x", err: true},
	} {
		got, err := ParseIRC([]byte(tc.line))
		if tc.err {
			if err == nil {
				t.Errorf("ParseIRC(%q) = %+v, want an error", tc.line, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseIRC(%q): %v", tc.line, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseIRC(%q) (-want +got):\n%s", tc.line, diff)
		}
	}
}

func TestAppendIRC(t *testing.T) {
	for _, tc := range []struct {
		m    IRC
		want string
	}{
		{IRC{Command: "JOIN", Params: []string{"#lobby"}}, "JOIN #lobby\r\n"},
		{IRC{Prefix: "roomrelay", Command: "001", Params: []string{"bob", "Welcome to roomrelay, bob"}}, ":roomrelay 001 bob :Welcome to roomrelay, bob\r\n"},
		{IRC{Command: "PART", Params: []string{"#x", ""}}, "PART #x :\r\n"},
		{IRC{Command: "PRIVMSG", Params: []string{"#x", ":-)"}}, "PRIVMSG #x ::-)\r\n"},
		{IRC{Command: "NOTICE", Params: []string{"*", "a\r\nQUIT\x00"}}, "NOTICE * :a  QUIT \r\n"},
		{IRC{Tags: []Tag{{"time", "t"}, {"k", "a b;c"}, {"flag", ""}}, Command: "PING", Params: []string{"x"}}, "@time=t;k=a\\sb\\:c;flag PING x\r\n"},
	} {
		if got := string(AppendIRC(nil, &tc.m)); got != tc.want {
			t.Errorf("AppendIRC(%+v) = %q, want %q", tc.m, got, tc.want)
		}
	}
}

// TestAppendIRCText: long text is split into messages of at most MaxIRC
// bytes, at character boundaries, that put the text back together.
func TestAppendIRCText(t *testing.T) {
	head := ":" + IRCUser("first client") + " PRIVMSG #lobby :"
	for _, text := range []string{"", "short", strings.Repeat("x", 1000), strings.Repeat("日本語", 200), strings.Repeat("é", 333) + "!"} {
		for _, tail := range []string{"", "\x01"} {
			b := AppendIRCText(nil, head, text, tail)
			var got strings.Builder
			lines := strings.SplitAfter(string(b), "\r\n")
			lines = lines[:len(lines)-1]
			for _, l := range lines {
				if len(l) > MaxIRC {
					t.Errorf("%d-byte message: %.40q...", len(l), l)
				}
				part, ok := strings.CutPrefix(strings.TrimSuffix(l, tail+"\r\n"), head)
				if !ok || !utf8.ValidString(part) {
					t.Errorf("message %.60q: no head, or cut inside a character", l)
				}
				got.WriteString(part)
			}
			if got.String() != text {
				t.Errorf("parts of %.20q... put together are %.20q...", text, got.String())
			}
			if want := max(1, (len(text)+MaxIRC-len(head)-len(tail)-3)/(MaxIRC-len(head)-len(tail)-2)); len(text) < 500 && len(lines) != want {
				t.Errorf("%d messages for %d bytes, want %d", len(lines), len(text), want)
			}
		}
	}
}

// ircEvents are the events written to testdata/irc.golden.
var ircEvents = append(sampleEvents,
	Event{Kind: KindMsg, Room: "lobby", Seq: 10, From: "first client", Text: "spaces become _"},
	Event{Kind: KindAction, Room: "lobby", Seq: 11, From: "bob", Text: strings.Repeat("long ", 110)},
)

func TestIRCGolden(t *testing.T) {
	var b []byte
	for i := range ircEvents {
		if !ircEvents[i].Time.IsZero() {
			b = AppendIRCTime(b, ircEvents[i].Time)
		}
		b = AppendIRCEvent(b, &ircEvents[i], "#lobby")
	}
	checkGolden(t, "irc.golden", b)
}

func TestIRCNames(t *testing.T) {
	if got := IRCName("first client"); got != "first_client" || Fold(got) != Fold("first client") {
		t.Errorf("IRCName(first client) = %q, folded %q", got, Fold(got))
	}
	if got := IRCUser("bob"); got != "bob!bob@roomrelay" {
		t.Errorf("IRCUser(bob) = %q", got)
	}
}

func TestStripIRC(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                        "plain",
		"\x02bold\x02 \x1ditalic\x0f":  "bold italic",
		"\x0304red\x03 \x0312,01blue":  "red blue",
		"\x031,2x \x03,y \x03":         "x ,y ",
		"\x04FF0000,00ff00hex\x04 end": "hex end",
		"tab\there":                    "tab\there",
	} {
		if got := StripIRC(in); got != want {
			t.Errorf("StripIRC(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzIRC: parse, encode, parse gives the same message, and an encoded
// message is one line. Seeded with testdata/irc.txt.
func FuzzIRC(f *testing.F) {
	file, err := os.Open(filepath.Join("testdata", "irc.txt"))
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	file.Close()
	f.Fuzz(func(t *testing.T, line string) {
		m, err := ParseIRC([]byte(line))
		if err != nil || strings.ContainsAny(strings.TrimRight(line, "\r\n"), "\r\n\x00") {
			return
		}
		enc := AppendIRC(nil, &m)
		if i := bytes.IndexAny(enc, "\r\n\x00"); i != len(enc)-2 {
			t.Fatalf("encoding %q of %q is not one line", enc, line)
		}
		back, err := ParseIRC(enc)
		if err != nil {
			t.Fatalf("ParseIRC(%q), encoded from %q: %v", enc, line, err)
		}
		if diff := cmp.Diff(m, back); diff != "" {
			t.Fatalf("round trip of %q via %q (-want +got):\n%s", line, enc, diff)
		}
	})
}

// FuzzIRCText: however long the text, every message fits MaxIRC and the
// parts give the text back.
func FuzzIRCText(f *testing.F) {
	f.Add("#lobby", strings.Repeat("日本", 100))
	f.Fuzz(func(t *testing.T, room, text string) {
		text = Clean([]byte(text))
		head := ":x!x@roomrelay PRIVMSG #" + Clean([]byte(room)) + " :"
		if len(head) > 300 {
			return
		}
		b := AppendIRCText(nil, head, text, "")
		var got strings.Builder
		for _, l := range strings.SplitAfter(string(b), "\r\n") {
			if l == "" {
				continue
			}
			if len(l) > MaxIRC {
				t.Fatalf("%d-byte message", len(l))
			}
			got.WriteString(strings.TrimSuffix(strings.TrimPrefix(l, head), "\r\n"))
		}
		if got.String() != text {
			t.Fatalf("parts give %q, want %q", got.String(), text)
		}
	})
}
