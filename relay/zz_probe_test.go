//go:build linux && !noepoll

package relay

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"
)

func memClasses() map[string]uint64 {
	var ss []metrics.Sample
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, "/memory/classes/") || strings.HasPrefix(d.Name, "/gc/cycles/total") || strings.HasPrefix(d.Name, "/gc/heap/allocs:") {
			ss = append(ss, metrics.Sample{Name: d.Name})
		}
	}
	metrics.Read(ss)
	m := map[string]uint64{}
	for _, s := range ss {
		m[s.Name] = s.Value.Uint64()
	}
	return m
}

func rssOf() string {
	b, _ := os.ReadFile("/proc/self/status")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "RssAnon") || strings.HasPrefix(l, "RssFile") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, " ")
}

func TestZZProbe(t *testing.T) {
	const members = 1000
	cfg := testConfig()
	cfg.Limits.History = 2048
	cfg.Limits.HistoryBytes = 262144
	cfg.Limits.Queue = 256
	cfg.Limits.MaxClients = 1024
	cfg.Limits.MaxClientsPerIP = 1024
	cfg.Limits.Replay = 0
	if os.Getenv("QUIET") != "" {
		cfg.LogLevel = "warn"
	}
	s := startServer(t, cfg)
	addr := s.Addr("line").(*net.TCPAddr)
	sa := &syscall.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	time.Sleep(time.Second)
	if os.Getenv("PREGC") != "" {
		mA := memClasses()
		runtime.GC()
		runtime.GC()
		mB := memClasses()
		t.Logf("pre-GC metadata/other %d -> %d", mA["/memory/classes/metadata/other:bytes"], mB["/memory/classes/metadata/other:bytes"])
	}
	m0 := memClasses()
	r0 := rssOf()
	fds := make([]int, 0, members)
	for k := range members {
		fd, _ := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		fds = append(fds, fd)
		if err := syscall.Connect(fd, sa); err != nil {
			t.Fatal(err)
		}
		syscall.Write(fd, fmt.Appendf(nil, "i%d\n", k))
	}
	waitFor(t, 30*time.Second, "join", func() bool {
		r, err := s.room(cfg.DefaultRoom)
		return err == nil && r.size() == members
	})
	time.Sleep(3 * time.Second)
	m1 := memClasses()
	t.Logf("rss before %s after %s", r0, rssOf())
	for k, v := range m1 {
		if v != m0[k] {
			t.Logf("%-50s %10d -> %10d  (%+d)", k, m0[k], v, int64(v)-int64(m0[k]))
		}
	}
	if f := os.Getenv("HEAPPROF"); f != "" {
		runtime.GC()
		w, _ := os.Create(f)
		pprof.WriteHeapProfile(w)
		w.Close()
	}
	for _, fd := range fds {
		syscall.Close(fd)
	}
}
