//go:build !linux

package relay

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// Without epoll, every member of the line door has goroutines of its own
// (see member.writeLoop and Server.readLoop); the loop is not used.

type poller struct{}

type pollEvent struct {
	fd      int32
	in, out bool
}

type ioScratch struct{}

var errNoPoller = errors.New("no poller on this system")

var errWouldBlock = errors.New("would block")

func newPoller() (*poller, error)                    { return nil, errNoPoller }
func (p *poller) add(syscall.RawConn) (int32, error) { return 0, errNoPoller }
func (p *poller) del(syscall.RawConn)                {}
func (p *poller) interrupt()                         {}
func (p *poller) close()                             {}
func readNB(syscall.RawConn, []byte) (int, error)    { return 0, errNoPoller }
func writevNB(syscall.RawConn, *ioScratch, net.Buffers) (int, error) {
	return 0, errNoPoller
}

func (p *poller) wait(_ []pollRaw, evs []pollEvent) ([]pollEvent, error) {
	return evs, errNoPoller
}

func (p *poller) setDeadline(time.Time) {}

type pollRaw struct{}
