package proto

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var legacyTests = []struct {
	in      string
	want    Legacy
	err     string // substring of the error; "" for none
	unknown bool   // the error wraps ErrLegacyUnknown
}{
	// What the tutorial client sends.
	{in: "connect_request|first client|localhost|8881",
		want: Legacy{Kind: LegacyRegister, Name: "first client", Host: "localhost", Port: 8881}},
	{in: "from:second client|Hi!", want: Legacy{Kind: LegacyPost, Name: "second client", Text: "Hi!"}},
	// The whole payload is stripped; leading spaces of the text are kept.
	{in: " \r\n connect_request|bob|127.0.0.1|1\n\t", want: Legacy{Kind: LegacyRegister, Name: "bob", Host: "127.0.0.1", Port: 1}},
	{in: "from:bob|  hi  \n", want: Legacy{Kind: LegacyPost, Name: "bob", Text: "  hi"}},
	{in: "\x1c\u00a0from:bob|hi\u3000\x1f", want: Legacy{Kind: LegacyPost, Name: "bob", Text: "hi"}},
	// '|' in the text: the name ends at the first one.
	{in: "from:bob|a|b||c", want: Legacy{Kind: LegacyPost, Name: "bob", Text: "a|b||c"}},
	{in: "from:bob|", want: Legacy{Kind: LegacyPost, Name: "bob"}},
	{in: "from:bob|   ", want: Legacy{Kind: LegacyPost, Name: "bob"}},
	// Text is cleaned: control characters and invalid UTF-8 become U+FFFD,
	// tabs spaces; multi-byte characters survive whole.
	{in: "from:bob|a\tb\x1b[31mc\xffd grüße 😀", want: Legacy{Kind: LegacyPost, Name: "bob", Text: "a b\ufffd[31mc\ufffdd grüße 😀"}},
	{in: "connect_request|bob|::1|65535", want: Legacy{Kind: LegacyRegister, Name: "bob", Host: "::1", Port: 65535}},
	{in: "connect_request|bob|fe80::1%eth0|0080", want: Legacy{Kind: LegacyRegister, Name: "bob", Host: "fe80::1%eth0", Port: 80}},

	// Bad registrations.
	{in: "connect_request", err: "got 1 fields"},
	{in: "connect_request|bob|localhost", err: "got 3 fields"},
	{in: "connect_request|bob|localhost|8881|x", err: "got 5 fields"},
	// A name keeps its spelling, spaces and letters of any script included;
	// white space at either end is trimmed.
	{in: "connect_request| first client \t|localhost|8881",
		want: Legacy{Kind: LegacyRegister, Name: "first client", Host: "localhost", Port: 8881}},
	{in: "connect_request|山田 たろう|localhost|8881",
		want: Legacy{Kind: LegacyRegister, Name: "山田 たろう", Host: "localhost", Port: 8881}},
	{in: "connect_request|first  client|localhost|8881", err: "two spaces in a row"},
	{in: "connect_request|\u0430lice|localhost|8881", err: "mixes Latin and Cyrillic letters"},
	{in: "connect_request|first:client|localhost|8881", err: "invalid name"},
	{in: "connect_request||localhost|8881", err: "empty name"},
	{in: "connect_request|bob||8881", err: "empty host"},
	{in: "connect_request|bob|local host|8881", err: `host "local host"`},
	{in: "connect_request|bob|" + strings.Repeat("a", MaxLegacyHost+1) + "|1", err: "host longer"},
	{in: "connect_request|bob|localhost|0", err: "port \"0\" is not a number"},
	{in: "connect_request|bob|localhost|65536", err: "not a number from 1 to 65535"},
	{in: "connect_request|bob|localhost|+80", err: "not a number"},
	{in: "connect_request|bob|localhost|-80", err: "not a number"},
	{in: "connect_request|bob|localhost|80x", err: "not a number"},
	{in: "connect_request|bob|localhost|", err: "not a number"},
	// Bad posts.
	{in: "from:bob", err: "no '|'"},
	{in: "from:|hi", err: "empty name"},
	{in: "from:bob smith|hi", want: Legacy{Kind: LegacyPost, Name: "bob smith", Text: "hi"}},
	{in: "from: élodie |hi", want: Legacy{Kind: LegacyPost, Name: "élodie", Text: "hi"}},
	{in: "from:e\u0301lodie|hi", err: "combining mark"},
	{in: "from:bob*|hi", err: "invalid name"},
	{in: "from:from:bob|hi", err: "invalid name"},
	// Matched as prefixes only, unlike the tutorial's substring tests.
	{in: "", err: "unknown", unknown: true},
	{in: "hello", err: "unknown", unknown: true},
	{in: "xfrom:bob|hi", err: "unknown", unknown: true},
	{in: "hi connect_request|bob|localhost|8881", err: "unknown", unknown: true},
	{in: "connect_requests|bob|localhost|8881", err: "unknown", unknown: true},
	{in: "FROM:bob|hi", err: "unknown", unknown: true},
}

func TestParseLegacy(t *testing.T) {
	for _, tt := range legacyTests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLegacy([]byte(tt.in))
			if tt.err == "" {
				if err != nil {
					t.Fatalf("ParseLegacy(%q): %v", tt.in, err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("ParseLegacy(%q) (-want +got):\n%s", tt.in, diff)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("ParseLegacy(%q) = %+v, %v; want an error containing %q", tt.in, got, err, tt.err)
			}
			if errors.Is(err, ErrLegacyUnknown) != tt.unknown {
				t.Errorf("ParseLegacy(%q): errors.Is(%v, ErrLegacyUnknown) = %v", tt.in, err, !tt.unknown)
			}
		})
	}
}

func TestAppendLegacy(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"delivery", AppendLegacy(nil, &Event{Kind: KindMsg, Room: "lobby", Seq: 3, From: "alice", Text: "hi | there"}), "alice: hi | there"},
		{"empty delivery", AppendLegacy(nil, &Event{Kind: KindMsg, From: "bob"}), "bob: "},
		{"delivery appends", AppendLegacy([]byte("x"), &Event{Kind: KindMsg, From: "a", Text: " b"}), "xa:  b"},
		{"action", AppendLegacy(nil, &Event{Kind: KindAction, From: "alice", Text: "waves"}), "* alice waves"},
		{"private", AppendLegacy(nil, &Event{Kind: KindPrivate, From: "alice", To: "bob", Text: "psst"}), "[private] alice: psst"},
		{"no join", AppendLegacy([]byte("x"), &Event{Kind: KindJoin, From: "alice", Room: "lobby"}), "x"},
		{"no part", AppendLegacy(nil, &Event{Kind: KindPart, From: "alice", Room: "lobby", Text: "closed"}), ""},
		{"no notice", AppendLegacy(nil, &Event{Kind: KindNotice, Text: "you are bob"}), ""},
		{"no error", AppendLegacy(nil, &Event{Kind: KindError, Text: "refused"}), ""},
		{"register", AppendLegacyRegister(nil, "alice", "localhost", 8881), "connect_request|alice|localhost|8881"},
		{"post", AppendLegacyPost(nil, "alice", "hi | there"), "from:alice|hi | there"},
		{"empty post", AppendLegacyPost(nil, "alice", ""), "from:alice|"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, string(tt.got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestLegacyText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  hello! how are you?\n", "hello! how are you?"},
		{"", ""},
		{" \t\r\n", ""},
		{"bob:   hi", "bob:   hi"},
		{"grüße\x1b[2J", "grüße\ufffd[2J"},
		{"\xe2\x82", "\ufffd\ufffd"}, // a character cut in two
	}
	for _, tt := range tests {
		if got := LegacyText([]byte(tt.in)); got != tt.want {
			t.Errorf("LegacyText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAppendLegacyAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:47893", "('127.0.0.1', 47893)"},
		{"[::ffff:192.168.1.7]:80", "('192.168.1.7', 80)"},
		{"[::1]:5000", "('::1', 5000, 0, 0)"},
		{"[fe80::1%3]:5000", "('fe80::1', 5000, 0, 3)"},
		{"[fe80::1%eth0]:5000", "('fe80::1', 5000, 0, 0)"},
	}
	for _, tt := range tests {
		ap := netip.MustParseAddrPort(tt.in)
		if got := string(AppendLegacyAddr(nil, ap)); got != tt.want {
			t.Errorf("AppendLegacyAddr(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzLegacy checks that whatever ParseLegacy accepts is valid and
// survives encoding and decoding again unchanged.
func FuzzLegacy(f *testing.F) {
	for _, tt := range legacyTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		l, err := ParseLegacy(payload)
		if err != nil {
			return
		}
		if err := CheckName(l.Name); err != nil {
			t.Fatalf("ParseLegacy(%q) gave an invalid name: %v", payload, err)
		}
		if !utf8.ValidString(l.Text) || Clean([]byte(l.Text)) != l.Text {
			t.Fatalf("ParseLegacy(%q) gave an unclean text %q", payload, l.Text)
		}
		var enc []byte
		switch l.Kind {
		case LegacyRegister:
			if err := checkHost(l.Host); err != nil || l.Port < 1 || l.Port > 65535 || l.Text != "" {
				t.Fatalf("ParseLegacy(%q) gave a bad registration %+v", payload, l)
			}
			enc = AppendLegacyRegister(nil, l.Name, l.Host, l.Port)
		case LegacyPost:
			if l.Host != "" || l.Port != 0 {
				t.Fatalf("ParseLegacy(%q) gave a post with an address %+v", payload, l)
			}
			enc = AppendLegacyPost(nil, l.Name, l.Text)
		default:
			t.Fatalf("ParseLegacy(%q) gave kind %v", payload, l.Kind)
		}
		again, err := ParseLegacy(enc)
		if err != nil {
			t.Fatalf("ParseLegacy(%q) = %+v, but its encoding %q gives %v", payload, l, enc, err)
		}
		if diff := cmp.Diff(l, again); diff != "" {
			t.Fatalf("round trip of %q through %q (-first +second):\n%s", payload, enc, diff)
		}
	})
}
