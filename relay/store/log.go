package store

import (
	"errors"
	"os"
	"path/filepath"
	"roomrelay/internal/fmtlite"
	"sync"

	"roomrelay/proto"
	"roomrelay/relay/config"
)

// Log is one room's log. Its room appends to it under the room's lock,
// so events come in order; the writer and Close write it too.
type Log struct {
	s   *Store // set once
	dir string // set once

	// Set by Store.Log before the first Append.
	room, epoch string

	// Guarded by mu: what Append buffered and a flush has not taken, and
	// the reservation.
	mu       sync.Mutex
	buf      []byte        // events encoded: with sync "always" or "off"
	pend     []proto.Event // events to encode: with an interval, the writer encodes them
	n        int           // events in buf or pend
	first    uint64        // the first of them
	last     uint64        // the last seq appended
	spare    []byte        // buf's twin, while a flush is not writing it
	spareEvs []proto.Event // pend's twin, likewise
	begun    bool          // Append was called in this run
	reserved uint64        // the room may hand out numbers up to this one: on disk
	block    uint64        // numbers the next reservation takes past the last
	asked    bool          // the writer was woken for this log and has not looked

	// Guarded by wmu, held for a write and its sync.
	wmu     sync.Mutex
	segs    []seg
	f       File   // the newest segment; nil until the first write of this run
	old     []File // segments rolled away, written since synced: see roll
	curN    int    // events in f
	dirty   bool   // f written since it was synced
	newDir  bool   // a segment was made since the directory was synced
	dropped bool   // its room is gone: write nothing
}

// Append adds e, which has its seq, to the log. With sync "always" it
// returns once e is on disk; with "off" once it is written; with an
// interval it keeps a copy of e, and the writer encodes and writes the
// copies when they are a segment's worth (Append does, if the writer
// falls far behind). Under "off" and an interval, e's seq is reserved on
// disk when Append returns (see the package doc). A store that failed
// takes nothing.
func (l *Log) Append(e *proto.Event) {
	if l == nil || l.s.failed.Load() != nil {
		return
	}
	every := l.s.o.Sync
	l.mu.Lock()
	if l.n == 0 {
		l.first = e.Seq
	}
	if every > 0 {
		l.pend = append(l.pend, *e) // encoded off the room's lock, by flush
	} else {
		l.buf = appendEvent(l.buf, e)
	}
	l.n++
	l.last = e.Seq
	need := every != config.SyncAlways && e.Seq > l.reserved
	if need && l.begun && l.block < l.s.maxBlock {
		l.block = min(2*l.block, l.s.maxBlock) // the writer fell behind: reserve more at a time
	}
	ask := !need && !l.asked && every != config.SyncAlways &&
		(e.Seq+l.block/2 >= l.reserved || every > 0 && l.n >= l.s.segMax)
	l.asked = l.asked || ask
	behind := every > 0 && l.n >= 4*l.s.segMax
	l.begun = true
	l.mu.Unlock()
	switch {
	case every == config.SyncAlways:
		l.flush(true, 0)
	case need:
		// The first Append of a run comes here too: it starts a segment,
		// whose header tells recovery the policy its events were written
		// under.
		l.flush(true, e.Seq)
	case every == config.SyncOff || behind:
		l.flush(false, 0)
	}
	if ask {
		l.s.wakeWriter()
	}
}

// ahead is the writer's work for a log that asked: write what Append
// buffered, and reserve the next block while half of this one is left.
func (l *Log) ahead() {
	l.mu.Lock()
	asked := l.asked
	var cover uint64
	if l.last+l.block/2 >= l.reserved {
		cover = l.reserved + 1
	}
	l.asked = false
	l.mu.Unlock()
	if asked {
		l.flush(cover > 0, cover)
	}
}

// flush writes what Append buffered, starting a segment when the current
// one is full, removes the segments that fell out of the history window,
// and, when sync is true, syncs what was written (syncAll). When cover is
// past the reserved mark, it reserves the next block and syncs.
func (l *Log) flush(sync bool, cover uint64) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.dropped || l.s.failed.Load() != nil {
		return
	}
	l.mu.Lock()
	b, evs, n, first, last := l.buf, l.pend, l.n, l.first, l.last
	l.buf, l.pend, l.n, l.spare, l.spareEvs = l.spare[:0], l.spareEvs[:0], 0, nil, nil
	var mark uint64
	if cover > l.reserved && (n > 0 || l.f != nil) {
		mark = max(l.reserved, last) + l.block
		sync = true
	}
	l.mu.Unlock()
	all := evs
	defer func() {
		clear(all) // they hold the events' text
		l.mu.Lock()
		l.spare, l.spareEvs = b[:0], all[:0]
		l.mu.Unlock()
	}()
	// Events Append left to encode here (an interval policy's, many at a
	// time) are written a segment's room at a time: no segment holds more
	// than segMax events, so the directory keeps its bound.
	for len(evs) > 0 {
		k := min(len(evs), l.s.segMax)
		if l.f != nil && l.curN < l.s.segMax {
			k = min(k, l.s.segMax-l.curN)
		}
		for i := range k {
			b = appendEvent(b, &evs[i])
		}
		if !l.write(b, k, evs[0].Seq, evs[k-1].Seq) {
			return
		}
		b, evs = b[:0], evs[k:]
	}
	if len(all) > 0 {
		n = 0 // written above; b holds at most the reservation
	}
	if mark > 0 {
		b = appendReserve(b, mark)
	}
	if len(b) > 0 && !l.write(b, n, first, last) {
		return
	}
	if sync {
		if err := l.syncAll(); err != nil {
			l.s.fail(err)
			return
		}
	}
	if mark > 0 {
		l.mu.Lock()
		l.reserved = max(l.reserved, mark)
		l.mu.Unlock()
	}
}

// write writes b, which holds n events from first to last (and perhaps
// a reservation after them), starting a segment first when the current
// one is full, and removes the segments that fell out of the history
// window. It reports false when the store failed. Called with wmu held.
func (l *Log) write(b []byte, n int, first, last uint64) bool {
	if n > 0 && (l.f == nil || l.curN >= l.s.segMax) {
		if err := l.roll(first); err != nil {
			l.s.fail(err)
			return false
		}
	}
	if _, err := l.f.Write(b); err != nil {
		l.s.fail(fmtlite.Errorf("store: room %s: write: %w", l.room, err))
		return false
	}
	l.curN += n
	l.s.writes.Add(int64(n))
	l.dirty = true
	if n > 0 {
		l.trim(last)
	}
	return true
}

// roll starts a segment whose first event is first, with its header (the
// policy its events are written under). Nothing is synced here: the
// segment rolled away (with "off": closed), the header and the directory
// are synced at the next sync, before anything after them counts as on
// disk. Called with wmu held.
func (l *Log) roll(first uint64) error {
	if l.f != nil {
		if l.dirty && l.s.o.Sync != config.SyncOff {
			l.old = append(l.old, l.f)
		} else if err := l.f.Close(); err != nil {
			return fmtlite.Errorf("store: room %s: %w", l.room, err)
		}
		l.f, l.dirty = nil, false
		if len(l.old) >= maxOld {
			if err := l.syncOld(); err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return fmtlite.Errorf("store: room %s: %w", l.room, err)
	}
	path := filepath.Join(l.dir, fmtlite.Sprintf("%016x%s", first, segExt))
	f, err := l.s.o.Create(path)
	if err != nil {
		return fmtlite.Errorf("store: room %s: %w", l.room, err)
	}
	var flags byte
	if l.s.o.Sync == config.SyncAlways {
		flags |= flagAlways
	}
	if _, err := f.Write(appendHeader(nil, flags, l.epoch, l.room)); err != nil {
		f.Close()
		return fmtlite.Errorf("store: room %s: new segment %s: %w", l.room, path, err)
	}
	l.f, l.curN, l.dirty, l.newDir = f, 0, true, true
	l.segs = append(l.segs, seg{first, path})
	return nil
}

// maxOld is how many segments rolled away may wait for the next sync,
// open; past it they are synced at once.
const maxOld = 4

// syncOld syncs and closes the segments rolled away since the last sync.
// Called with wmu held.
func (l *Log) syncOld() error {
	var err error
	for _, f := range l.old {
		err = errors.Join(err, f.Sync(), f.Close())
	}
	clear(l.old)
	l.old = l.old[:0]
	if err != nil {
		return fmtlite.Errorf("store: room %s: sync: %w", l.room, err)
	}
	return nil
}

// syncAll syncs what was written: the segments rolled away, the newest
// one, and the directory when a segment was made in it. Called with wmu
// held.
func (l *Log) syncAll() error {
	if err := l.syncOld(); err != nil {
		return err
	}
	if l.dirty && l.f != nil {
		if err := l.f.Sync(); err != nil {
			return fmtlite.Errorf("store: room %s: sync: %w", l.room, err)
		}
		l.dirty = false
	}
	if l.newDir {
		if err := syncDir(l.dir); err != nil {
			return fmtlite.Errorf("store: room %s: sync: %w", l.room, err)
		}
		l.newDir = false
	}
	return nil
}

// trim removes the oldest segments while every event they hold is older
// than the history window ending at last. Called with wmu held.
func (l *Log) trim(last uint64) {
	for len(l.segs) > 1 && l.segs[1].first+uint64(l.s.o.History) <= last+1 {
		if err := os.Remove(l.segs[0].path); err != nil && !os.IsNotExist(err) {
			l.s.fail(fmtlite.Errorf("store: room %s: %w", l.room, err))
			return
		}
		l.segs = l.segs[1:]
	}
}

// close writes and syncs what is buffered, then marks the log closed
// cleanly after its last event.
func (l *Log) close() {
	l.flush(true, 0)
	l.wmu.Lock()
	defer l.wmu.Unlock()
	defer l.closeFiles()
	if l.f == nil {
		return
	}
	if l.s.failed.Load() == nil && !l.dropped {
		l.mu.Lock()
		last := l.last
		l.mu.Unlock()
		_, err := l.f.Write(appendClosed(nil, last))
		if err == nil {
			err = l.f.Sync()
		}
		if err != nil {
			l.s.fail(fmtlite.Errorf("store: room %s: close: %w", l.room, err))
		}
	}
}

// closeFiles closes the log's files without syncing them. Called with wmu
// held.
func (l *Log) closeFiles() {
	for _, f := range l.old {
		f.Close()
	}
	l.old = nil
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// syncDir syncs a directory, so the files made in it are there after a
// power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
