package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"roomrelay/relay"
	"roomrelay/relay/config"
)

// TestStatsSubcommand: `roomrelay stats` asks the relay at the config's
// relay.listen.line and prints its counters as one line of JSON; a relay
// that does not show them to this address, or no relay, is an error.
func TestStatsSubcommand(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow []string
		code  int
	}{
		{"allowed", []string{"127.0.0.0/8"}, 0},
		{"not in stats_allow", []string{"10.0.0.0/8"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default().Relay
			cfg.Listen = config.Listen{Line: "127.0.0.1:0"}
			cfg.StatsAllow = tc.allow
			srv := relay.New(cfg, t.Logf)
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
			}()
			path := tutConfig(t, fmt.Sprintf(`{"relay":{"listen":{"line":%q}}}`, srv.Addr("line")))
			code, stdout, stderr := runArgs("-config", path, "stats")
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr)
			}
			if tc.code != 0 {
				if !strings.Contains(stderr, "relay.stats_allow only") {
					t.Errorf("stderr %q", stderr)
				}
				return
			}
			var st relay.Stats
			if err := json.Unmarshal([]byte(stdout), &st); err != nil || !strings.HasSuffix(stdout, "}\n") {
				t.Fatalf("stdout %q: %v", stdout, err)
			}
			if st.Accepted != 1 || st.Goroutines == 0 {
				t.Errorf("stats %+v: want the one connection it made", st)
			}
		})
	}
	path := tutConfig(t, fmt.Sprintf(`{"relay":{"listen":{"line":"127.0.0.1:%d"}}}`, tutFreePort(t)))
	if code, _, stderr := runArgs("-config", path, "stats"); code != 1 || !strings.Contains(stderr, "connection refused") {
		t.Errorf("no relay: exit %d, stderr %q", code, stderr)
	}
}
