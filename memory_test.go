package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestMemory500 runs the built relay with the shipped limits but
// max_clients and max_clients_per_ip 600, and 500 line members in one
// room: 5 posters posting maximum-length lines at their allowed rate
// (their burst at once, then relay.limits.rate a second) for
// ROOMRELAY_MEMORY (a duration; the test is skipped without it), 445
// readers, and 50 members that never read. Every member that reads gets
// every message, in order; the 50 are cut as too slow; the relay's peak
// RSS (VmHWM) stays within the README's memory bound for that config.
// Then, the room quiet and its history full, one member sends "/since 0"
// and another "/who" as fast as the relay takes them for a minute: the
// bytes written to each per byte it sent (the amplification of commands
// under the member's budgets).
func TestMemory500(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("ROOMRELAY_MEMORY"))
	if err != nil {
		t.Skip("set ROOMRELAY_MEMORY=DURATION (60s: the figures in RELIABILITY.md)")
	}
	if d > 100*time.Second {
		t.Fatalf("ROOMRELAY_MEMORY=%v: at most 100s (the posters write at their rate, but keep it bounded)", d)
	}
	const posters, readers, frozen = 5, 445, 50
	const members = posters + readers + frozen
	raiseNoFile(t, 2*members+100)

	// The shipped limits, but room for 500 members from one address.
	const maxClients, line, rate, burst = 600, 1024, 5, 50
	const history, historyBytes, maxRooms = 512, 512 << 10, 8
	bin := tutBuild(t)
	port := tutFreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	config := tutConfig(t, fmt.Sprintf(`{"relay":{"listen":{"line":%q,"legacy":"","udp":"","irc":"","http":""},
		"limits":{"max_clients":%d,"max_clients_per_ip":%d}}}`, addr, maxClients, maxClients))
	relay := tutStart(t, "roomrelay relay", "", bin, "-config", config, "relay")
	tutWaitPort(t, relay, port)
	pid := relay.cmd.Process.Pid
	sk := &soak{t: t, addr: func(string) string { return addr }}
	rest := procKB(pid, "VmRSS")

	dial := func(name string) net.Conn {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, name+"\n"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// A member that reads: it waits for its welcome, then counts the
	// posters' messages, each poster's in order, until it has n of each
	// (but its own).
	perPoster := burst + int(rate*d.Seconds())
	type reader struct {
		name string
		c    net.Conn
		r    *bufio.Reader
		got  int
	}
	var all []*reader
	for k := range posters + readers {
		name := fmt.Sprint("r", k)
		if k < posters {
			name = fmt.Sprint("p", k)
		}
		c := dial(name)
		rd := &reader{name: name, c: c, r: bufio.NewReaderSize(c, 4096)}
		for {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			l, err := rd.r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: no welcome: %v", name, err)
			}
			if strings.Contains(l, "you are "+name) {
				break
			}
		}
		all = append(all, rd)
	}
	var never []net.Conn
	for k := range frozen {
		never = append(never, dial(fmt.Sprint("f", k)))
	}
	tutEventually(t, 30*time.Second, "500 members", func() bool { return sk.stats().Doors["line"] == members })
	joined := procKB(pid, "VmRSS")

	// RSS sampled while messages flow, and when the never-readers are cut.
	start := time.Now()
	var peakRSS atomic.Int64
	var firstCut, lastCut atomic.Int64 // since start, when the first and the last never-reader were cut
	sampleDone := make(chan struct{})
	ctx, stopSampling := context.WithCancel(context.Background())
	go func() {
		defer close(sampleDone)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if kb := int64(procKB(pid, "VmRSS")); kb > peakRSS.Load() {
					peakRSS.Store(kb)
				}
				if lastCut.Load() == 0 {
					cut, at := sk.stats().Disconnects["too slow"], int64(time.Since(start))
					if cut > 0 && firstCut.Load() == 0 {
						firstCut.Store(at)
					}
					if cut >= frozen {
						lastCut.Store(at)
					}
				}
			}
		}
	}()

	errs := make(chan error, len(all)+posters)
	var wg sync.WaitGroup
	for k, rd := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := make([]int, posters)
			want := posters * perPoster
			if k < posters {
				next[k] = perPoster // its own are not echoed in text mode
				want -= perPoster
			}
			for rd.got < want {
				rd.c.SetReadDeadline(time.Now().Add(30 * time.Second))
				l, err := rd.r.ReadString('\n')
				if err != nil {
					errs <- fmt.Errorf("%s after %d messages: %v", rd.name, rd.got, err)
					return
				}
				var p, i, m int
				if _, err := fmt.Sscanf(l, "p%d: %d %d", &p, &m, &i); err != nil {
					if strings.HasPrefix(l, "!!!") {
						errs <- fmt.Errorf("%s told %q", rd.name, strings.TrimSpace(l))
						return
					}
					continue // a join or a notice
				}
				if p != m || p >= posters || i != next[p] {
					errs <- fmt.Errorf("%s: %.40q…, want message %d of p%d", rd.name, l, next[p%posters], p)
					return
				}
				next[p]++
				rd.got++
			}
		}()
	}
	// The posters: their burst at once, then their rate, as a polite
	// client would; each line a maximum-length one.
	pad := strings.Repeat("x", line-40)
	var pw sync.WaitGroup
	for k := range posters {
		pw.Add(1)
		go func() {
			defer pw.Done()
			c := all[k].c
			var b strings.Builder
			for i := range burst {
				fmt.Fprintf(&b, "%d %d %s\n", k, i, pad)
			}
			c.SetWriteDeadline(time.Now().Add(2 * d))
			if _, err := io.WriteString(c, b.String()); err != nil {
				errs <- fmt.Errorf("p%d: %v", k, err)
				return
			}
			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			for i := burst; i < perPoster; i++ {
				<-tick.C
				if _, err := fmt.Fprintf(c, "%d %d %s\n", k, i, pad); err != nil {
					errs <- fmt.Errorf("p%d: %v", k, err)
					return
				}
			}
		}()
	}
	pw.Wait()
	wg.Wait()
	took := time.Since(start)
	// A short run may end before the never-readers' sockets have taken
	// nothing for timeouts.write.
	tutEventually(t, 30*time.Second, "the never-readers to be cut", func() bool { return lastCut.Load() != 0 })
	stopSampling()
	<-sampleDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	hwm := procKB(pid, "VmHWM")
	st := sk.stats()

	// The 50 that never read: what they were written, read only now, ends
	// with why they were cut (when their socket had room for it).
	why := map[string]int{}
	least, most := 1<<62, 0 // bytes written to one of them
	var wmu sync.Mutex
	var fw sync.WaitGroup
	for _, c := range never {
		fw.Add(1)
		go func() {
			defer fw.Done()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			b, err := io.ReadAll(c)
			reason := "not told (its socket was full)"
			if i := strings.LastIndex(string(b), "!!! "); i >= 0 {
				reason = strings.TrimSpace(string(b[i:]))
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				reason = "not cut"
			}
			wmu.Lock()
			why[reason]++
			least, most = min(least, len(b)), max(most, len(b))
			wmu.Unlock()
		}()
	}
	fw.Wait()

	// The README's memory bound for this config, the terms in the
	// relay's own memory (the kernel's socket buffers are not in its RSS).
	roomTerm := min(history*(4*line+500), 4*historyBytes+history*500)
	memberTerm := maxClients * (max(16<<10, line+2) + 4<<10)
	bound := maxRooms*roomTerm + memberTerm + 150<<10
	mb := func(b int) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }
	t.Logf("%d members (%d posters, %d readers, %d never reading), %d messages of %d bytes in %v",
		members, posters, readers, frozen, posters*perPoster, line-1, took.Round(time.Second))
	t.Logf("relay RSS: %s at rest, %s with %d members joined, peak sampled %s, VmHWM %s",
		mb(rest<<10), mb(joined<<10), members, mb(int(peakRSS.Load())<<10), mb(hwm<<10))
	t.Logf("README bound for this config: %d rooms × %s of history + %d × %.0f KB for members + secrets = %s, plus the runtime at rest (%s): %s (one room: %s)",
		maxRooms, mb(roomTerm), maxClients, float64(memberTerm/maxClients)/1024, mb(bound), mb(rest<<10), mb(bound+rest<<10), mb(roomTerm+memberTerm+150<<10+rest<<10))
	t.Logf("disconnects %v; the never-readers cut from %v to %v after the first post, each written %d to %d bytes before (read only afterwards): %v",
		st.Disconnects, time.Duration(firstCut.Load()).Round(250*time.Millisecond), time.Duration(lastCut.Load()).Round(250*time.Millisecond), least, most, why)
	if hwm<<10 > bound+rest<<10 {
		t.Errorf("peak RSS %s, over the README's bound %s", mb(hwm<<10), mb(bound+rest<<10))
	}
	if st.Disconnects["too slow"] != frozen || len(st.Disconnects) != 1 {
		t.Errorf("disconnects %v, want the %d never-readers too slow and nobody else", st.Disconnects, frozen)
	}

	// Amplification, the room quiet and its history full: two members at
	// once, each on its own budgets; the replays over three minutes, as
	// their budget allows a minute's worth at once.
	var aw sync.WaitGroup
	aw.Add(2)
	go func() {
		defer aw.Done()
		amplify(t, addr, "amps", "/since 0", 3*time.Minute, func(l string) bool { return strings.HasPrefix(l, "--- earlier in lobby") })
	}()
	go func() {
		defer aw.Done()
		amplify(t, addr, "ampw", "/who", time.Minute, func(l string) bool {
			_, names, ok := strings.Cut(strings.TrimSpace(l), "--- in lobby: ")
			return ok && slices.Contains(strings.Split(names, ", "), "p0")
		})
	}()
	aw.Wait()
	relay.cmd.Process.Signal(syscall.SIGTERM)
	<-relay.done
}

// amplify has a new member send cmd as fast as the relay takes it (the
// relay paces it) for d, counting its answers by first(line), and logs
// the bytes written to it per byte of the commands taken, and a minute.
// It runs in a goroutine of its own, so it fails the test without
// stopping it.
func amplify(t *testing.T, addr, name, cmd string, d time.Duration, first func(string) bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	// Its welcome and the replay on joining are not counted: they come
	// before the pong.
	fmt.Fprintf(c, "%s\n/ping ready\n", name)
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := r.ReadString('\n')
		if err != nil {
			t.Errorf("%s: no welcome: %v", name, err)
			return
		}
		if strings.HasPrefix(l, "--- pong ready") {
			break
		}
	}
	go func() {
		c.SetWriteDeadline(time.Now().Add(d + 10*time.Second))
		io.WriteString(c, strings.Repeat(cmd+"\n", 2000))
	}()
	start := time.Now()
	var out, answers int
	var each []string // when each answer began, and the bytes out before it
	c.SetReadDeadline(start.Add(d))
	for {
		l, err := r.ReadString('\n')
		out += len(l)
		if err != nil {
			break
		}
		if first(l) {
			answers++
			each = append(each, fmt.Sprintf("%v: %d KB", time.Since(start).Round(100*time.Millisecond), out>>10))
		}
	}
	if len(each) <= 10 {
		t.Logf("%q: answers began at %v", cmd, strings.Join(each, ", "))
	}
	in := answers * (len(cmd) + 1)
	t.Logf("%q for %v: %d answered (%d bytes in), %d bytes out: %.0f×, %.1f KB out a minute",
		cmd, d, answers, in, out, float64(out)/float64(max(in, 1)), float64(out)/1024/d.Minutes())
	if answers == 0 {
		t.Errorf("%q: no answer in %v", cmd, d)
	}
}

// procKB reads a field of /proc/PID/status in kB.
func procKB(pid int, field string) int {
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb
		}
	}
	return 0
}

// raiseNoFile raises this process's soft limit on open files to at
// least n, as far as the hard limit allows.
func raiseNoFile(t *testing.T, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("open files: hard limit %d, fewer than the %d this test needs", lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}
