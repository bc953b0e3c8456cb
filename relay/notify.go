package relay

import "os"

// Notify tells the service manager about the relay's state (systemd's
// sd_notify protocol: "READY=1", "RELOADING=1", "STOPPING=1") when
// NOTIFY_SOCKET is set, and does nothing otherwise.
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	return notify(path, state) // a path starting with @ is an abstract socket
}
