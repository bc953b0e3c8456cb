package relay

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
	"roomrelay/relay/store"
)

// benchConfig lifts the limits for a flat-out run, as a benchmark config
// for a real relay would.
func benchConfig() config.Config {
	cfg := testConfig()
	cfg.Limits.History = 1 << 17
	cfg.Limits.HistoryBytes = 0
	cfg.Limits.Queue = 1 << 17
	cfg.Limits.MaxClients = 1000
	cfg.Limits.MaxClientsPerIP = 1000
	cfg.Limits.Replay = 0
	return cfg
}

// BenchmarkFanout1x100: one sender, 100 receivers, over loopback.
func BenchmarkFanout1x100(b *testing.B) { benchFanout(b, 1, 100, "") }

// BenchmarkFanout10x10: ten senders, ten receivers, over loopback.
func BenchmarkFanout10x10(b *testing.B) { benchFanout(b, 10, 10, "") }

// BenchmarkFanoutStore: the fan-out benchmarks with the rooms kept in a
// store (relay.store.path), at each sync policy.
func BenchmarkFanoutStore(b *testing.B) {
	for _, sync := range []string{"1s", "off", "always"} {
		b.Run("1x100/sync="+sync, func(b *testing.B) { benchFanout(b, 1, 100, sync) })
		b.Run("10x10/sync="+sync, func(b *testing.B) { benchFanout(b, 10, 10, sync) })
	}
}

// benchFanout sends b.N messages of 64 bytes split among senders, each
// received by every receiver, and reports deliveries per second and the
// relay's allocations per delivery (the process's, less the test
// clients', which allocate nothing while reading).
func benchFanout(b *testing.B, senders, receivers int, policy string) {
	cfg := benchConfig()
	if policy != "" {
		cfg.Store = config.Store{Path: b.TempDir(), Sync: policy}
	}
	s := startServer(b, cfg)
	recv := make([]*tconn, receivers)
	for i := range recv {
		recv[i] = join(b, s, fmt.Sprintf("r%d", i))
	}
	send := make([]*tconn, senders)
	for i := range send {
		send[i] = join(b, s, fmt.Sprintf("s%d", i))
	}
	per := max(b.N/senders, 1)
	total := per * senders
	line := strings.Repeat("x", 60) + "\n"
	payload := []byte(strings.Repeat(line, per))
	want := int64(total) * int64(len("sN: ")+len(line))
	if senders > 1 {
		want = 0
		for i := range send {
			want += int64(per) * int64(len(fmt.Sprintf("s%d: ", i))+len(line))
		}
	}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	errs := make(chan error, receivers+senders)
	for _, r := range recv {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Count message bytes only: "sN: " lines; notices start with "---".
			buf := make([]byte, 64<<10)
			var got int64
			var partial []byte
			for got < want {
				r.c.SetReadDeadline(time.Now().Add(30 * time.Second))
				n, err := r.c.Read(buf)
				if err != nil {
					errs <- err
					return
				}
				data := buf[:n]
				if len(partial) > 0 {
					data = append(partial, data...)
					partial = partial[:0]
				}
				for len(data) > 0 {
					i := bytes.IndexByte(data, '\n')
					if i < 0 {
						partial = append(partial[:0], data...)
						break
					}
					if data[0] == 's' {
						got += int64(i + 1)
					}
					data = data[i+1:]
				}
			}
		}()
	}
	for _, sc := range send {
		// Senders are members too: they read what the others send.
		go func() {
			sc.c.SetReadDeadline(time.Now().Add(5 * time.Minute))
			io.Copy(io.Discard, sc.c)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc.c.SetWriteDeadline(time.Now().Add(60 * time.Second))
			if _, err := sc.c.Write(payload); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	deliveries := float64(total * receivers)
	b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/deliveries, "allocs/delivery")
	b.ReportMetric(float64(elapsed.Nanoseconds())/deliveries, "ns/delivery")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery") // the relay's and the clients'
	}
	if st := s.Stats(); len(st.Disconnects) > 0 {
		b.Fatalf("members were disconnected: %v", st.Disconnects)
	}
}

// BenchmarkPostCollect measures the fan-out path alone, without sockets:
// one message posted to a room of 100 members, and every member's writer
// collecting its batch. The allocation per message is the event itself;
// per delivery there is none.
func BenchmarkPostCollect(b *testing.B) { benchPostCollect(b, "") }

// BenchmarkPostCollectStore is BenchmarkPostCollect with the room kept in
// a store, at each sync policy.
func BenchmarkPostCollectStore(b *testing.B) {
	for _, sync := range []string{"1s", "off", "always"} {
		b.Run("sync="+sync, func(b *testing.B) { benchPostCollect(b, sync) })
	}
}

func benchPostCollect(b *testing.B, sync string) {
	const members = 100
	r, ms := benchRoom(b, members)
	if sync != "" {
		every, _ := config.ParseSync(sync)
		st, _, err := store.Open(store.Options{Dir: b.TempDir(), Sync: every, History: benchConfig().Limits.History})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		r.log = st.Log(r.name, r.epoch)
	}
	text := strings.Repeat("x", 60)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.post(&proto.Event{Kind: proto.KindMsg, From: "sender", Text: text}, 0, 1<<20)
		for _, m := range ms {
			d := m.drv.(*testDriver)
			d.bufs, _ = m.collect(&d.batch, d.bufs[:0])
			<-d.wakeC
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*members), "ns/delivery")
}

// BenchmarkCollect is the per-delivery half alone: 100 members' writers
// each collecting a batch of 64 events already posted (the posting is not
// timed). It allocates nothing: a delivery costs no allocation.
func BenchmarkCollect(b *testing.B) { benchCollect(b, nil) }

// BenchmarkCollectStamped is BenchmarkCollect with every member's time
// stamps on (/time on): the stamp is found once per event, or shared with
// the event before, and is a buffer of its own in the write; still no
// allocation per delivery.
func BenchmarkCollectStamped(b *testing.B) {
	benchCollect(b, func(m *member) { m.stamps.Store(true) })
}

// benchCollect is BenchmarkCollect with each member set up by setup
// (nil: a plain text-mode member).
func benchCollect(b *testing.B, setup func(*member)) {
	const members, batch = 100, batchMax
	r, ms := benchRoom(b, members)
	for _, m := range ms {
		if setup != nil {
			setup(m)
		}
	}
	text := strings.Repeat("x", 60)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for range batch {
			r.post(&proto.Event{Kind: proto.KindMsg, From: "sender", Text: text, Time: now()}, 0, 1<<20)
		}
		for _, m := range ms {
			<-m.drv.(*testDriver).wakeC
		}
		b.StartTimer()
		for _, m := range ms {
			d := m.drv.(*testDriver)
			d.bufs, _ = m.collect(&d.batch, d.bufs[:0])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*members*batch), "ns/delivery")
}

// benchRoom is a room of n members without connections or writers.
func benchRoom(b *testing.B, n int) (*room, []*member) {
	s := New(benchConfig(), b.Logf)
	r := newRoom("lobby", s.conf().Limits.History)
	ms := make([]*member, n)
	for i := range ms {
		m := s.newMember(nil, "test", newTestDriver())
		m.id, m.name = uint64(i+1), fmt.Sprintf("m%d", i)
		m.mu.Lock()
		r.add(m, nil, 0)
		m.room = r
		m.mu.Unlock()
		ms[i] = m
	}
	return r, ms
}
