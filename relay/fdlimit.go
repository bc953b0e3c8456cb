package relay

import (
	"roomrelay/internal/fmtlite"

	"roomrelay/relay/config"
)

// fdsNeeded is how many file descriptors the relay may hold at once with
// cfg: a connection for each client, a dial for each legacy member's
// delivery, the listeners, the poller, a segment open for each room when
// there is a store, and a margin for the log and the service manager.
func fdsNeeded(cfg *config.Config) uint64 {
	n := uint64(cfg.Limits.MaxClients) + uint64(cfg.Limits.MaxLegacyMembers) + 32
	if cfg.Store.Path != "" {
		n += uint64(cfg.Limits.MaxRooms)
	}
	return n
}

// fdWarning says what to do when the process may open only limit file
// descriptors, fewer than cfg needs; "" when limit is enough.
func fdWarning(limit uint64, cfg *config.Config) string {
	need := fdsNeeded(cfg)
	if limit >= need {
		return ""
	}
	return fmtlite.Sprintf("this process may open %d files, fewer than the %d that relay.limits.max_clients (%d) and max_legacy_members (%d) need: "+
		"past it new connections wait in the listen backlog; raise the limit (ulimit -n, or LimitNOFILE= in the systemd unit) or lower the limits",
		limit, need, cfg.Limits.MaxClients, cfg.Limits.MaxLegacyMembers)
}
