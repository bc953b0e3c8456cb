package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSignalsUnderLoad runs the built relay while 2 members post as fast
// as the relay takes it and 3 read: two SIGHUPs (a new config, then a
// broken file) disconnect nobody; on SIGTERM every message posted before
// it (its sender had its echo back) reaches every reader, which reads to
// the end.
func TestSignalsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and runs roomrelay")
	}
	bin := tutBuild(t)
	port := tutFreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfgJSON := func(burst int) string {
		return fmt.Sprintf(`{"relay":{"listen":{"line":%q,"legacy":"","udp":"","irc":"","http":""},
			"limits":{"rate":0,"burst":%d,"history":4096,"queue":4096}}}`, addr, burst)
	}
	config := tutConfig(t, cfgJSON(50))
	relay := tutStart(t, "roomrelay relay", "", bin, "-config", config, "relay")
	tutWaitPort(t, relay, port)

	sk := &soak{t: t, addr: func(string) string { return addr }}
	type reader struct {
		cn  *conn
		got map[string]bool
		end chan struct{}
	}
	var readers []*reader
	for i := range 3 {
		cn, err := sk.dial("line")
		if err != nil {
			t.Fatal(err)
		}
		defer cn.c.Close()
		name := fmt.Sprint("reader", i)
		cn.send(name)
		if !cn.until(has("you are "+name), nil) {
			t.Fatalf("%s: no welcome", name)
		}
		r := &reader{cn: cn, got: map[string]bool{}, end: make(chan struct{})}
		go func() {
			defer close(r.end)
			cn.drain(func(l string) { r.got[l] = true })
		}()
		readers = append(readers, r)
	}

	// The senders, in JSON mode: an echo says the relay posted it.
	var mu sync.Mutex
	echoed := map[string]bool{}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for i := range 2 {
		cn, err := sk.dial("line")
		if err != nil {
			t.Fatal(err)
		}
		defer cn.c.Close()
		name := fmt.Sprint("sender", i)
		cn.send(fmt.Sprintf(`{"name":%q,"mode":"json","replay":0}`, name))
		if !cn.until(has("you are "+name), nil) {
			t.Fatalf("%s: no welcome", name)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			cn.drain(func(l string) {
				var e struct{ Type, From, Text string }
				if json.Unmarshal([]byte(l), &e) == nil && e.Type == "msg" && e.From == name {
					mu.Lock()
					echoed[name+": "+e.Text] = true
					mu.Unlock()
				}
			})
		}()
		go func() {
			defer wg.Done()
			for k := 0; k < 20000 && ctx.Err() == nil; k++ {
				if cn.send(fmt.Sprint("message ", k)) != nil {
					return
				}
				if k%10 == 9 {
					time.Sleep(time.Millisecond) // pacing: a burst of 10, then a breath
				}
			}
		}()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(echoed)
	}
	tutEventually(t, 30*time.Second, "500 messages posted", func() bool { return count() >= 500 })
	os.WriteFile(config, []byte(cfgJSON(60)), 0o644)
	relay.cmd.Process.Signal(syscall.SIGHUP)
	relay.waitErr(t, `info: config reloaded`)
	tutEventually(t, 30*time.Second, "1000 messages posted", func() bool { return count() >= 1000 })
	os.WriteFile(config, []byte(`{"relay":`), 0o644)
	relay.cmd.Process.Signal(syscall.SIGHUP)
	relay.waitErr(t, `error: reload: keeping the running config`)
	tutEventually(t, 30*time.Second, "1500 messages posted", func() bool { return count() >= 1500 })
	st := sk.stats()
	if len(st.Disconnects) != 0 {
		t.Errorf("disconnected across two SIGHUPs: %v", st.Disconnects)
	}

	mu.Lock()
	before := make([]string, 0, len(echoed))
	for m := range echoed {
		before = append(before, m)
	}
	relay.cmd.Process.Signal(syscall.SIGTERM)
	mu.Unlock()
	for i, r := range readers {
		select {
		case <-r.end:
		case <-time.After(30 * time.Second):
			t.Fatalf("reader%d: the relay did not close its connection after SIGTERM", i)
		}
		missing := 0
		for _, m := range before {
			if !r.got[m] {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("reader%d is missing %d of the %d messages posted before SIGTERM", i, missing, len(before))
		}
	}
	stop()
	wg.Wait()
	<-relay.done
	t.Logf("%d messages posted before SIGTERM, each read by all 3 readers; 0 disconnected by 2 SIGHUPs", len(before))
}

// TestFDExhaustion runs the built relay under `ulimit -n 48` (which it
// warns about) and opens 120 connections at once: accept fails for want
// of file descriptors, and the relay backs off rather than spinning (its
// CPU time, from the kernel's rusage of the process, stays small across
// a 3-second episode); once they close, a new member is served.
func TestFDExhaustion(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and runs roomrelay")
	}
	bin := tutBuild(t)
	port := tutFreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	config := tutConfig(t, fmt.Sprintf(`{"relay":{"listen":{"line":%q,"legacy":"","udp":"","irc":"","http":""},
		"limits":{"max_clients":200,"max_clients_per_ip":200}}}`, addr))
	relay := tutStart(t, "roomrelay relay", "", "sh", "-c", `ulimit -n 48 && exec "$0" "$@"`, bin, "-config", config, "relay")
	relay.waitErr(t, `warn: this process may open 48 files, fewer than the 282`)
	tutWaitPort(t, relay, port)

	var conns []net.Conn
	for range 120 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	relay.waitErr(t, `warn: line door: accept: .*too many open files; retrying in`)
	time.Sleep(3 * time.Second) // the episode: the relay out of descriptors, its backlog full
	for _, c := range conns {
		c.Close()
	}

	sk := &soak{t: t, addr: func(string) string { return addr }}
	tutEventually(t, 30*time.Second, "a new member to be served", func() bool {
		cn, err := sk.dial("line")
		if err != nil {
			return false
		}
		defer cn.c.Close()
		cn.send("after")
		return cn.until(has("you are after"), nil)
	})
	relay.cmd.Process.Signal(syscall.SIGTERM)
	<-relay.done
	ru, ok := relay.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Skip("no rusage on this system")
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	t.Logf("CPU time of the relay over its whole run, 3 s of it out of descriptors: %v (user %v, system %v)",
		cpu, time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()))
	if cpu > time.Second {
		t.Errorf("the relay used %v of CPU: it spins when out of descriptors", cpu)
	}
	if n := strings.Count(relay.stderr.String(), "accept:"); n > 100 {
		t.Errorf("%d accept warnings logged in the episode", n)
	}
}
