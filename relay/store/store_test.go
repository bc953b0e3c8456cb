package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"roomrelay/proto"
	"roomrelay/relay/config"
	"roomrelay/relay/internal/testkit"
)

func ev(seq uint64) proto.Event {
	return proto.Event{Kind: proto.KindMsg, Seq: seq, From: "alice", Text: fmt.Sprintf("line %d", seq),
		Time: time.UnixMilli(1_790_000_000_000 + int64(seq)).UTC()}
}

func TestRecordRoundTrip(t *testing.T) {
	evs := []proto.Event{
		ev(1),
		{Kind: proto.KindPart, Seq: 1 << 40, From: "bob smith", Text: "relay shutting down"},
		{Kind: proto.KindJoin, Seq: 3, From: "ünï", Time: time.UnixMilli(-5).UTC()},
		{Kind: proto.KindPrivate, Seq: 4, From: "a", To: "b", Text: strings.Repeat("x", 70000)},
	}
	var b []byte
	b = appendHeader(b, flagAlways, "k3f9ab", "Lobby")
	for i := range evs {
		b = appendEvent(b, &evs[i])
	}
	b = appendClosed(b, 4)
	var got []record
	for len(b) > 0 {
		r, n, err := readRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
		b = b[n:]
	}
	want := []record{{typ: recHeader, flags: flagAlways, epoch: "k3f9ab", room: "Lobby"}}
	for _, e := range evs {
		want = append(want, record{typ: recEvent, ev: e})
	}
	want = append(want, record{typ: recClosed, ev: proto.Event{Seq: 4}})
	if d := cmp.Diff(want, got, cmp.AllowUnexported(record{})); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
}

func TestRecordDamage(t *testing.T) {
	e := ev(7)
	good := appendEvent(nil, &e)
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x10
		if _, _, err := readRecord(b); err == nil {
			t.Errorf("bit flipped in byte %d: read back without an error", i)
		}
	}
	for n := range len(good) {
		if _, _, err := readRecord(good[:n]); err == nil {
			t.Errorf("cut to %d bytes: read back without an error", n)
		}
	}
}

// FuzzRecover writes arbitrary bytes as a room's only segment and checks
// that recovery neither fails nor keeps anything but events in increasing
// order within the window before the head, and that what it leaves reads
// back the same.
func FuzzRecover(f *testing.F) {
	var seg []byte
	seg = appendHeader(seg, 0, "abcdef", "lobby")
	for i := uint64(1); i <= 3; i++ {
		e := ev(i)
		seg = appendEvent(seg, &e)
	}
	f.Add(seg)
	f.Add(appendClosed(append([]byte(nil), seg...), 3))
	f.Add(appendReserve(append([]byte(nil), seg...), 9))
	hole := ev(7)
	f.Add(appendEvent(appendReserve(append([]byte(nil), seg...), 9), &hole))
	f.Add(seg[:len(seg)-3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		room := filepath.Join(dir, key("lobby"))
		os.Mkdir(room, 0o700)
		os.WriteFile(filepath.Join(room, "0000000000000001.seg"), b, 0o600)
		s, rooms, err := Open(Options{Dir: dir, Sync: config.SyncOff, History: 8})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, r := range rooms {
			if len(r.Events) == 0 || len(r.Events) > 8 {
				t.Fatalf("%d events read back", len(r.Events))
			}
			for i, e := range r.Events[1:] {
				if e.Seq <= r.Events[i].Seq {
					t.Fatalf("seq %d after %d", e.Seq, r.Events[i].Seq)
				}
			}
			if f, l := seqs(r); r.Head < l || len(r.Events) > 1 && f+8 <= r.Head {
				t.Fatalf("events %d to %d, head %d: outside the window", f, l, r.Head)
			}
		}
		// What is left reads back the same, with nothing more to cut.
		s.Close()
		log := testkit.NewLog(t)
		s2, again, err := Open(Options{Dir: dir, Sync: config.SyncOff, History: 8, Logf: log.Logf})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		strip := func(rs []Room) []Room {
			for i := range rs {
				rs[i].Epoch = ""
			}
			return rs
		}
		if d := cmp.Diff(strip(rooms), strip(again)); d != "" {
			t.Errorf("read back twice (-first +second)\n%s", d)
		}
		if log.Has("cut") {
			t.Errorf("a second recovery cut again: %s", log)
		}
	})
}

// open opens a store in dir for a test, with history 16 and a log.
func open(t *testing.T, dir string, sync time.Duration) (*Store, []Room, *testkit.Log) {
	t.Helper()
	log := testkit.NewLog(t)
	s, rooms, err := Open(Options{Dir: dir, Sync: sync, History: 16, Logf: log.Logf})
	if err != nil {
		t.Fatal(err)
	}
	return s, rooms, log
}

// post appends events from to to of the room's log.
func post(l *Log, from, to uint64) {
	for seq := from; seq <= to; seq++ {
		e := ev(seq)
		l.Append(&e)
	}
}

func seqs(r Room) (first, last uint64) { return r.Events[0].Seq, r.Events[len(r.Events)-1].Seq }

func TestReopen(t *testing.T) {
	for _, sync := range []time.Duration{config.SyncAlways, config.SyncOff, time.Hour} {
		t.Run(fmt.Sprint(sync), func(t *testing.T) {
			dir := t.TempDir()
			s, rooms, _ := open(t, dir, sync)
			if len(rooms) != 0 {
				t.Fatalf("a new store has rooms: %v", rooms)
			}
			post(s.Log("Lobby", "aaaaaa"), 1, 100)
			post(s.Log("kitchen", "bbbbbb"), 1, 3)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, rooms, _ = open(t, dir, sync)
			defer s.Close()
			if len(rooms) != 2 {
				t.Fatalf("%d rooms read back", len(rooms))
			}
			got := map[string][3]any{}
			for _, r := range rooms {
				f, l := seqs(r)
				got[r.Name] = [3]any{r.Epoch, f, l}
				if d := cmp.Diff(ev(l), r.Events[len(r.Events)-1]); d != "" {
					t.Errorf("%s's last event (-want +got)\n%s", r.Name, d)
				}
			}
			want := map[string][3]any{"Lobby": {"aaaaaa", uint64(85), uint64(100)}, "kitchen": {"bbbbbb", uint64(1), uint64(3)}}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

// TestBounded: however many events pass, at each sync policy, a room's
// directory holds at most History plus two segments of events (and their
// headers and reservations), within the README's bound of
// (1.25 × history + 16) × (L + 450) bytes for lines of L bytes.
func TestBounded(t *testing.T) {
	for _, sync := range []time.Duration{config.SyncAlways, config.SyncOff, time.Millisecond} {
		t.Run(fmt.Sprint(sync), func(t *testing.T) {
			dir := t.TempDir()
			s, _, _ := open(t, dir, sync)
			l := s.Log("lobby", "aaaaaa")
			text := strings.Repeat("x", 300)
			size := func() (n int64) {
				ents, _ := os.ReadDir(l.dir)
				for _, e := range ents {
					if fi, err := e.Info(); err == nil {
						n += fi.Size()
					}
				}
				return n
			}
			var most int64
			n := uint64(2000)
			if sync == config.SyncAlways {
				n = 500 // a sync per event
			}
			for seq := uint64(1); seq <= n; seq++ {
				e := ev(seq)
				e.Text = text
				l.Append(&e)
				most = max(most, size())
			}
			s.Close()
			most = max(most, size())
			e := ev(n)
			e.Text = text
			one := int64(len(appendEvent(nil, &e)) + len(appendReserve(nil, n)))
			head := int64(len(appendHeader(nil, flagAlways, "aaaaaa", "lobby")))
			if bound := (16+2*int64(s.segMax))*one + 4*head + 32; most > bound {
				t.Errorf("the room's directory reached %d bytes, over %d", most, bound)
			}
			if readme := int64((1.25*16 + 16) * (300 + 450)); most > readme {
				t.Errorf("the room's directory reached %d bytes, over the README's %d", most, readme)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestUnclean: a log not closed cleanly keeps its epoch. Written with
// sync "always", it continues from its last event; otherwise from its
// reserved mark, past every number the room may have handed out, and the
// numbers between are a hole that a third start reads back as one.
func TestUnclean(t *testing.T) {
	for _, sync := range []time.Duration{config.SyncAlways, config.SyncOff, time.Hour} {
		t.Run(fmt.Sprint(sync), func(t *testing.T) {
			dir := t.TempDir()
			s, _, _ := open(t, dir, sync)
			l := s.Log("lobby", "aaaaaa")
			post(l, 1, 5)
			s.closing.Do(func() { close(s.stop) })
			<-s.done // the writer reserves no more
			s.each(func(l *Log) { l.flush(false, 0) })
			l.mu.Lock()
			reserved := l.reserved
			l.mu.Unlock()
			// No Close: the process was killed. (Its files are left open.)
			s2, rooms, _ := open(t, dir, sync)
			if len(rooms) != 1 || rooms[0].Epoch != "aaaaaa" {
				t.Fatalf("read back %+v, want epoch aaaaaa", rooms)
			}
			head := rooms[0].Head
			switch {
			case sync == config.SyncAlways && head != 5:
				t.Errorf("head %d, want 5", head)
			case sync != config.SyncAlways && (reserved < 5 || head != reserved):
				t.Errorf("head %d, want the reserved mark %d (at least 5)", head, reserved)
			}
			// The relay stops again before it posts: the head holds.
			s2.Close()
			s3, rooms, _ := open(t, dir, sync)
			if len(rooms) != 1 || rooms[0].Head != head || rooms[0].Epoch != "aaaaaa" {
				t.Fatalf("read back again %+v, want head %d", rooms, head)
			}
			post(s3.Log("lobby", "aaaaaa"), head+1, head+3)
			s3.Close()
			s4, rooms, log := open(t, dir, sync)
			defer s4.Close()
			var got []uint64
			for _, e := range rooms[0].Events {
				got = append(got, e.Seq)
			}
			want := []uint64{1, 2, 3, 4, 5, head + 1, head + 2, head + 3}
			if head == 5 {
				want = []uint64{1, 2, 3, 4, 5, 6, 7, 8}
			}
			if d := cmp.Diff(want, got); d != "" || rooms[0].Head != head+3 || log.Has("missing") {
				t.Errorf("head %d; events (-want +got)\n%s\nlog: %s", rooms[0].Head, d, log)
			}
		})
	}
}

func TestTornAndFlipped(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(b []byte) []byte
		last   uint64
		epoch  string
		logged string
	}{
		{"torn", func(b []byte) []byte { return b[:len(b)-5] }, 39, "aaaaaa", "record cut short"},
		{"flipped", func(b []byte) []byte { b[len(b)-10] ^= 4; return b }, 39, "", "bad checksum"},
		{"length", func(b []byte) []byte { b[len(b)-29] = 0xff; return b }, 39, "", "cut"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _, _ := open(t, dir, config.SyncAlways)
			post(s.Log("lobby", "aaaaaa"), 1, 40)
			l := s.logs[key("lobby")]
			last := l.segs[len(l.segs)-1].path
			l.wmu.Lock()
			l.f.Close()
			l.f = nil // killed: no clean close
			l.wmu.Unlock()
			s.Close()
			b, _ := os.ReadFile(last)
			os.WriteFile(last, c.damage(b), 0o600)
			s, rooms, log := open(t, dir, config.SyncAlways)
			if len(rooms) != 1 {
				t.Fatalf("%d rooms read back", len(rooms))
			}
			if _, got := seqs(rooms[0]); got != c.last {
				t.Errorf("last event read back %d, want %d", got, c.last)
			}
			if c.name != "torn" {
				c.epoch = "" // a flipped bit in the last record looks torn too
			}
			if !log.Has(c.logged) {
				t.Errorf("log lacks %q: %s", c.logged, log)
			}
			// Appending goes on after the cut; a third start reads it all.
			post(s.Log("lobby", "cccccc"), c.last+1, c.last+3)
			s.Close()
			s, rooms, log = open(t, dir, config.SyncAlways)
			defer s.Close()
			if f, l := seqs(rooms[0]); f != c.last+3-15 || l != c.last+3 || rooms[0].Epoch != "cccccc" || log.Has("cut") {
				t.Errorf("third start: events %d to %d of epoch %q; log %s", f, l, rooms[0].Epoch, log)
			}
		})
	}
}

// TestFlippedMiddle: a bad record in an older segment is a hole: the
// events before it and after it are kept, the epoch continues, and the
// missing ones are logged.
func TestFlippedMiddle(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, config.SyncAlways)
	post(s.Log("lobby", "aaaaaa"), 1, 30)
	l := s.logs[key("lobby")]
	first := l.segs[0]
	s.Close()
	b, _ := os.ReadFile(first.path)
	b[len(b)-40] ^= 1
	os.WriteFile(first.path, b, 0o600)
	s, rooms, log := open(t, dir, config.SyncAlways)
	defer s.Close()
	if f, l := seqs(rooms[0]); rooms[0].Epoch != "aaaaaa" || l != 30 || f != 17 || rooms[0].Head != 30 {
		t.Errorf("read back events %d to %d of epoch %q", f, l, rooms[0].Epoch)
	}
	if !log.Has("events 15 to 16 are missing") {
		t.Errorf("log: %s", log)
	}
}

// fullFile is a segment on a disk that fills after some bytes.
type fullFile struct {
	*os.File
	left *int
	mu   *sync.Mutex
}

func (f fullFile) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(b) > *f.left {
		return 0, errors.New("no space left on device")
	}
	*f.left -= len(b)
	return f.File.Write(b)
}

// TestFullDisk: a write that fails stops the store, once, with a reason;
// it removes what it held (stale now) and takes no more.
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	left, mu := 3000, &sync.Mutex{}
	var fails []error
	s, _, err := Open(Options{Dir: dir, Sync: config.SyncAlways, History: 16,
		Fail: func(err error) { fails = append(fails, err) },
		Create: func(path string) (File, error) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			return fullFile{f, &left, mu}, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	post(s.Log("lobby", "aaaaaa"), 1, 200)
	if len(fails) != 1 || !strings.Contains(fails[0].Error(), "no space left") || s.Err() == nil {
		t.Fatalf("failures %v, Err %v", fails, s.Err())
	}
	if err := s.Close(); err == nil {
		t.Error("Close of a failed store: no error")
	}
	s, rooms, _ := open(t, dir, config.SyncAlways)
	defer s.Close()
	if len(rooms) != 0 {
		t.Errorf("a failed store read back %d rooms", len(rooms))
	}
}

func TestUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, _, err := Open(Options{Dir: filepath.Join(file, "store"), History: 16}); err == nil {
		t.Error("a store under a file opened")
	}
	_, _, err := Open(Options{Dir: t.TempDir(), History: 16,
		Create: func(string) (File, error) { return nil, errors.New("read-only file system") }})
	if err == nil || !strings.Contains(err.Error(), "cannot write: read-only") {
		t.Errorf("got %v", err)
	}
}

func TestDrop(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, config.SyncOff)
	l := s.Log("lobby", "aaaaaa")
	post(l, 1, 3)
	s.Drop("LOBBY")
	post(l, 4, 5) // a post racing the drop writes nothing
	s.Close()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left after drop: %v", ents)
	}
}

// FuzzRecord decodes arbitrary bytes as a record; one that decodes
// encodes back to the same bytes.
func FuzzRecord(f *testing.F) {
	e := ev(5)
	f.Add(appendEvent(nil, &e))
	f.Add(appendHeader(nil, flagAlways, "abcdef", "lobby"))
	f.Add(appendClosed(nil, 9))
	f.Add(appendReserve(nil, 1<<20))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := readRecord(b)
		if err != nil {
			return
		}
		var again []byte
		switch r.typ {
		case recHeader:
			again = appendHeader(nil, r.flags, r.epoch, r.room)
		case recEvent:
			again = appendEvent(nil, &r.ev)
		case recClosed:
			again = appendClosed(nil, r.ev.Seq)
		case recReserve:
			again = appendReserve(nil, r.ev.Seq)
		}
		if d := cmp.Diff(b[:n], again); d != "" {
			t.Errorf("re-encoded (-read +again)\n%s", d)
		}
	})
}

// BenchmarkRecover reads back a full store: 8 rooms (the default
// max_rooms) of 512 events each (the default history), messages of 60
// bytes, or of 1000 (max_line_bytes is 1024 by default).
func BenchmarkRecover(b *testing.B) {
	for _, size := range []int{60, 1000} {
		b.Run(fmt.Sprintf("8x512x%d", size), func(b *testing.B) {
			dir := b.TempDir()
			s, _, err := Open(Options{Dir: dir, Sync: config.SyncOff, History: 512})
			if err != nil {
				b.Fatal(err)
			}
			for r := range 8 {
				l := s.Log(fmt.Sprintf("room%d", r), "aaaaaa")
				for seq := uint64(1); seq <= 600; seq++ {
					e := ev(seq)
					e.Text = strings.Repeat("x", size)
					l.Append(&e)
				}
			}
			s.Close()
			b.ResetTimer()
			for b.Loop() {
				s, rooms, err := Open(Options{Dir: dir, Sync: config.SyncOff, History: 512})
				if err != nil || len(rooms) != 8 || len(rooms[0].Events) != 512 {
					b.Fatalf("%d rooms, %v", len(rooms), err)
				}
				s.Close()
			}
		})
	}
}

// BenchmarkAppend is what the store costs a post in the room's lock: one
// Append of a 60-byte message, at each sync policy but "always" (a sync).
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []time.Duration{time.Second, config.SyncOff} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			s, _, err := Open(Options{Dir: b.TempDir(), Sync: sync, History: 512})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			l := s.Log("lobby", "aaaaaa")
			e := ev(1)
			e.Text = strings.Repeat("x", 60)
			b.ReportAllocs()
			for b.Loop() {
				e.Seq++
				l.Append(&e)
			}
		})
	}
}

// TestReservedFar: a reservation far past the last event (damage that
// passed the checksum) is ignored: the room does not go on at a number
// near the largest, where the next would wrap.
func TestReservedFar(t *testing.T) {
	dir := t.TempDir()
	room := filepath.Join(dir, key("lobby"))
	os.Mkdir(room, 0o700)
	e := ev(1)
	b := appendReserve(appendEvent(appendHeader(nil, 0, "abcdef", "lobby"), &e), 1<<63)
	os.WriteFile(filepath.Join(room, "0000000000000001.seg"), b, 0o600)
	s, rooms, log := open(t, dir, config.SyncOff)
	defer s.Close()
	if len(rooms) != 1 || rooms[0].Head != 1 || rooms[0].Epoch != "" || !log.Has("far past event 1: ignored") {
		t.Errorf("read back %+v; log %s", rooms, log)
	}
}
