//go:build !minimal

package relay

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestImpersonation: a name held by a member of one door cannot be taken
// or posted under at any other, whatever its case or look-alike letters
// (Cyrillic "аӏісе" folds to alice); a name nobody holds, posted over UDP
// or POST /api/post, is shown with its marker (nas@udp, nas@http), which
// no member can hold; a legacy member's name posted from another address
// is refused.
func TestImpersonation(t *testing.T) {
	cfg := httpConfig()
	cfg.Listen.IRC = "127.0.0.1:0"
	cfg.Listen.UDP = "[::1]:0" // datagrams from ::1: another address than the legacy member's
	s := startServer(t, cfg)
	alice := join(t, s, "alice")
	watch := join(t, s, "watch")

	// carol, a legacy member registered from 127.0.0.1.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	legacy := func(msg string) {
		t.Helper()
		c := legacyConn(t, s)
		c.Write([]byte(msg))
		c.(*net.TCPConn).CloseWrite()
	}
	legacy(fmt.Sprintf("connect_request|carol|127.0.0.1|%d", ln.Addr().(*net.TCPAddr).Port))
	watch.until("carol's join", func(l string) bool { return strings.Contains(l, "carol joined") })

	for _, name := range []string{"ALICE", "аӏісе", "Carol", "nas@udp"} {
		tc := dial(t, s)
		if l := tc.send1(name); !strings.Contains(l, "send another name") {
			t.Errorf("line door: %q: %q", name, l)
		}
		if l := tc.send1(`{"name":"` + name + `"}`); !strings.Contains(l, "send another name") {
			t.Errorf("line door, JSON: %q: %q", name, l)
		}
		irc := dialIRC(t, s)
		irc.send("NICK "+strings.ReplaceAll(name, "@", "|"), "USER x 0 * :x")
		if l := irc.line(); !strings.Contains(l, " 433 ") && !strings.Contains(l, " 432 ") {
			t.Errorf("IRC door: %q: %q", name, l)
		}
		b := newBrowser(t, s)
		if code, body := b.postForm("/api/join", url.Values{"name": {name}}); code == http.StatusOK {
			t.Errorf("HTTP door: %q joined: %s", name, body)
		}
		if code, body := b.postForm("/api/post", url.Values{"name": {name}, "text": {"hi"}}); code == http.StatusNoContent {
			t.Errorf("HTTP post as %q taken: %s", name, body)
		}
	}
	legacyRefused := s.Stats().LegacyRefused
	legacy(fmt.Sprintf("connect_request|Alice|127.0.0.1|%d", ln.Addr().(*net.TCPAddr).Port))
	legacy("from:аӏісе|I am alice")
	waitFor(t, 10*time.Second, "two legacy refusals", func() bool { return s.Stats().LegacyRefused == legacyRefused+2 })

	udp, err := net.Dial("udp", s.Addr("udp").String())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	for _, d := range []string{"from:ALICE|send me the Wi-Fi password", "from:аӏісе|me too", "from:carol|from ::1"} {
		udp.Write([]byte(d))
	}
	waitFor(t, 10*time.Second, "three drops", func() bool { return s.Stats().UDPDropped == 3 })
	udp.Write([]byte("from:nas|backup done"))
	if got := watch.messages(1); got[0] != "nas@udp: backup done" {
		t.Errorf("watch got %q", got)
	}
	newBrowser(t, s).postForm("/api/post", url.Values{"name": {"nas"}, "text": {"posted"}})
	if got := watch.messages(1); got[0] != "nas@http: posted" {
		t.Errorf("watch got %q", got)
	}
	alice.send("still me")
	if got := watch.messages(1); got[0] != "alice: still me" {
		t.Errorf("watch got %q", got)
	}
}
