package relay

import (
	"os"
	"syscall"
)

// notify sends state to the datagram socket at path without waiting
// (a full queue is an error), with system calls: net's datagram dialling
// would add about 45 KB to the minimal build.
func notify(path, state string) error {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer syscall.Close(fd)
	err = syscall.Sendto(fd, []byte(state), syscall.MSG_DONTWAIT, &syscall.SockaddrUnix{Name: path})
	return os.NewSyscallError("sendto", err)
}
