package relay

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"roomrelay/relay/internal/testkit"
)

// TestStoreRestart: with relay.store.path set, a relay shut down and
// started again has its rooms' history, epochs and sequence numbers, and
// a member resuming by epoch and seq gets exactly what it missed.
func TestStoreRestart(t *testing.T) {
	cfg := testConfig()
	cfg.Store.Path = t.TempDir()
	s := startServer(t, cfg)
	alice := join(t, s, "alice")
	bob := join(t, s, `{"name":"bob","mode":"json"}`)
	alice.send("one", "two")
	var last uint64
	for got := 0; got < 2; {
		if e := jsonEvent(t, bob.line()); e.From == "alice" && e.Text != "" {
			last, got = e.Seq, got+1
		}
	}
	epoch := epochOf(t, s, "lobby")
	bob.c.Close()
	alice.until("bob's part", func(l string) bool { return strings.HasPrefix(l, "--- bob left") })
	alice.send("three", "/join kitchen", "four")
	alice.sync("x")
	shutdownNow(t, s)

	s = startServer(t, cfg)
	if epochOf(t, s, "lobby") != epoch {
		t.Errorf("lobby's epoch %s after the restart, want %s", epochOf(t, s, "lobby"), epoch)
	}
	bob = join(t, s, fmt.Sprintf(`{"name":"bob","mode":"json","epoch":%q,"since":%d}`, epoch, last))
	var texts []string
	for want := last + 1; ; {
		l := bob.line()
		e := jsonEvent(t, l)
		if e.Seq == 0 {
			if strings.Contains(e.Text, "end of earlier events") {
				break
			}
			continue
		}
		if e.Seq != want {
			t.Fatalf("event %d after %d: %s", e.Seq, want-1, l)
		}
		texts = append(texts, e.Kind.String()+" "+e.From+" "+e.Text)
		want++
	}
	want := []string{"part bob closed", "msg alice three", "part alice joined kitchen"}
	if strings.Join(texts, "\n") != strings.Join(want, "\n") {
		t.Errorf("bob resumed with\n%s\nwant\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
	}
	carol := join(t, s, "carol")
	carol.send("/join kitchen")
	carol.until("four", func(l string) bool { return l == "alice: four" })
	if st := s.Stats(); st.StoreFailed != "" {
		t.Errorf("stats: %q", st.StoreFailed)
	}
}

// TestStoreUnwritable: a store that cannot be written leaves the relay
// serving from memory, and says so in the log and the stats.
func TestStoreUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	cfg := testConfig()
	cfg.Store.Path = filepath.Join(file, "store")
	log := testkit.NewLog(t)
	testkit.NoLeaks(t)
	s := New(cfg, log.Logf)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer shutdownNow(t, s)
	if st := s.Stats(); !strings.Contains(st.StoreFailed, "not a directory") || !strings.Contains(st.StoreFailed, "memory only") {
		t.Errorf("stats: %q", st.StoreFailed)
	}
	if !log.Has("error: store ") {
		t.Errorf("log:\n%s", log)
	}
	a, b := join(t, s, "a"), join(t, s, "b")
	a.send("still here")
	b.until("the message", func(l string) bool { return l == "a: still here" })
}
