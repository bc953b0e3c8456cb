//go:build linux && !noepoll

package relay

import (
	"fmt"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkIdleMembers measures what an idle member holds: b.N rounds of
// 500 members that join and then send nothing, reporting the relay's heap
// and goroutine stacks per member after a collection, and its goroutines
// per member. The clients are bare sockets (a file descriptor each, no Go
// objects), so what is counted is the relay's.
func BenchmarkIdleMembers(b *testing.B) {
	const members = 500
	cfg := benchConfig()
	s := startServer(b, cfg)
	addr := s.Addr("line").(*net.TCPAddr)
	sa := &syscall.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	var heap, stack, goroutines float64
	for i := range b.N {
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		g0 := runtime.NumGoroutine()
		fds := make([]int, 0, members)
		for k := range members {
			fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			fds = append(fds, fd)
			if err := syscall.Connect(fd, sa); err != nil {
				b.Fatal(err)
			}
			if _, err := syscall.Write(fd, fmt.Appendf(nil, "i%d-%d\n", i, k)); err != nil {
				b.Fatal(err)
			}
		}
		waitFor(b, 30*time.Second, "the members to join", func() bool {
			r, err := s.room(cfg.DefaultRoom)
			return err == nil && r.size() == members
		})
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		heap += float64(ms1.HeapAlloc) - float64(ms0.HeapAlloc)
		stack += float64(ms1.StackInuse) - float64(ms0.StackInuse)
		goroutines += float64(runtime.NumGoroutine() - g0)
		for _, fd := range fds {
			syscall.Close(fd)
		}
		waitFor(b, 30*time.Second, "the members to leave", func() bool {
			r, _ := s.room(cfg.DefaultRoom)
			return r.size() == 0
		})
	}
	n := float64(b.N * members)
	b.ReportMetric(heap/n, "heap-B/member")
	b.ReportMetric(stack/n, "stack-B/member")
	b.ReportMetric(goroutines/n, "goroutines/member")
}

// TestSysIOAllocatesNothing: the loop's reads and writes cost no
// allocation, so that delivering a message costs none.
func TestSysIOAllocatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ra, _ := a.(*net.TCPConn).SyscallConn()
	rb, _ := b.(*net.TCPConn).SyscallConn()
	io := newSysIO()
	bufs := net.Buffers{[]byte("alice: "), []byte("hi\n")}
	buf := make([]byte, 64)
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := io.writev(ra, bufs); n != 10 || err != nil {
			t.Fatalf("writev: %d, %v", n, err)
		}
		for got := 0; got < 10; {
			n, err := io.read(rb, buf)
			if err != nil && err != errWouldBlock {
				t.Fatalf("read: %v", err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per write and read", allocs)
	}
}
