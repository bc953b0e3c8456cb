//go:build !minimal

package relay

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"roomrelay/relay/internal/testkit"
)

// endpointClient is a tutorial client's receiving end, already
// listening, that sends through door.
func endpointClient(t *testing.T, name string) (*tutorialClient, int) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc := &tutorialClient{t: t, name: name, ln: ln}
	t.Cleanup(func() { ln.Close() })
	go tc.receive()
	return tc, ln.Addr().(*net.TCPAddr).Port
}

// TestLegacyRestart: with relay.store.path set, a tutorial client's
// registration (its latest endpoint) survives a restart of the relay: it
// gets the messages posted after it and may post again, without
// registering again; a registration dropped before the restart stays
// dropped.
func TestLegacyRestart(t *testing.T) {
	cfg := testConfig()
	cfg.Store.Path = t.TempDir()
	file := filepath.Join(cfg.Store.Path, legacyFile)
	s := startServer(t, cfg)
	a, port := endpointClient(t, "first client")
	a.door = s.Addr("legacy").String()
	a.send("connect_request|first client|127.0.0.1|9") // moved below
	a.send("connect_request|gone|127.0.0.1|10")
	waitFor(t, 10*time.Second, "both registered", func() bool { return s.lookup("first client") != nil && s.lookup("gone") != nil })
	a.send(fmt.Sprintf("connect_request|first client|localhost|%d", port))
	waitFor(t, 10*time.Second, "the new endpoint saved", func() bool {
		b, _ := os.ReadFile(file)
		return strings.Contains(string(b), fmt.Sprintf(`"127.0.0.1:%d"`, port))
	})
	s.lookup("gone").kick(byKicked)
	waitFor(t, 10*time.Second, "the drop saved", func() bool {
		b, _ := os.ReadFile(file)
		return !strings.Contains(string(b), `"gone"`)
	})
	shutdownNow(t, s)

	log := testkit.NewLog(t)
	s = startServerLog(t, cfg, log.Logf)
	if !log.Has("legacy: 1 of 1 registrations read back from " + file) {
		t.Errorf("log:\n%s", log)
	}
	if s.lookup("gone") != nil {
		t.Error("gone, dropped before the restart, is registered again")
	}
	nc := join(t, s, "nc")
	nc.send("after the restart")
	if diff := cmp.Diff([]string{"nc: after the restart"}, a.waitFor(1)); diff != "" {
		t.Errorf("first client got (-want +got):\n%s", diff)
	}
	a.door = s.Addr("legacy").String()
	a.send("from:first client|still here")
	if got := nc.messages(1); got[0] != "first client: still here" {
		t.Errorf("nc got %q", got)
	}
	if st := s.Stats(); st.LegacyRefused != 0 {
		t.Errorf("%d legacy messages refused", st.LegacyRefused)
	}
}

// TestLegacyRestoreBad: a legacy file that cannot be decoded is logged,
// naming it, and ignored: the relay starts. A registration in it that a
// connect_request could not make (here, an endpoint at another address)
// is not made, and the file is written again without it.
func TestLegacyRestoreBad(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string // in the log
		restored   bool
	}{
		{"corrupt", `{"registrations":[{"name":"first",`, []string{"legacy: FILE: unexpected EOF: ignored"}, false},
		{"not strings", `{"registrations":[{"name":"first","from":7}]}`, []string{"legacy: FILE: registration 1: from is not a string: ignored"}, false},
		{"third party", `{"registrations":[
			{"name":"first","from":"127.0.0.1","endpoint":"127.0.0.1:9","room":"lobby"},
			{"name":"mallory","from":"127.0.0.1","endpoint":"192.0.2.7:80","room":"lobby"}]}`,
			[]string{"legacy: FILE: mallory not registered again: endpoint 192.0.2.7:80 is not a port of 127.0.0.1", "legacy: 1 of 2 registrations read back from FILE"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Store.Path = t.TempDir()
			file := filepath.Join(cfg.Store.Path, legacyFile)
			if err := os.WriteFile(file, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			log := testkit.NewLog(t)
			s := startServerLog(t, cfg, log.Logf)
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "FILE", file); !log.Has(w) {
					t.Errorf("log lacks %q", w)
				}
			}
			if got := s.lookup("first") != nil; got != tc.restored {
				t.Errorf("first registered: %v, want %v", got, tc.restored)
			}
			if s.lookup("mallory") != nil {
				t.Error("mallory registered")
			}
			if tc.restored {
				b, _ := os.ReadFile(file)
				if strings.Contains(string(b), "mallory") || !strings.Contains(string(b), `"first"`) {
					t.Errorf("file written again as\n%s", b)
				}
			}
			join(t, s, "nc").send1("/who") // the relay serves
		})
	}
}

// TestLegacySavedRoundTrip: what save writes, restore reads back as it
// was, names that JSON must escape among them; the file is valid JSON.
func TestLegacySavedRoundTrip(t *testing.T) {
	want := legacySaved{Registrations: []legacyRegistration{
		{Name: "first client", From: "127.0.0.1", Endpoint: "127.0.0.1:8881", Room: "lobby"},
		{Name: `jo "the" café \ 😀`, From: "::1", Endpoint: "[::1]:9"},
	}}
	b := want.append(nil)
	if !json.Valid(b) {
		t.Fatalf("not JSON:\n%s", b)
	}
	var got legacySaved
	if err := got.parse(b); err != nil {
		t.Fatalf("parse: %v\n%s", err, b)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	var none legacySaved
	if err := none.parse(legacySaved{}.append(nil)); err != nil || len(none.Registrations) != 0 {
		t.Errorf("no registrations: %v, %v", none, err)
	}
}

// TestLegacySameAgain: a registration repeated as it was (a client
// started again at the same port) is not written again: each write of
// legacy.json is synced, and a router's flash wears.
func TestLegacySameAgain(t *testing.T) {
	cfg := testConfig()
	cfg.Store.Path = t.TempDir()
	file := filepath.Join(cfg.Store.Path, legacyFile)
	log := testkit.NewLog(t)
	s := startServerLog(t, cfg, log.Logf)
	a, port := endpointClient(t, "first client")
	a.door = s.Addr("legacy").String()
	reg := fmt.Sprintf("connect_request|first client|127.0.0.1|%d", port)
	a.send(reg)
	waitFor(t, 10*time.Second, "the registration saved", func() bool {
		b, _ := os.ReadFile(file)
		return strings.Contains(string(b), `"first client"`)
	})
	const mark = "written by the test\n"
	if err := os.WriteFile(file, []byte(mark), 0o600); err != nil {
		t.Fatal(err)
	}
	a.send(reg)
	waitFor(t, 10*time.Second, "the registration again", func() bool { return log.Has("first client now at") })
	if b, _ := os.ReadFile(file); string(b) != mark {
		t.Errorf("written again:\n%s", b)
	}
}

// TestLegacyRestoreOverLimit: a file written under a larger
// max_legacy_members is read back up to the limit in force, the rest
// said in the log, not refused whole.
func TestLegacyRestoreOverLimit(t *testing.T) {
	cfg := testConfig()
	cfg.Store.Path = t.TempDir()
	cfg.Limits.MaxLegacyMembers = 1
	file := filepath.Join(cfg.Store.Path, legacyFile)
	var regs []legacyRegistration
	for i := range 3 {
		regs = append(regs, legacyRegistration{Name: fmt.Sprintf("client %d", i), From: "127.0.0.1", Endpoint: fmt.Sprintf("127.0.0.1:%d", 9+i), Room: "lobby"})
	}
	b := append(legacySaved{Registrations: regs}.append(nil), strings.Repeat(" ", 4096)...) // over what one registration takes
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	log := testkit.NewLog(t)
	s := startServerLog(t, cfg, log.Logf)
	if w := "legacy: " + file + ": 2 registrations over relay.limits.max_legacy_members (1) not read back"; !log.Has(w) {
		t.Errorf("log lacks %q:\n%s", w, log)
	}
	if s.lookup("client 0") == nil || s.lookup("client 1") != nil {
		t.Error("want client 0 registered again, and only it")
	}
}
