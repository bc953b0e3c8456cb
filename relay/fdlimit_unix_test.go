//go:build unix

package relay

import (
	"syscall"
	"testing"
)

// TestFDLimitRaised: the soft limit on file descriptors is the hard one
// (the Go runtime raises it as the program starts), so fdWarning is
// about the limit the relay can reach.
func TestFDLimitRaised(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skip(err)
	}
	if rl.Cur != rl.Max || fdLimit() != rl.Max {
		t.Errorf("soft limit %d, fdLimit %d, hard limit %d", rl.Cur, fdLimit(), rl.Max)
	}
}
