package relay

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// TestNotifyAbstract: NOTIFY_SOCKET may name an abstract socket (@name),
// as systemd's often does.
func TestNotifyAbstract(t *testing.T) {
	name := fmt.Sprintf("@roomrelay-notify-test-%d", os.Getpid())
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	t.Setenv("NOTIFY_SOCKET", name)
	if err := Notify("STOPPING=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := pc.Read(buf)
	if err != nil || string(buf[:n]) != "STOPPING=1" {
		t.Errorf("got %q, %v", buf[:n], err)
	}
}
