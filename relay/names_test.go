//go:build !minimal

package relay

import (
	"roomrelay/relay/config"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestNamesAsWritten: names of any script, and with spaces, join at the
// line door and are shown as written, '_' for a space is the same name;
// /msg reaches a name with a space written with '_', and a /msg to a name
// written with its space says so; /who keeps such names readable. (TestNames has the refusals.)
func TestNamesAsWritten(t *testing.T) {
	s := startServer(t, testConfig())
	alice := join(t, s, "alice")
	elodie := join(t, s, "élodie")
	yamada := join(t, s, "山田")
	first := join(t, s, "first client")

	c := dial(t, s)
	c.send("first_client")
	if got, want := c.line(), "!!! name taken: first_client is in use; send another name"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	// One after the other: two members' lines have no order between them.
	elodie.send("bonjour")
	if diff := cmp.Diff([]string{"élodie: bonjour"}, alice.messages(1)); diff != "" {
		t.Errorf("alice got (-want +got):\n%s", diff)
	}
	yamada.send("こんにちは")
	if diff := cmp.Diff([]string{"山田: こんにちは"}, alice.messages(1)); diff != "" {
		t.Errorf("alice got (-want +got):\n%s", diff)
	}

	alice.send("/msg first_client psst", "/msg FIRST_CLIENT again")
	var private []string
	for len(private) < 2 {
		if l := first.line(); strings.HasPrefix(l, "[private]") {
			private = append(private, l)
		}
	}
	if diff := cmp.Diff([]string{"[private] alice: psst", "[private] alice: again"}, private); diff != "" {
		t.Errorf("first client got (-want +got):\n%s", diff)
	}
	if l := alice.until("receipt", func(l string) bool { return strings.HasPrefix(l, "--- sent") }); l != "--- sent privately to first client" {
		t.Errorf("alice told %q", l)
	}

	// A space written as such: the name is cut there, and the error says
	// how to write it, when the next words make a member's name.
	alice.send("/msg first client psst", "/msg nobody at all")
	for _, want := range []string{"!!! no member called first (write first_client for first client)", "!!! no member called nobody"} {
		if l := alice.until("no member", func(l string) bool { return strings.HasPrefix(l, "!!! no member") }); l != want {
			t.Errorf("alice told %q, want %q", l, want)
		}
	}

	alice.send("/who")
	who := alice.until("who", func(l string) bool { return strings.HasPrefix(l, "--- in lobby: ") })
	names := strings.Split(strings.TrimPrefix(who, "--- in lobby: "), ", ")
	want := []string{"alice", "élodie", "山田", "first client"}
	slices.Sort(names)
	slices.Sort(want)
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("who = %q (-want +got):\n%s", who, diff)
	}
}

// TestLegacyNameKeepsSpaces: a tutorial client registered as "second
// client" is shown as that, spaces and all, and reached with /msg
// second_client.
func TestLegacyNameKeepsSpaces(t *testing.T) {
	s := startServer(t, testConfig())
	nc := join(t, s, "nc")
	second := newTutorialClient(t, s, "second client")
	nc.until("the join", func(l string) bool { return l == "--- second client joined lobby" })
	second.send("from:second client|Hi!")
	if got := nc.messages(1); got[0] != "second client: Hi!" {
		t.Errorf("nc got %q", got)
	}
	nc.send("hello", "/msg second_client psst")
	if diff := cmp.Diff([]string{"nc: hello", "[private] nc: psst"}, second.waitFor(2)); diff != "" {
		t.Errorf("second client got (-want +got):\n%s", diff)
	}
}

// TestListSeparators: /who and /rooms separate items with ", " and wrap
// at max_line_bytes, each line holding at least one item.
func TestListSeparators(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxLineBytes = config.MinLine
	s := startServer(t, cfg)
	longest := strings.Repeat("\U00020000", 24) // 𠀀, 96 bytes
	long := strings.Repeat("山", 24)             // 72 bytes: the two fill more than a line
	a := join(t, s, longest)
	join(t, s, long)
	join(t, s, "b c")
	join(t, s, "d")
	a.send("/who", "/ping end")
	var lines, names []string
	for l := a.line(); l != "--- pong end" && len(lines) < 10; l = a.line() {
		if !strings.HasPrefix(l, "--- in lobby: ") {
			continue
		}
		if len(l)+1 > cfg.Limits.MaxLineBytes {
			t.Errorf("line of %d bytes: %q", len(l)+1, l)
		}
		lines = append(lines, l)
		names = append(names, strings.Split(strings.TrimPrefix(l, "--- in lobby: "), ", ")...)
	}
	want := []string{longest, long, "b c", "d"}
	slices.Sort(want)
	slices.Sort(names)
	if diff := cmp.Diff(want, names); diff != "" || len(lines) != 2 {
		t.Errorf("who gave %q: want the names on 2 lines (-want +got):\n%s", lines, diff)
	}
}
