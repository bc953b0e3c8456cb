//go:build !minimal

package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPorts: two TCP doors cannot listen on one port where their hosts
// overlap; the UDP door may share a TCP door's port, port 0 is a fresh
// port each time, and other hosts do not clash.
func TestPorts(t *testing.T) {
	for _, tc := range []struct {
		name, listen string
		want         []string // nil: valid
	}{
		{"same address", `"line":"127.0.0.1:7000","legacy":"127.0.0.1:7000"`, []string{
			"relay.listen.legacy: 127.0.0.1:7000 takes relay.listen.line's port too (127.0.0.1:7000)"}},
		{"line and irc", `"line":"127.0.0.1:18560","irc":"127.0.0.1:18560"`, []string{
			"relay.listen.irc: 127.0.0.1:18560 takes relay.listen.line's port too (127.0.0.1:18560)"}},
		{"every IPv4 address", `"irc":"127.0.0.1:18560","http":"0.0.0.0:18560"`, []string{
			"relay.listen.http: 0.0.0.0:18560 takes relay.listen.irc's port too (127.0.0.1:18560)"}},
		{"every address", `"line":":7000","irc":"[::1]:7000","line_tls":"[::]:7000","irc_tls":"192.168.1.2:7000"`, []string{
			"relay.listen.irc: [::1]:7000 takes relay.listen.line's port too (:7000)",
			"relay.listen.line_tls: [::]:7000 takes relay.listen.line's port too (:7000)",
			"relay.listen.irc_tls: 192.168.1.2:7000 takes relay.listen.line's port too (:7000)"}},
		{"each named once", `"line":"127.0.0.1:7000","legacy":"127.0.0.1:7000","irc":"127.0.0.1:7000"`, []string{
			"relay.listen.legacy: 127.0.0.1:7000 takes relay.listen.line's port too (127.0.0.1:7000)",
			"relay.listen.irc: 127.0.0.1:7000 takes relay.listen.line's port too (127.0.0.1:7000)"}},
		{"udp beside a TCP door", `"line":"127.0.0.1:7000","udp":"127.0.0.1:7000","https":"0.0.0.0:7779"`, nil},
		{"other hosts", `"line":"127.0.0.1:7000","legacy":"127.0.0.2:7000","irc":"[::1]:7000"`, nil},
		{"port 0", `"line":"127.0.0.1:0","legacy":"127.0.0.1:0","irc":"0.0.0.0:0"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(`{"relay":{"listen":{` + tc.listen + `},"tls":{"cert":"c","key":"k"}}}`))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
