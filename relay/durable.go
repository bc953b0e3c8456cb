package relay

import (
	"roomrelay/internal/fmtlite"
	"sort"

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
	sort.SliceStable(saved, func(i, j int) bool {
		a, b := saved[i], saved[j]
		if (proto.Fold(a.Name) == home) != (proto.Fold(b.Name) == home) {
			return proto.Fold(a.Name) == home
		}
		return a.Events[len(a.Events)-1].Time.After(b.Events[len(b.Events)-1].Time)
	})
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
