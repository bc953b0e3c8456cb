package relay

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"roomrelay/proto"
	"roomrelay/relay/config"
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

// copyDir copies the files of dir, a level of subdirectories deep, to a
// new directory: the store as a crash at this moment would leave it.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// TestStoreCrash: with sync "1h", events delivered but not yet written
// are lost in a crash (here: the store's files copied while the relay
// runs), but their numbers are not given again. After the restart the
// room keeps its epoch and goes on past its reserved mark; a member
// resuming from before the lost events gets what was kept, then one
// notice of the lost numbers; one resuming from a lost event gets the
// notice; the next event has a number past every number handed out.
func TestStoreCrash(t *testing.T) {
	cfg := testConfig()
	cfg.Store = config.Store{Path: t.TempDir(), Sync: "1h"}
	cfg.Limits.History = 1024 // a segment of 128 events, blocks of 64 numbers: events 2 to 10 stay buffered
	s := startServer(t, cfg)
	bob := join(t, s, `{"name":"bob","mode":"json"}`)
	alice := join(t, s, "alice")
	for i := 1; i <= 8; i++ {
		alice.send(fmt.Sprintf("m%d", i))
	}
	var last uint64
	for {
		e := jsonEvent(t, bob.line())
		if e.Text == "m8" {
			last = e.Seq
			break
		}
	}
	epoch := epochOf(t, s, "lobby")
	crashed := copyDir(t, cfg.Store.Path)
	shutdownNow(t, s)

	cfg.Store.Path = crashed
	log := testkit.NewLog(t)
	testkit.NoLeaks(t)
	s = New(cfg, log.Logf)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer shutdownNow(t, s)
	if got := epochOf(t, s, "lobby"); got != epoch {
		t.Fatalf("epoch %s after the crash, want %s", got, epoch)
	}
	s.mu.Lock()
	head := s.rooms["lobby"].seq
	s.mu.Unlock()
	if head <= last || !log.Has(fmt.Sprintf("did not stop cleanly: events 2 to %d ", head)) {
		t.Errorf("head %d after the crash, bob's last event %d; log:\n%s", head, last, log)
	}
	// Bob resumes from his last event, lost in the crash; carol from the
	// start.
	bob = join(t, s, fmt.Sprintf(`{"name":"bob","mode":"json","epoch":%q,"since":%d}`, epoch, last))
	carol := join(t, s, fmt.Sprintf(`{"name":"carol","mode":"json","epoch":%q,"since":0}`, epoch))
	// Dave joins without resuming: his replay of the last events
	// (relay.limits.replay) reaches past the hole, to the kept ones.
	dave := join(t, s, `{"name":"dave","mode":"json"}`)
	var replayed []string
	for {
		e := jsonEvent(t, dave.line())
		if e.Text == "end of earlier events" {
			break
		}
		if e.Seq != 0 || strings.Contains(e.Text, "were lost") {
			replayed = append(replayed, fmt.Sprintf("%d %s %s", e.Seq, e.Kind, e.From))
		}
	}
	want := []string{"1 join bob", "0 notice ", fmt.Sprintf("%d join bob", head+1), fmt.Sprintf("%d join carol", head+2)}
	if d := cmp.Diff(want, replayed); d != "" {
		t.Errorf("dave's replay (-want +got)\n%s", d)
	}
	alice = join(t, s, "alice")
	alice.send("after")
	read := func(tc *tconn) (got []string, next uint64) {
		for {
			e := jsonEvent(t, tc.line())
			switch {
			case e.Kind == proto.KindMsg && e.Text == "after":
				return got, e.Seq
			case e.Kind == proto.KindMsg, strings.Contains(e.Text, "were lost"):
				got = append(got, fmt.Sprintf("%d %s", e.Seq, e.Text))
			}
		}
	}
	gotBob, next := read(bob)
	hole := fmt.Sprintf("0 lobby's events 2 to %d were lost when the relay stopped (some of these numbers were never used); continuing from %d", head, head+1)
	if d := cmp.Diff([]string{hole}, gotBob); d != "" || next <= head {
		t.Errorf("bob resumed from %d: next event %d; (-want +got)\n%s", last, next, d)
	}
	gotCarol, _ := read(carol)
	if d := cmp.Diff([]string{hole}, gotCarol); d != "" {
		t.Errorf("carol resumed from 0 (event 1 is bob's join): (-want +got)\n%s", d)
	}
}
