//go:build unix

package relay

import "syscall"

// fdLimit returns how many file descriptors this process may open (Go
// raises the soft limit to the hard one as it starts), or 0 when that is
// unknown.
func fdLimit() uint64 {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	return uint64(rl.Cur)
}
