//go:build !linux

package relay

import (
	"net"
	"syscall"
)

// inq cannot tell the unread input of a socket on this system: a paced
// member is judged by time alone (see member.paced).
func inq(syscall.RawConn) (int, bool) { return 0, false }

func connInq(net.Conn) (int, bool) { return 0, false }
