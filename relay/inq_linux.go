package relay

import (
	"net"
	"syscall"
	"unsafe"
)

// inq returns how many bytes of input the socket of raw holds unread
// (SIOCINQ, which Linux spells TIOCINQ for every file), and whether it
// could tell.
func inq(raw syscall.RawConn) (int, bool) {
	var n int32
	var errno syscall.Errno
	err := raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	})
	if err != nil || errno != 0 {
		return 0, false
	}
	return int(n), true
}

// connInq is inq for a connection, when it is a socket (or a layer
// over one: TLS, whose records count as they came).
func connInq(c net.Conn) (int, bool) {
	sc, ok := netConn(c).(syscall.Conn)
	if !ok {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	return inq(raw)
}
