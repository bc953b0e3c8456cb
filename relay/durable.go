package relay

import (
	"roomrelay/internal/fmtlite"

	"roomrelay/proto"
	"roomrelay/relay/config"
	"roomrelay/relay/store"
)

// openStore opens relay.store.path, when it is set, and makes a room of
// every room read back from it: the newest ones, up to Limits.MaxRooms,
// the default room first; the others are removed. A store that cannot be
// opened is logged and counted, and the relay serves from memory. Called
// by Start before any door opens.
func (s *Server) openStore() {
	cfg := s.conf()
	if cfg.Store.Path == "" {
		return
	}
	every, _ := config.ParseSync(cfg.Store.Sync) // validated
	st, saved, err := store.Open(store.Options{
		Dir: cfg.Store.Path, Sync: every, History: cfg.Limits.History,
		Logf: s.warnf, Fail: s.storeFailed,
	})
	if err != nil {
		s.storeFailed(err)
		return
	}
	last := func(r store.Room) uint64 { return r.Events[len(r.Events)-1].Seq }
	home := proto.Fold(cfg.DefaultRoom)
	before := func(a, b store.Room) bool {
		if (proto.Fold(a.Name) == home) != (proto.Fold(b.Name) == home) {
			return proto.Fold(a.Name) == home
		}
		return a.Events[len(a.Events)-1].Time.After(b.Events[len(b.Events)-1].Time)
	}
	// The default room first, then the most recent, in a stable insertion
	// sort: the store holds a few rooms (max_rooms, unless it was lowered),
	// and sort.SliceStable would bring reflection's Swapper.
	for i := 1; i < len(saved); i++ {
		for j := i; j > 0 && before(saved[j], saved[j-1]); j-- {
			saved[j], saved[j-1] = saved[j-1], saved[j]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store = st
	for i, sr := range saved {
		if i >= cfg.Limits.MaxRooms {
			s.warnf("store: %s: over relay.limits.max_rooms (%d): removed", sr.Name, cfg.Limits.MaxRooms)
			st.Drop(sr.Name)
			continue
		}
		r := newRoomBytes(sr.Name, cfg.Limits.History, cfg.Limits.HistoryBytes)
		r.restore(sr.Epoch, sr.Events, sr.Head)
		r.log = st.Log(r.name, r.epoch)
		s.rooms[proto.Fold(r.name)] = r
		how := "its epoch " + r.epoch + " continues"
		switch {
		case sr.Epoch == "":
			how = "it may lack events the relay delivered before it stopped: new epoch " + r.epoch
		case sr.Head > last(sr):
			how = fmtlite.Sprintf("the relay did not stop cleanly: events %d to %d (numbers reserved, some handed out) are lost; its epoch %s continues from %d",
				last(sr)+1, sr.Head, r.epoch, sr.Head+1)
		}
		s.infof("store: %s: events %d to %d read back; %s", r.name, sr.Events[0].Seq, last(sr), how)
	}
}

// storeFailed says, in the log and the stats, that the store is not
// written: the relay goes on from memory.
func (s *Server) storeFailed(err error) {
	msg := fmtlite.Sprintf("%v: rooms are kept in memory only until the relay restarts", err)
	s.storeErr.Store(&msg)
	s.errorf("%s", msg)
}
