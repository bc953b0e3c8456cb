package relay

import (
	"net"
	"os"
	"time"
)

// Notify tells the service manager about the relay's state (systemd's
// sd_notify protocol: "READY=1", "RELOADING=1", "STOPPING=1") when
// NOTIFY_SOCKET is set, and does nothing otherwise.
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' { // an abstract socket
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	_, err = c.Write([]byte(state))
	return err
}
