//go:build !linux || noepoll

package relay

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// Without epoll, every member of the line door has goroutines of its own
// (a connDriver: see drive_conn.go); the loop is not used.

type poller struct{}

type pollEvent struct {
	fd      int32
	in, out bool
}

type sysIO struct{}

var errNoPoller = errors.New("no poller on this system")

var errWouldBlock = errors.New("would block")

func newPoller() (*poller, error)                    { return nil, errNoPoller }
func (p *poller) add(syscall.RawConn) (int32, error) { return 0, errNoPoller }
func (p *poller) del(syscall.RawConn)                {}
func (p *poller) close()                             {}

func newSysIO() *sysIO                                          { return &sysIO{} }
func (*sysIO) read(syscall.RawConn, []byte) (int, error)        { return 0, errNoPoller }
func (*sysIO) writev(syscall.RawConn, net.Buffers) (int, error) { return 0, errNoPoller }

func (p *poller) wait(evs []pollEvent) ([]pollEvent, error) {
	return evs, errNoPoller
}

func (p *poller) setDeadline(time.Time) {}
