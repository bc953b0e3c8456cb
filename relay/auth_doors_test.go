//go:build !minimal

package relay

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"roomrelay/proto"
)

// TestIRCAuth: PASS before NICK and USER (464 without it or with a wrong
// one, and the connection ends), JOIN #room key (475), OPER and KICK.
func TestIRCAuth(t *testing.T) {
	s, _ := startAuth(t, authConfig())
	c := dialIRC(t, s)
	c.send("NICK ann", "USER ann 0 * :ann")
	if l := c.line(); l != ":roomrelay 464 ann :Password required: send PASS before NICK and USER" {
		t.Errorf("no PASS: %q", l)
	}
	if l := c.line(); l != "ERROR :Closing link: bye" {
		t.Errorf("no PASS: %q", l)
	}
	c = dialIRC(t, s)
	c.send("PASS wrong", "NICK ann", "USER ann 0 * :ann")
	if l := c.line(); l != ":roomrelay 464 ann :Password incorrect: wrong password" {
		t.Errorf("wrong PASS: %q", l)
	}
	forgive(s)
	c = dialIRC(t, s)
	c.send("PASS :" + testPassword)
	c.register("ann", false)
	bob := dial(t, s)
	bob.send("/pass "+testPassword, "bob", "/join kitchen "+testKey)
	bob.until("the welcome", func(l string) bool { return strings.HasPrefix(l, "--- you are bob in kitchen") })
	c.send("LIST")
	if got := c.upTo("the list's end", func(l string) bool { return strings.Contains(l, " 323 ") }); !slices.Contains(got, ":roomrelay 322 ann #kitchen 1 [+k]") {
		t.Errorf("LIST from outside the kitchen: %q", got)
	}
	forgive(s)
	for _, step := range []struct{ send, want string }{
		{"JOIN #kitchen", ":roomrelay 475 ann #kitchen :Cannot join channel (+k)"},
		{"JOIN #kitchen wrong", ":roomrelay 475 ann #kitchen :Cannot join channel (+k): wrong key"},
		{"NAMES #kitchen", ":roomrelay 366 ann #kitchen :End of /NAMES list."}, // bob is not listed
		{"KICK #lobby bob", ":roomrelay 481 ann :Permission Denied- You're not an admin of the relay (OPER first)"},
		{"OPER ann", ":roomrelay 461 ann OPER :Not enough parameters"},
		{"OPER ann wrong", ":roomrelay 464 ann :Password incorrect: too many wrong passwords or keys from 127.0.0.1: try again in 1s"},
		{"/forgive", ""},
		{"OPER ann wrong", ":roomrelay 464 ann :Password incorrect: wrong admin password"},
		{"/forgive", ""},
		{"OPER ann " + testAdmin, ":roomrelay 381 ann :You are now an admin of the relay: KICK, TOPIC, STATS (and /admin help on the line door)"},
		{"OPER ann wrong", ":roomrelay 381 ann :You are now an admin of the relay: KICK, TOPIC, STATS (and /admin help on the line door)"}, // one already
	} {
		if step.send == "/forgive" {
			forgive(s)
			continue
		}
		c.send(step.send)
		if got := c.line(); got != step.want {
			t.Errorf("%q: got %q, want %q", step.send, got, step.want)
		}
	}
	forgive(s)
	c.send("JOIN #kitchen " + testKey)
	got := c.upTo("the names", func(l string) bool { return strings.Contains(l, " 366 ") })
	if len(got) < 2 || got[0] != ":ann!ann@roomrelay JOIN #kitchen" && !strings.HasSuffix(got[0], "PART #lobby :joined #kitchen") {
		t.Errorf("JOIN with the key: %q", got)
	}
	if !strings.Contains(strings.Join(got, "\n"), ":roomrelay 332 ann #kitchen :family only") {
		t.Errorf("no topic (332) on joining: %q", got)
	}
	c.send("KICK #kitchen bob :bye now")
	bob.until("the kick", func(l string) bool { return l == "!!! kicked by an admin: bye now" })
	cfg := authConfig()
	cfg.AdminPassword = ""
	s.Reload(cfg)
	d := dialIRC(t, s)
	d.send("PASS :" + testPassword)
	d.register("dan", false)
	d.send("OPER dan " + testAdmin)
	isAnswer := func(l string) bool { return strings.Contains(l, " 464 ") || strings.Contains(l, " 381 ") }
	if got, want := d.until("the answer to OPER", isAnswer), ":roomrelay 464 dan :The relay has no admin password (relay.admin_password)"; got != want {
		t.Errorf("OPER without an admin password: got %q, want %q", got, want)
	}
}

// TestHTTPAuth: POST /api/join takes the relay's password and the room's
// key; a wrong password is refused (401) before the name is looked at;
// /api/post refuses a keyed room.
func TestHTTPAuth(t *testing.T) {
	s, _ := startAuth(t, authConfig())
	b := newBrowser(t, s)
	if code, body := b.postForm("/api/join", url.Values{"name": {"web"}}); code != http.StatusUnauthorized || !strings.Contains(body, "this relay has a password") {
		t.Errorf("no password: %d %s", code, body)
	}
	if code, body := b.postForm("/api/join", url.Values{"name": {"web"}, "password": {"nope"}}); code != http.StatusUnauthorized || body != `{"error":"wrong password"}`+"\n" {
		t.Errorf("wrong password: %d %q", code, body)
	}
	if code, body := b.postForm("/api/join", url.Values{"name": {"web"}, "password": {testPassword}}); code != http.StatusTooManyRequests || !strings.Contains(body, "try again in 1s") {
		t.Errorf("right password, too soon: %d %q", code, body)
	}
	waitOver(s)
	// A right password after wrong ones, with a key: both are tried.
	j := b.join("web", "password", testPassword, "room", "kitchen", "key", testKey)
	if j.Room != "kitchen" {
		t.Errorf("joined %s, want kitchen", j.Room)
	}
	st := b.events("")
	st.until("the topic", func(_ proto.SSE, e proto.Event) bool { return e.Text == "topic of kitchen: family only" })
	b2 := newBrowser(t, s)
	if j := b2.join("web2", "password", testPassword, "room", "kitchen"); j.Room != "lobby" {
		t.Errorf("joined %s without the key, want lobby", j.Room)
	}
	if code, body := b.postForm("/api/post", url.Values{"name": {"sensor"}, "room": {"kitchen"}, "text": {"hi"}}); code != http.StatusForbidden {
		t.Errorf("/api/post to a keyed room: %d %s", code, body)
	}
}

// TestLegacyAllow: the legacy door closes, unread, a connection from
// outside relay.legacy_allow, and counts it.
func TestLegacyAllow(t *testing.T) {
	cfg := testConfig()
	cfg.LegacyAllow = []string{"192.168.0.0/16"}
	s := startServer(t, cfg)
	c, err := net.DialTimeout("tcp", s.Addr("legacy").String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("from:x|hello"))
	c.(*net.TCPConn).CloseWrite()
	waitFor(t, 10*time.Second, "the refusal", func() bool { return s.Stats().LegacyRefused == 1 })
	if n := s.Stats().Posted; n != 0 {
		t.Errorf("posted %d", n)
	}
}

// TestTopicNotice: every member of a room is told of a new topic, and of
// a cleared one, each in its own door's format.
func TestTopicNotice(t *testing.T) {
	cfg := authConfig()
	cfg.Password = ""
	s, _ := startAuth(t, cfg)
	root := join(t, s, "root")
	root.send1("/admin " + testAdmin)
	bob := join(t, s, `{"name":"bob","mode":"json"}`)
	ann := dialIRC(t, s)
	ann.register("ann", false)
	ann.ircSync("in") // past its replay
	root.until("ann's join", func(l string) bool { return l == "--- ann joined lobby" })
	bob.until("ann's join", func(l string) bool { return strings.HasPrefix(l, `{"type":"join","room":"lobby","seq":3,"from":"ann"`) })
	for _, step := range []struct{ send, text string }{
		{"/topic soup at 7", "root set the topic of lobby: soup at 7"},
		{"/topic -", "root cleared the topic of lobby"},
	} {
		root.send(step.send)
		if got := root.line(); got != "--- "+step.text {
			t.Errorf("%s: root got %q", step.send, got)
		}
		if got, want := bob.line(), `{"type":"notice","text":"`+step.text+`"}`; got != want {
			t.Errorf("%s: bob got %q, want %q", step.send, got, want)
		}
		if got, want := ann.line(), ":roomrelay NOTICE #lobby :"+step.text; got != want {
			t.Errorf("%s: ann got %q, want %q", step.send, got, want)
		}
	}
}
