// Package echo is `roomrelay echo`: the tutorials' TCP echo server
// (echo-server.py, and chat_server.py, which is one too), serving many
// clients at once. Each client's bytes come back to it unchanged, chunk by
// chunk, as they arrive; there is no message format. echo-client.py works
// against it unmodified.
//
// Unlike the tutorial's server, which serves one client and exits, it
// serves up to MaxClients at once (a further one is closed at once), each
// through a fixed 1024-byte buffer, with an idle deadline on every read
// and a write deadline on every echo, so a client that stops reading is
// cut off instead of blocking. It logs each client as echo-server.py does:
//
//	Connected by ('127.0.0.1', 54321)
package echo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"roomrelay/relay/config"
	"sync"
	"sync/atomic"
	"time"

	"roomrelay/proto"
)

// BufferSize is the size of each client's buffer, and so the largest chunk
// echoed at once (the tutorial's recv(1024)).
const BufferSize = 1024

// Server is a running echo server. Create it with New, bind it with Start,
// stop it with Shutdown.
type Server struct {
	cfg  config.EchoConfig // set once
	logf config.Logf       // set once

	// closing is set once by Shutdown, under mu, before it cuts the
	// clients' reads short; a client re-checks it after each read deadline
	// it sets, so that none outlives the cut.
	closing atomic.Bool

	mu       sync.Mutex
	ln       net.Listener          // guarded by mu; nil until Start
	conns    map[net.Conn]struct{} // guarded by mu: every client being served
	refused  int                   // guarded by mu: refusals not yet logged
	lastLog  time.Time             // guarded by mu: when a refusal was last logged
	finished chan struct{}         // closed under mu when closing and the last client ends

	wg sync.WaitGroup // the accept loop and the clients
}

// New returns an echo server for cfg, which must have passed validation.
// Nothing listens until Start.
func New(cfg config.EchoConfig, logf config.Logf) *Server {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Server{cfg: cfg, logf: logf, conns: map[net.Conn]struct{}{}, finished: make(chan struct{})}
}

// Start binds cfg.Listen and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return errors.New("echo: shut down")
	}
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go s.accept(ln)
	return nil
}

// Addr returns the bound address, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, then go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logf("echo: accept: %v; retrying in %v", err, backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.admit(c) {
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.serve(c)
	}
}

// admit records a new client, or refuses it when the server is full or
// closing. Refusals are logged at most once a second, with a count.
func (s *Server) admit(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing.Load() && len(s.conns) < s.cfg.MaxClients {
		s.conns[c] = struct{}{}
		return true
	}
	s.refused++
	if t := time.Now(); t.Sub(s.lastLog) >= time.Second {
		s.logf("echo: refused %d client(s), the last %s: %d clients already", s.refused, c.RemoteAddr(), s.cfg.MaxClients)
		s.refused, s.lastLog = 0, t
	}
	return false
}

// serve echoes one client until it closes, idles, fails or the server
// shuts down, and logs which.
func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	from := proto.AppendLegacyAddr(nil, addrPort(c.RemoteAddr()))
	s.logf("Connected by %s", from)
	var buf [BufferSize]byte
	var why string
	for {
		c.SetReadDeadline(time.Now().Add(s.cfg.Idle.D()))
		if s.closing.Load() {
			c.SetReadDeadline(time.Unix(1, 0))
		}
		n, err := c.Read(buf[:])
		if n > 0 {
			c.SetWriteDeadline(time.Now().Add(s.cfg.Write.D()))
			if _, werr := c.Write(buf[:n]); werr != nil {
				why = "write: " + werr.Error()
				if errors.Is(werr, os.ErrDeadlineExceeded) {
					why = fmt.Sprintf("not reading its echo (write took over %v)", s.cfg.Write.D())
				}
				break
			}
		}
		if err != nil {
			switch {
			case err == io.EOF:
				why = "closed by the client"
			case s.closing.Load():
				why = "server shutting down"
			case errors.Is(err, os.ErrDeadlineExceeded):
				why = fmt.Sprintf("idle for %v", s.cfg.Idle.D())
			default:
				why = "read: " + err.Error()
			}
			break
		}
	}
	c.Close()
	s.logf("echo: %s gone: %s", from, why)
	s.mu.Lock()
	delete(s.conns, c)
	if s.closing.Load() && len(s.conns) == 0 {
		s.closeFinished()
	}
	s.mu.Unlock()
}

// closeFinished closes s.finished once; s.mu is held.
func (s *Server) closeFinished() {
	select {
	case <-s.finished:
	default:
		close(s.finished)
	}
}

// Shutdown stops accepting and ends every client: a read in progress is
// cut at once, an echo in progress gets until its write deadline. It waits
// for every client to end or ctx to expire, when it closes what is left
// and returns ctx's error. It may be called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.SetReadDeadline(time.Unix(1, 0))
	}
	if len(s.conns) == 0 {
		s.closeFinished()
	}
	s.mu.Unlock()

	var err error
	select {
	case <-s.finished:
	case <-ctx.Done():
		err = ctx.Err()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	}
	s.wg.Wait()
	return err
}

// Run is `roomrelay echo`: it serves cfg.Listen until ctx ends, then shuts
// down, giving echoes in progress up to cfg.Write to finish.
func Run(ctx context.Context, cfg config.EchoConfig, logf config.Logf) error {
	s := New(cfg, logf)
	if err := s.Start(); err != nil {
		return err
	}
	s.logf("echo: listening on %s", s.Addr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Write.D()+time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		s.logf("echo: shutdown: %v", err)
	}
	return nil
}

// addrPort returns a connection address as a netip.AddrPort.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
