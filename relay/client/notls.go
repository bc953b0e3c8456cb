//go:build notls

package client

import (
	"context"
	"fmt"
	"net"

	"roomrelay/relay/config"
)

// secure, in a build without TLS (-tags notls), refuses.
func secure(context.Context, net.Conn, config.ClientConfig) (net.Conn, error) {
	return nil, fmt.Errorf("%w: client: this roomrelay is built without TLS (-tags notls): client.tls and client.fingerprint need a full build", errFatal)
}
