// Package store keeps the relay's rooms on disk, so that their history
// and their members' resume points survive a restart. It knows files and
// records, not members or sockets: package relay posts events into a
// room's Log and gets the rooms back from Open.
//
// Each room is a directory of append-only segment files, each file a
// header record (the room's epoch) and then one record per event, every
// record framed with its length and a CRC-32C checksum (see record.go). A
// room keeps at most history events and two segments more; older segments
// are removed as the window moves.
//
// When events reach the disk is the sync policy (config.ParseSync):
// "always" writes and syncs each event before Append returns, so before
// the relay delivers it; an interval buffers events in memory, and a
// writer goroutine writes them (a segment's worth at a time) and syncs
// them at that interval; "off" writes each event at once and never syncs
// it. A segment, when it starts, is not synced: it is, with the segment it
// follows and the directory, at the next sync.
//
// Under an interval or "off", events the relay delivered may be lost in a
// crash. So that their sequence numbers are never handed out again, a log
// reserves numbers ahead, a block at a time: a record "reserved up to N",
// written and synced before the room hands out a number past N (the writer
// takes the next block while half of the current one is left, so posters
// wait only when it falls behind; then the block doubles, up to half the
// history). A room read back after an unclean stop continues its epoch
// from its reserved mark: the numbers between its last record and the
// mark are a hole, lost (Room.Head). After a clean stop, or under
// "always", it continues from its last record. A log of a version without
// reservations, read back after an unclean stop, gives the room a new
// epoch instead.
//
// A store that cannot be written stops: it says why once (Options.Fail),
// removes what it holds (now stale: the rooms go on in memory), and
// writes nothing more.
package store

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"roomrelay/internal/fmtlite"
	"roomrelay/internal/sortlite"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
)

// File is a segment open for appending; os.File is one. Tests give
// Options.Create files that fail.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

// Options configure a Store.
type Options struct {
	Dir     string
	Sync    time.Duration // config.SyncAlways, config.SyncOff, or an interval
	History int           // events kept per room
	Logf    config.Logf   // recovery's reports; nil: none
	// Fail is told, once, why the store stopped writing; nil: nothing.
	Fail func(error)
	// Create opens a new segment; nil: os.OpenFile.
	Create func(path string) (File, error)
}

// Room is a room read back from the store.
type Room struct {
	Name string
	// Epoch is the room's epoch to continue, or "" when the log may lack
	// events that were delivered and tells no bound on their numbers: then
	// the room needs a new one.
	Epoch string
	// Events are the newest events, oldest first, seqs increasing. A jump
	// between two is a hole: numbers of events lost in an earlier crash.
	Events []proto.Event
	// Head is the highest sequence number the room may have handed out:
	// its last event's, or more after an unclean stop (its reserved mark).
	// The room's next event takes Head+1; the numbers after the last event
	// up to Head are lost.
	Head uint64
}

// Store is the rooms' logs in one directory.
type Store struct {
	o        Options // set once
	segMax   int     // events a segment takes before the next one starts; set once
	minBlock uint64  // numbers a log reserves at a time at first; set once
	maxBlock uint64  // and at most; set once

	failed atomic.Pointer[error] // set once, by fail
	writes atomic.Int64          // events written to segments

	mu   sync.Mutex
	logs map[string]*Log // by directory name

	wake    chan struct{} // a log asked the writer to write or reserve; see Log.asked
	stop    chan struct{} // closed by Close, once
	closing sync.Once
	done    chan struct{} // closed when the writer ends
}

// maxAhead bounds how far past the last event a reservation read back may
// be (a few blocks, of at most half the history, up to 1<<20): one past
// it is damage, and is ignored.
const maxAhead = 1 << 32

// segExt ends a segment's file name; the name is its first seq, in hex.
const segExt = ".seg"

// Open opens (making it if need be) the store in o.Dir, reads back every
// room in it, and starts syncing at o.Sync's interval. A directory that
// cannot be written is an error, and nothing is read back.
func Open(o Options) (*Store, []Room, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Fail == nil {
		o.Fail = func(error) {}
	}
	if o.Create == nil {
		o.Create = func(path string) (File, error) {
			return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		}
	}
	s := &Store{o: o, segMax: max(o.History/8, 8), logs: map[string]*Log{},
		minBlock: uint64(max(o.History/16, 1)), maxBlock: uint64(max(o.History/2, 1)),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, nil, fmtlite.Errorf("store %s: %w", o.Dir, err)
	}
	if err := s.probe(); err != nil {
		return nil, nil, fmtlite.Errorf("store %s: cannot write: %w", o.Dir, err)
	}
	ents, err := readDir(o.Dir)
	if err != nil {
		return nil, nil, fmtlite.Errorf("store %s: %w", o.Dir, err)
	}
	var rooms []Room
	for _, ent := range ents {
		if !ent.IsDir() {
			continue
		}
		r, segs := s.recover(filepath.Join(o.Dir, ent.Name()))
		if r.Name == "" || proto.Fold(r.Name) != unkey(ent.Name()) {
			if err := removeAll(filepath.Join(o.Dir, ent.Name())); err == nil && r.Name != "" {
				o.Logf("store: %s: not %s's directory: removed", ent.Name(), r.Name)
			}
			continue
		}
		rooms = append(rooms, r)
		s.logs[ent.Name()] = &Log{s: s, dir: filepath.Join(o.Dir, ent.Name()), segs: segs,
			reserved: r.Head, block: s.minBlock}
	}
	go s.writer()
	return s, rooms, nil
}

// probe writes, syncs and removes a file, so that a store that cannot be
// written is found at once.
func (s *Store) probe() error {
	path := filepath.Join(s.o.Dir, ".probe")
	f, err := s.o.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte("roomrelay\n"))
	err = errors.Join(err, f.Sync(), f.Close())
	return errors.Join(err, os.Remove(path))
}

// key is the directory of the room called name: its folded name in hex,
// which any file system takes.
func key(name string) string { return fmtlite.Sprintf("%x", proto.Fold(name)) }

func unkey(dir string) string {
	b, _ := fmtlite.Unhex(dir)
	return string(b)
}

// seg is one segment file of a log.
type seg struct {
	first uint64 // the first event it holds
	path  string
}

// recover reads back the room in dir: every segment's records until the
// first bad one, where the segment is cut; then the newest run of
// consecutive events, at most History of them. Segments that hold none
// of them are removed. It returns the room (no name when nothing is
// kept) and the segments left.
func (s *Store) recover(dir string) (Room, []seg) {
	logf := s.o.Logf
	ents, _ := readDir(dir)
	var names []string
	for _, ent := range ents {
		if strings.HasSuffix(ent.Name(), segExt) {
			names = append(names, ent.Name())
		}
	}
	sortlite.Strings(names) // fixed-width hex: by first seq
	var (
		r        Room
		evs      []proto.Event
		segs     []seg
		trusted  bool
		reserved uint64 // the highest reservation
		clean    = true // every file read, its events in order
	)
	for _, name := range names {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			logf("store: %s: %v: skipped", path, err)
			clean = false
			continue
		}
		var (
			off   int
			hdr   *record
			first uint64
			bad   error
		)
		closed := false
		for off < len(b) {
			rec, n, err := readRecord(b[off:])
			if err == nil && (hdr == nil) != (rec.typ == recHeader) {
				err = fmtlite.Errorf("a %q record where the header should be, or a header after it", rec.typ)
			}
			if err != nil {
				bad = err
				break
			}
			off += n
			closed = false
			switch rec.typ {
			case recHeader:
				hdr = &rec
				r.Name, r.Epoch = rec.room, rec.epoch
				trusted = rec.flags&flagAlways != 0
			case recEvent:
				if len(evs) > 0 {
					switch prev := evs[len(evs)-1].Seq; {
					case rec.ev.Seq <= prev:
						logf("store: %s: event %d follows %d: the %d events before it are dropped",
							path, rec.ev.Seq, prev, len(evs))
						evs, clean = evs[:0], false
					case rec.ev.Seq-1 > max(prev, reserved):
						// A hole not reserved: events of a segment cut
						// before its end. (A reserved one is the numbers
						// of events lost in a crash.) Their numbers are
						// not given again.
						logf("store: %s: events %d to %d are missing", path, prev+1, rec.ev.Seq-1)
					}
				}
				if first == 0 {
					first = rec.ev.Seq
				}
				evs = append(evs, rec.ev)
			case recClosed:
				closed = len(evs) > 0 && rec.ev.Seq == evs[len(evs)-1].Seq
			case recReserve:
				reserved = max(reserved, rec.ev.Seq)
			}
		}
		if bad != nil {
			last := "its header"
			if len(evs) > 0 {
				last = "event " + strconv.FormatUint(evs[len(evs)-1].Seq, 10)
			}
			logf("store: %s: %v at byte %d: cut %d bytes after %s", path, bad, off, len(b)-off, last)
			if err := os.Truncate(path, int64(off)); err != nil {
				logf("store: %s: %v", path, err)
			}
		}
		trusted = trusted || closed
		if first == 0 {
			os.Remove(path)
			continue
		}
		segs = append(segs, seg{first, path})
	}
	head := uint64(0)
	if len(evs) > 0 {
		head = evs[len(evs)-1].Seq
		if reserved > head && reserved-head > maxAhead {
			// A reservation runs at most a few blocks ahead: this one
			// is damage that passed the checksum.
			logf("store: %s: numbers reserved up to %d, far past event %d: ignored", dir, reserved, head)
			reserved = 0
		}
		if !trusted && reserved > head {
			head = reserved // nothing past the reserved mark was handed out
		}
	}
	// The window is by number, as the room's: at most History events, and
	// none History or more before the head; but the last event stays, so
	// that the room (its epoch and head) does.
	keep := max(len(evs)-s.o.History, 0)
	for keep < len(evs)-1 && evs[keep].Seq+uint64(s.o.History) <= head {
		keep++
	}
	evs = evs[keep:]
	for len(segs) > 0 && (len(evs) == 0 || len(segs) > 1 && segs[1].first <= evs[0].Seq) {
		os.Remove(segs[0].path)
		segs = segs[1:]
	}
	if len(evs) == 0 {
		removeAll(dir)
		return Room{}, nil
	}
	r.Head = head
	switch {
	case !clean:
		r.Epoch = ""
	case trusted:
		// Closed cleanly, or every event synced before it was delivered.
	case reserved > 0:
		// The head is the reserved mark: written again in the last
		// segment, so that it holds when the segments that had it are
		// removed, or the relay stops again before it posts.
		if err := appendTo(segs[len(segs)-1].path, appendReserve(nil, head)); err != nil {
			logf("store: %s: %v", segs[len(segs)-1].path, err)
		}
	default:
		r.Epoch = ""
	}
	r.Events = evs
	return r, segs
}

// appendTo appends b to the file at path and syncs it.
func appendTo(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// Log returns the log of the room called name, whose epoch is epoch.
func (s *Store) Log(name, epoch string) *Log {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(name)
	l := s.logs[k]
	if l == nil {
		l = &Log{s: s, dir: filepath.Join(s.o.Dir, k), block: s.minBlock}
		s.logs[k] = l
	}
	l.room, l.epoch = name, epoch
	return l
}

// Drop removes the room called name: the relay dropped it.
func (s *Store) Drop(name string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	l := s.logs[key(name)]
	delete(s.logs, key(name))
	s.mu.Unlock()
	if l != nil {
		l.wmu.Lock()
		l.dropped = true
		l.closeFiles()
		l.wmu.Unlock()
	}
	removeAll(filepath.Join(s.o.Dir, key(name)))
}

// Counts returns how many events the store wrote to its segments, and
// how many errors it met (at most one: it stops at the first); 0, 0 for a
// nil store.
func (s *Store) Counts() (writes, errors int64) {
	if s == nil {
		return 0, 0
	}
	if s.failed.Load() != nil {
		errors = 1
	}
	return s.writes.Load(), errors
}

// Err returns why the store stopped writing, or nil.
func (s *Store) Err() error {
	if s == nil {
		return nil
	}
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Beside returns the path of the file name in st's directory, beside
// the rooms' directories (Open and a failing store leave such a file
// alone), and whether st's sync policy syncs (it is not "off"), for a file
// of the relay's own to be written there; "" without a store (st is nil).
// A function rather than a method, so that a build that never calls it
// (the minimal one) carries nothing of it in *Store's method table.
func Beside(st *Store, name string) (path string, sync bool) {
	if st == nil {
		return "", false
	}
	return filepath.Join(st.o.Dir, name), st.o.Sync != config.SyncOff
}

// fail stops the store: it writes nothing more, and removes what it holds,
// which no longer has every event.
func (s *Store) fail(err error) {
	if !s.failed.CompareAndSwap(nil, &err) {
		return
	}
	s.o.Fail(err)
	s.removeAll()
}

// readDir is os.ReadDir (the entries of dir, by name) without its
// generic sort of entries, about 8 KB of a mipsle binary: it sorts the
// names.
func readDir(dir string) ([]fs.DirEntry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	byName := make(map[string]fs.DirEntry, len(ents))
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
		byName[names[i]] = e
	}
	sortlite.Strings(names)
	for i, name := range names {
		ents[i] = byName[name]
	}
	return ents, err
}

// removeAll removes path and, if it is a directory, what it holds, as
// os.RemoveAll does (nil if path is not there), without os.RemoveAll's
// walk (some 4 KB of a mipsle binary): the store's directories hold a
// room's segments. A symbolic link is removed, not followed.
func removeAll(path string) error {
	err := os.Remove(path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	f, derr := os.Open(path)
	if derr != nil {
		return err
	}
	ents, _ := f.ReadDir(-1)
	f.Close()
	for _, e := range ents {
		removeAll(filepath.Join(path, e.Name()))
	}
	return os.Remove(path)
}

func (s *Store) removeAll() {
	ents, _ := readDir(s.o.Dir)
	for _, ent := range ents {
		if ent.IsDir() {
			removeAll(filepath.Join(s.o.Dir, ent.Name()))
		}
	}
}

// each calls f for every log.
func (s *Store) each(f func(*Log)) {
	s.mu.Lock()
	logs := make([]*Log, 0, len(s.logs))
	for _, l := range s.logs {
		logs = append(logs, l)
	}
	s.mu.Unlock()
	for _, l := range logs {
		f(l)
	}
}

// writer writes and reserves for the logs that ask (Log.ahead), and
// writes and syncs every log at the sync interval, until Close.
func (s *Store) writer() {
	defer close(s.done)
	var tick <-chan time.Time
	if s.o.Sync > 0 {
		t := time.NewTicker(s.o.Sync)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
			s.each((*Log).ahead)
		case <-tick:
			s.each(func(l *Log) { l.flush(true, 0) })
		}
	}
}

// wakeWriter tells the writer that a log asked; it never blocks.
func (s *Store) wakeWriter() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close writes and syncs what is buffered, marks every log closed
// cleanly, and closes its files. Call it after the last Append; calls
// after the first do nothing more.
func (s *Store) Close() error {
	if s == nil {
		return nil
	}
	s.closing.Do(func() { close(s.stop) })
	<-s.done
	s.each(func(l *Log) { l.close() })
	if s.Err() != nil {
		s.removeAll() // a write under way when it failed may have made a file
	}
	return s.Err()
}
