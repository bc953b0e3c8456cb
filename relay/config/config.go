// Package config is roomrelay's configuration file: one section per program
// (relay, client, peer, echo), read strictly (unknown and duplicate keys,
// kinds, ranges and trailing data are errors, each named by its key path)
// and filled with defaults. Every program imports it; it imports only
// package proto, so the endpoints (client, peer, echo) do not pull in the
// relay server.
package config

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"roomrelay/internal/errlite"
	"roomrelay/internal/fmtlite"
	"roomrelay/internal/sortlite"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"roomrelay/internal/jsonlite"
	"roomrelay/internal/listen"
	"roomrelay/internal/netaddr"
	"roomrelay/proto"
	"roomrelay/relay/secret"
)

// Logf is the log function every program takes; tests pass t.Logf.
type Logf func(format string, args ...any)

// File is the whole configuration file: one object per program.
type File struct {
	Relay  Config       `json:"relay"`
	Client ClientConfig `json:"client"`
	Peer   PeerConfig   `json:"peer"`
	Echo   EchoConfig   `json:"echo"`
}

// Config is the "relay" section: the relay's doors, limits and timeouts.
type Config struct {
	// Listen holds one address per door; "" turns that door off.
	Listen Listen `json:"listen"`
	// DefaultRoom is where members start. Default "lobby".
	DefaultRoom string `json:"default_room"`
	// UDPAllow lists the networks (CIDR) the UDP door takes datagrams
	// from, and the HTTP door's POST /api/post. Default: loopback and the
	// private LAN ranges.
	UDPAllow []string `json:"udp_allow"`
	// LegacyAllow lists the networks (CIDR) the legacy door takes
	// connections from; others are closed unread. The tutorial protocol
	// carries no secret, so this list is all that guards it. Default:
	// loopback and the private LAN ranges, as UDPAllow.
	LegacyAllow []string `json:"legacy_allow"`
	// Password is the hash (see `roomrelay passwd`) of the relay's
	// password: a member of the line, IRC and HTTP doors gives it before
	// its name. "": none. The legacy and UDP doors have no place for it
	// and are guarded by LegacyAllow and UDPAllow only. Default "".
	Password string `json:"password"`
	// AdminPassword is the hash of the admin password: a member that
	// gives it (/admin on the line door, OPER on the IRC door) may kick,
	// ban, and set rooms' topics and keys. "": no admin by password.
	// Default "".
	AdminPassword string `json:"admin_password"`
	// AdminLoopback makes every member that connects from a loopback
	// address an admin, without a password. Default false.
	AdminLoopback bool `json:"admin_loopback"`
	// Rooms holds the settings of rooms by name: a key, a topic, whether
	// /rooms lists it. A room not named here is open, without a topic,
	// and listed. Default: none.
	Rooms map[string]Room `json:"rooms"`
	// StatsAllow lists the networks (CIDR) the HTTP door answers GET
	// /api/stats for. Default: loopback.
	StatsAllow []string `json:"stats_allow"`
	// StatsInterval is how often the relay logs a one-line summary of its
	// counters (see the README's Counters). "0s": never. Default "1h".
	StatsInterval Duration `json:"stats_interval"`
	// LogLevel is the lowest level logged: "debug", "info", "warn" or
	// "error". Default "info".
	LogLevel string `json:"log_level"`
	// MemoryLimitMB is a soft limit on the relay's memory, in MiB, for the
	// Go runtime (runtime/debug.SetMemoryLimit): near it the garbage
	// collector works harder instead of letting the heap grow. 0: none.
	// Default 0.
	MemoryLimitMB int `json:"memory_limit_mb"`
	// GCPercent is how far the heap may grow past what is in use before
	// the garbage collector runs, in percent (runtime/debug.SetGCPercent,
	// Go's GOGC). Lower holds less memory for a little more CPU. Default 50.
	GCPercent int      `json:"gc_percent"`
	Limits    Limits   `json:"limits"`
	Timeouts  Timeouts `json:"timeouts"`
	Store     Store    `json:"store"`
	TLS       TLS      `json:"tls"`
}

// TLS is the certificate of the TLS doors (relay.listen.line_tls,
// irc_tls and https). It is read when the relay starts and again on a
// reload; it is not read at all while every TLS door is off. Load resolves
// a relative path against the directory of the configuration file.
type TLS struct {
	// Cert and Key are PEM files: the certificate (its chain after it,
	// if any) and its private key; they may be the same file. Defaults
	// "tls/cert.pem" and "tls/key.pem": a directory beside the
	// configuration file, which the relay's user may own without owning
	// the configuration.
	Cert string `json:"cert"`
	Key  string `json:"key"`
	// Generate has the relay make a self-signed ECDSA P-256 pair and keep
	// it at Cert and Key when neither file exists yet (when only one does,
	// that is an error: the relay does not overwrite half a pair).
	// Default true.
	Generate bool `json:"generate"`
}

// TLSDoors are the doors that speak TLS, as keys under relay.listen.
var TLSDoors = []string{"line_tls", "irc_tls", "https"}

// Room is one room's settings, under relay.rooms.NAME.
type Room struct {
	// Key is the hash (see `roomrelay passwd`) of the room's key: a
	// member enters the room only with the key (/join ROOM KEY). "": open.
	// The default room cannot have one: every member enters it first (use
	// relay.password). Default "".
	Key string `json:"key"`
	// Topic is shown to every member that enters the room. Default "".
	Topic string `json:"topic"`
	// Hidden leaves the room out of /rooms, IRC LIST and the counts of
	// rooms members see; it is hidden, not secret: a member who names it
	// still enters it (given its key). Default false.
	Hidden bool `json:"hidden"`
}

// MaxTopic is the longest topic, in bytes.
const MaxTopic = 300

// Store is where the relay keeps each room's history across restarts.
// It applies when the relay starts; a reload does not change it.
type Store struct {
	// Path is a directory for the rooms' logs, made if missing. "": none,
	// history is kept in memory only and lost on a restart. Default "".
	Path string `json:"path"`
	// Sync is when what is appended reaches the disk: "always" (before an
	// event is delivered to anyone), a duration such as "200ms" (in
	// batches: a crash or power cut loses at most that much), or "off"
	// (written at once, synced when the system decides: a crash of the
	// relay loses nothing, a power cut what the page cache held).
	// Default "1s".
	Sync string `json:"sync"`
}

// SyncAlways and SyncOff are what ParseSync returns for "always" and "off".
const (
	SyncAlways time.Duration = 0
	SyncOff    time.Duration = -1
)

// ParseSync reads relay.store.sync: SyncAlways, SyncOff, or the interval
// between syncs (more than 0).
func ParseSync(v string) (time.Duration, error) {
	switch v {
	case "always":
		return SyncAlways, nil
	case "off":
		return SyncOff, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmtlite.Errorf(`want "always", "off" or a duration such as "1s", not %q`, v)
	}
	return d, nil
}

// Listen holds the doors' listen addresses, host:port.
type Listen struct {
	// Line is the line-protocol door (nc, telnet, roomrelay client).
	// Default "127.0.0.1:7777".
	Line string `json:"line"`
	// Legacy is the tutorial chat-room door: one TCP connection per
	// message, members reached by dialling back. Default "127.0.0.1:7778".
	Legacy string `json:"legacy"`
	// UDP takes datagrams "from:name|text" into the default room.
	// Default "127.0.0.1:7779".
	UDP string `json:"udp"`
	// IRC is the IRC door: IRC clients (irssi, WeeChat, HexChat, phone
	// apps) join the same rooms as channels. Default "127.0.0.1:6667".
	IRC string `json:"irc"`
	// HTTP serves the browser page and the HTTP API (/api/join,
	// /api/events, /api/send, /api/post, /api/stats). Default
	// "127.0.0.1:8080".
	HTTP string `json:"http"`
	// LineTLS is the line door over TLS (openssl s_client, roomrelay
	// client -tls). Default "" (off).
	LineTLS string `json:"line_tls"`
	// IRCTLS is the IRC door over TLS. Default "" (off).
	IRCTLS string `json:"irc_tls"`
	// HTTPS is the HTTP door over TLS: the same page and API. Default ""
	// (off).
	HTTPS string `json:"https"`
}

// MinLine is the least Limits.MaxLineBytes: room for the longest name
// and a short message after it.
const MinLine = proto.MaxNameBytes + 32

// Limits bound every buffer and queue. Memory is a sum of these terms (see
// the README).
type Limits struct {
	// MaxLineBytes is the longest line a client may send, and the longest
	// text-mode line the relay writes. Default 1024, at least MinLine.
	MaxLineBytes int `json:"max_line_bytes"`
	// MaxClients is how many connections the relay serves at once. When
	// it is full, the line door refuses new ones and the legacy door stops
	// accepting for up to Timeouts.Message. Default 200.
	MaxClients int `json:"max_clients"`
	// MaxClientsPerIP is how many of them may come from one address; a
	// legacy-door connection over it waits for a slot, unread, for up to
	// Timeouts.Message. Default 20.
	MaxClientsPerIP int `json:"max_clients_per_ip"`
	// MaxRooms is how many rooms may exist, the default room included. Default 8.
	MaxRooms int `json:"max_rooms"`
	// History is how many events each room keeps for replay and resume.
	// Default 512.
	History int `json:"history"`
	// HistoryBytes bounds each room's history in bytes of text lines as
	// well as in events: past it the oldest events are dropped, so a room
	// of long lines holds no more than a room of short ones. The memory an
	// event holds is up to about 4 times its text line (see the README's
	// memory bound). 0: no bound but History. Default 524288 (History
	// events of 1 KB, the default Limits.MaxLineBytes).
	HistoryBytes int `json:"history_bytes"`
	// Queue is how many private events (notices, answers to commands,
	// private messages) may wait for a member; one more disconnects it as
	// too slow. What a /join carries over from the room left does not
	// count (it is paced as a replay: see ReplayBytesPerMinute). Room events
	// wait in the room's history, not here: a member is cut as too slow
	// for them only when its cursor is about to fall out of the history,
	// or when its socket has taken no byte for Timeouts.Write. At most
	// History. Default 256.
	Queue int `json:"queue"`
	// Replay is how many past events a member gets on entering a room,
	// unless it asks otherwise. 0: none. Default 20.
	Replay int `json:"replay"`
	// Rate is how many lines per second a member may send on average
	// (messages and commands alike); Burst how many at once. Past them
	// the relay paces the member: it reads nothing more from it until its
	// budget refills, so TCP slows the sender and nothing is lost. Rate 0
	// turns pacing off. Defaults 5 and 50 (a pasted screenful passes at
	// once, a longer paste at Rate).
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
	// FloodBytes is how much unread input (in the relay's read buffer and
	// the kernel's) a paced member may hold for Timeouts.Flood before it
	// is disconnected as flooding. Default 32768: a 500-line paste of
	// 80-column lines passes at the default Rate.
	FloodBytes int `json:"flood_bytes"`
	// ReplayBytesPerMinute bounds what a member's replays (on entering,
	// /join, /since, a resume) write to it, in bytes of text lines a
	// minute, a minute's worth at once: past it the relay reads nothing
	// more from the member until the budget refills. 0: no bound.
	// Default 262144.
	ReplayBytesPerMinute int `json:"replay_bytes_per_minute"`
	// SendBuffer is the size of each member's kernel send buffer
	// (SO_SNDBUF), in bytes, so that a member that reads slowly meets the
	// write deadline within a bounded time instead of the kernel
	// buffering for it without end. 0: the system's, which grows.
	// Default 32768.
	SendBuffer int `json:"send_buffer"`
	// MaxLegacyMembers caps the members registered through the legacy
	// door. Default 50.
	MaxLegacyMembers int `json:"max_legacy_members"`
	// MaxLegacyPerIP caps the legacy members registered from one address.
	// Default 8.
	MaxLegacyPerIP int `json:"max_legacy_per_ip"`
	// LegacyFailures is how many deliveries in a row may fail before a
	// legacy member is dropped as unreachable. A delivery fails when its
	// connection is refused for all of Timeouts.Retry, or cannot be made
	// or written within Timeouts.Dial and Timeouts.Write. Default 3.
	LegacyFailures int `json:"legacy_failures"`
}

// Timeouts bound every socket operation. Durations are strings such as
// "10s" or "5m".
type Timeouts struct {
	// Handshake is how long a new connection has to send a valid name.
	// Default "60s".
	Handshake Duration `json:"handshake"`
	// Idle is how long a member may send nothing before it is disconnected.
	// Default "12h": dead peers are found sooner by TCP keepalive.
	Idle Duration `json:"idle"`
	// Write bounds every write to a member. Default "10s".
	Write Duration `json:"write"`
	// Keepalive is the TCP keepalive period, and how long an IRC client
	// may be quiet before the relay pings it; "0s" turns both off.
	// Default "30s".
	Keepalive Duration `json:"keepalive"`
	// Shutdown is how long the relay flushes queues on exit. Default "5s".
	Shutdown Duration `json:"shutdown"`
	// Message is how long a legacy-door connection has to send its whole
	// message and close, and the longest it waits for a slot of its
	// address or for room in a full relay. Default "5s".
	Message Duration `json:"message"`
	// Dial bounds each connection the legacy door opens to a member, and
	// the writing of the message on it. Default "3s".
	Dial Duration `json:"dial"`
	// Retry is how long a refused legacy delivery is retried before it
	// counts as failed. Default "2s".
	Retry Duration `json:"retry"`
	// LegacyLapse is how long a legacy member stays registered without
	// taking a delivery or posting. Default "168h": a week, longer than a
	// family room is quiet; a client that went away from a room in use is
	// dropped sooner, after Limits.LegacyFailures failed deliveries.
	LegacyLapse Duration `json:"legacy_lapse"`
	// Flood is how long a paced member may hold more than
	// Limits.FloodBytes of unread input before it is disconnected as
	// flooding. Default "2m".
	Flood Duration `json:"flood"`
	// HTTPGrace is how long a browser member (the HTTP door's) stays
	// with no event stream open: its name stays reserved for its token
	// meanwhile, and its events wait in the room's history. Default "2m":
	// longer than a phone's screen lock, shorter than a forgotten tab.
	HTTPGrace Duration `json:"http_grace"`
}

// ClientConfig is the "client" section: what `roomrelay client` connects to.
type ClientConfig struct {
	// Server is the relay's line door. Default "127.0.0.1:7777".
	Server string `json:"server"`
	// Name to use; the -name flag overrides it. Required (here or by flag).
	Name string `json:"name"`
	// Room to enter; "" is the relay's default room.
	Room string `json:"room"`
	// Replay is how many past events to show on first connecting; nil
	// leaves it to the relay.
	Replay *int `json:"replay"`
	// Retry is the first wait before reconnecting; it doubles up to
	// RetryMax. Defaults "1s" and "30s".
	Retry    Duration `json:"retry"`
	RetryMax Duration `json:"retry_max"`
	// Timeout bounds dialling and every write. Default "10s".
	Timeout Duration `json:"timeout"`
	// ExitOnEOF ends the client when its input ends (after the relay has
	// taken every line). false keeps it listening. Default true.
	ExitOnEOF bool `json:"exit_on_eof"`
	// Mode is "line" (the relay's line door) or "tutorial": the tutorial
	// chat-room protocol, against a legacy door or messenger_server.py.
	// Default "line".
	Mode string `json:"mode"`
	// Password is the relay's password, in clear (a client has to send
	// it): keep a config file that holds one readable by you only. The
	// -password flag overrides it. "": none. Default "".
	Password string `json:"password"`
	// Key is the key of Room, in clear, like Password; -key overrides it.
	// Default "".
	Key string `json:"key"`
	// Listen is, in tutorial mode, the client's own endpoint, where the
	// server delivers messages. Default "127.0.0.1:8881".
	Listen string `json:"listen"`
	// TLS connects to a TLS door (relay.listen.line_tls). Without a
	// Fingerprint the relay's certificate must be signed by an authority
	// the system trusts, for the host of Server. Default false.
	TLS bool `json:"tls"`
	// Fingerprint pins the relay's certificate by its SHA-256
	// fingerprint, as the relay logs it ("sha256:AB:CD:..."; the colons,
	// the "sha256:" and the case are optional): that certificate and no
	// other is taken, whoever signed it. It implies TLS. Default "".
	Fingerprint string `json:"fingerprint"`
}

// ParseFingerprint reads a SHA-256 certificate fingerprint: 64 hex digits,
// in pairs separated by colons or not, in either case, after an optional
// "sha256:" (or openssl's "sha256 Fingerprint=").
func ParseFingerprint(v string) ([32]byte, error) {
	var fp [32]byte
	s := strings.TrimSpace(v)
	for _, p := range []string{"sha256:", "sha256 fingerprint="} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			s = s[len(p):]
			break
		}
	}
	s = strings.Join(strings.Split(s, ":"), "") // not strings.ReplaceAll: its Replace is 2.4 KB of a mipsle binary
	b, ok := fmtlite.Unhex(s)
	if !ok || len(b) != len(fp) {
		return fp, fmtlite.Errorf(`want a SHA-256 fingerprint such as "sha256:AB:CD:..." (32 bytes in hex), not %q`, v)
	}
	copy(fp[:], b)
	return fp, nil
}

// PeerConfig is the "peer" section: `roomrelay peer`, the tutorial's P2P
// messenger.
type PeerConfig struct {
	// Listen is this peer's endpoint. Default "127.0.0.1:8881".
	Listen string `json:"listen"`
	// Friend is the other peer's endpoint. Default "127.0.0.1:8882".
	Friend string `json:"friend"`
	// MaxMessageBytes is the largest message taken; the rest is cut.
	// Default 4096.
	MaxMessageBytes int `json:"max_message_bytes"`
	// MaxConns is how many incoming connections are read at once. Default 16.
	MaxConns int `json:"max_conns"`
	// Timeout bounds dialling, each write, and how long an incoming
	// message may take. Default "10s".
	Timeout Duration `json:"timeout"`
}

// EchoConfig is the "echo" section: `roomrelay echo`, the tutorials' TCP
// echo server for many clients at once.
type EchoConfig struct {
	// Listen is the echo server's address. Default "127.0.0.1:65432".
	Listen string `json:"listen"`
	// MaxClients is how many clients it serves at once. Default 64.
	MaxClients int `json:"max_clients"`
	// Idle is how long a client may send nothing. Default "60s".
	Idle Duration `json:"idle"`
	// Write bounds each echo. Default "10s".
	Write Duration `json:"write"`
}

// DefaultUDPAllow is the default of relay.udp_allow: loopback and the
// private LAN ranges.
var DefaultUDPAllow = []string{
	"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
	"fc00::/7", "fe80::/10",
}

// DefaultLegacyAllow is the default of relay.legacy_allow: loopback and
// the private LAN ranges, as relay.udp_allow.
var DefaultLegacyAllow = DefaultUDPAllow

// DefaultStatsAllow is the default of relay.stats_allow: loopback.
var DefaultStatsAllow = []string{"127.0.0.0/8", "::1/128"}

// LogLevels are the values of relay.log_level, lowest first.
var LogLevels = [...]string{"debug", "info", "warn", "error"}

// Duration is a time.Duration written as a string such as "10s" in JSON
// (Parse reads it; MarshalJSON writes it).
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

// Default returns the configuration used for every key a file leaves out.
func Default() File {
	return File{
		Relay: Config{
			Listen:        Listen{Line: "127.0.0.1:7777", Legacy: "127.0.0.1:7778", UDP: "127.0.0.1:7779", IRC: "127.0.0.1:6667", HTTP: "127.0.0.1:8080"},
			DefaultRoom:   "lobby",
			UDPAllow:      slices.Clone(DefaultUDPAllow),
			LegacyAllow:   slices.Clone(DefaultLegacyAllow),
			Rooms:         map[string]Room{},
			StatsAllow:    slices.Clone(DefaultStatsAllow),
			StatsInterval: Duration(time.Hour),
			LogLevel:      "info",
			GCPercent:     50,
			Limits: Limits{
				MaxLineBytes: 1024, MaxClients: 200, MaxClientsPerIP: 20, MaxRooms: 8,
				History: 512, Queue: 256, Replay: 20, Rate: 5, Burst: 50,
				HistoryBytes: 512 << 10, FloodBytes: 32 << 10, ReplayBytesPerMinute: 256 << 10, SendBuffer: 32 << 10,
				MaxLegacyMembers: 50, MaxLegacyPerIP: 8, LegacyFailures: 3,
			},
			Timeouts: Timeouts{
				Handshake: Duration(60 * time.Second), Idle: Duration(12 * time.Hour),
				Write: Duration(10 * time.Second), Keepalive: Duration(30 * time.Second),
				Shutdown: Duration(5 * time.Second), Message: Duration(5 * time.Second),
				Dial: Duration(3 * time.Second), Retry: Duration(2 * time.Second),
				LegacyLapse: Duration(7 * 24 * time.Hour), HTTPGrace: Duration(2 * time.Minute),
				Flood: Duration(2 * time.Minute),
			},
			Store: Store{Sync: "1s"},
			TLS:   TLS{Cert: "tls/cert.pem", Key: "tls/key.pem", Generate: true},
		},
		Client: ClientConfig{
			Server: "127.0.0.1:7777", Retry: Duration(time.Second), RetryMax: Duration(30 * time.Second),
			Timeout: Duration(10 * time.Second), ExitOnEOF: true, Mode: "line", Listen: "127.0.0.1:8881",
		},
		Peer: PeerConfig{
			Listen: "127.0.0.1:8881", Friend: "127.0.0.1:8882", MaxMessageBytes: 4096, MaxConns: 16,
			Timeout: Duration(10 * time.Second),
		},
		Echo: EchoConfig{
			Listen: "127.0.0.1:65432", MaxClients: 64, Idle: Duration(60 * time.Second),
			Write: Duration(10 * time.Second),
		},
	}
}

// Load reads and validates a configuration file. A file that cannot be
// read gives an error wrapping the os error (errors.Is(err,
// fs.ErrNotExist) for a missing one); an invalid file gives every problem
// at once, joined, each naming its key.
func Load(path string) (*File, error) { return load(path, false) }

// Check is Load for `roomrelay check`: it also reports, by key, every
// listen address this machine cannot bind now: a host that is neither an
// IP address nor localhost (names are not looked up), or an IP address
// that is none of this machine's. The relay itself starts with such an
// address and retries it (an interface may come up late), so only Check
// calls them errors.
func Check(path string) (*File, error) { return load(path, true) }

func load(path string, hosts bool) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmtlite.Errorf("read config: %w", err)
	}
	f, err := parse(b, hosts)
	if err != nil {
		return nil, fmtlite.Errorf("config %s:\n%w", path, err)
	}
	// The certificate lives beside the file that names it, wherever the
	// relay is started from.
	dir := filepath.Dir(path)
	for _, p := range []*string{&f.Relay.TLS.Cert, &f.Relay.TLS.Key} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return f, nil
}

// bom is the UTF-8 byte-order mark some editors put at the start of a
// file; it is no content, and is skipped.
var bom = []byte("\ufeff")

// Parse decodes a configuration strictly over the defaults and validates
// it. The error joins every problem, one per key.
func Parse(b []byte) (*File, error) { return parse(b, false) }

func parse(b []byte, hosts bool) (*File, error) {
	b = bytes.TrimPrefix(b, bom)
	raw, end, dups, err := jsonlite.Parse(b)
	if err != nil {
		return nil, fmtlite.Errorf("not valid JSON: %w", syntaxWhere(b, err))
	}
	if rest := bytes.TrimLeft(b[end:], " \t\r\n"); len(rest) > 0 {
		return nil, fmtlite.Errorf("not valid JSON: %s: more data after the top-level object", where(b, len(b)-len(rest)))
	}
	var errs []error
	for _, k := range dups {
		errs = append(errs, fmtlite.Errorf("%s: duplicate key", k))
	}
	f := Default()
	decode(raw, &f, "", &errs)
	// Defaults that would not fit a smaller history shrink with it.
	l := &f.Relay.Limits
	if !hasKey(raw, "relay", "limits", "queue") {
		l.Queue = min(l.Queue, l.History)
	}
	if !hasKey(raw, "relay", "limits", "replay") {
		l.Replay = min(l.Replay, l.History)
	}
	// Range problems too, but none about a key whose kind was wrong.
	bad := map[string]bool{}
	for _, e := range errs {
		key, _, _ := strings.Cut(e.Error(), ": ")
		bad[key] = true
	}
	more := f.Validate()
	if hosts {
		more = errors.Join(more, f.checkHosts())
	}
	if merr, ok := more.(interface{ Unwrap() []error }); ok {
		for _, e := range flatten(merr.Unwrap()) {
			if key, _, _ := strings.Cut(e.Error(), ": "); !bad[key] {
				errs = append(errs, e)
				bad[key] = true // one problem a key is enough
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &f, nil
}

// flatten spreads joined errors into one list.
func flatten(errs []error) []error {
	var out []error
	for _, e := range errs {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			out = append(out, flatten(j.Unwrap())...)
		} else {
			out = append(out, e)
		}
	}
	return out
}

// hasKey reports whether the decoded JSON has the key path.
func hasKey(v any, path ...string) bool {
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = obj[k]; !ok {
			return false
		}
	}
	return true
}

// syntaxWhere says where in b a decoding error is, by line and column.
func syntaxWhere(b []byte, err error) error {
	se, isSyntax := errlite.As[*jsonlite.SyntaxError](err)
	switch {
	case isSyntax:
		// Offset counts the bad byte too.
		return fmtlite.Errorf("%s: %w", where(b, int(se.Offset)-1), err)
	case err == io.EOF:
		return errors.New("the file is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmtlite.Errorf("%s: the file ends inside the top-level object (cut short?)", where(b, len(b)))
	}
	return err
}

// where gives the position of byte off of b as "line L column C", both
// from 1, the column in characters.
func where(b []byte, off int) string {
	off = min(max(off, 0), len(b))
	start := bytes.LastIndexByte(b[:off], '\n') + 1
	return fmtlite.Sprintf("line %d column %d", 1+bytes.Count(b[:off], []byte{'\n'}), 1+utf8.RuneCount(b[start:off]))
}

// A field is a key of an object in the file and the field of the Go
// value that takes it: ptr is a *string, *bool, *int, **int, *float64,
// *[]string, *Duration, *map[string]Room or an object.
type field struct {
	key string
	ptr any
}

// An object is a section of the file: its keys, as its fields' json tags
// name them (TestFields checks that the two agree).
type object interface{ fields() []field }

func (f *File) fields() []field {
	return []field{{"relay", &f.Relay}, {"client", &f.Client}, {"peer", &f.Peer}, {"echo", &f.Echo}}
}

func (c *Config) fields() []field {
	return []field{
		{"listen", &c.Listen}, {"default_room", &c.DefaultRoom}, {"udp_allow", &c.UDPAllow},
		{"legacy_allow", &c.LegacyAllow}, {"password", &c.Password}, {"admin_password", &c.AdminPassword},
		{"admin_loopback", &c.AdminLoopback}, {"rooms", &c.Rooms}, {"stats_allow", &c.StatsAllow},
		{"stats_interval", &c.StatsInterval}, {"log_level", &c.LogLevel}, {"memory_limit_mb", &c.MemoryLimitMB},
		{"gc_percent", &c.GCPercent}, {"limits", &c.Limits}, {"timeouts", &c.Timeouts}, {"store", &c.Store},
		{"tls", &c.TLS},
	}
}

func (t *TLS) fields() []field {
	return []field{{"cert", &t.Cert}, {"key", &t.Key}, {"generate", &t.Generate}}
}

func (r *Room) fields() []field {
	return []field{{"key", &r.Key}, {"topic", &r.Topic}, {"hidden", &r.Hidden}}
}

func (s *Store) fields() []field { return []field{{"path", &s.Path}, {"sync", &s.Sync}} }

func (l *Listen) fields() []field {
	return []field{
		{"line", &l.Line}, {"legacy", &l.Legacy}, {"udp", &l.UDP}, {"irc", &l.IRC}, {"http", &l.HTTP},
		{"line_tls", &l.LineTLS}, {"irc_tls", &l.IRCTLS}, {"https", &l.HTTPS},
	}
}

func (l *Limits) fields() []field {
	return []field{
		{"max_line_bytes", &l.MaxLineBytes}, {"max_clients", &l.MaxClients}, {"max_clients_per_ip", &l.MaxClientsPerIP},
		{"max_rooms", &l.MaxRooms}, {"history", &l.History}, {"history_bytes", &l.HistoryBytes}, {"queue", &l.Queue},
		{"replay", &l.Replay}, {"rate", &l.Rate}, {"burst", &l.Burst}, {"flood_bytes", &l.FloodBytes},
		{"replay_bytes_per_minute", &l.ReplayBytesPerMinute}, {"send_buffer", &l.SendBuffer},
		{"max_legacy_members", &l.MaxLegacyMembers}, {"max_legacy_per_ip", &l.MaxLegacyPerIP},
		{"legacy_failures", &l.LegacyFailures},
	}
}

func (t *Timeouts) fields() []field {
	return []field{
		{"handshake", &t.Handshake}, {"idle", &t.Idle}, {"write", &t.Write}, {"keepalive", &t.Keepalive},
		{"shutdown", &t.Shutdown}, {"message", &t.Message}, {"dial", &t.Dial}, {"retry", &t.Retry},
		{"legacy_lapse", &t.LegacyLapse}, {"flood", &t.Flood}, {"http_grace", &t.HTTPGrace},
	}
}

func (c *ClientConfig) fields() []field {
	return []field{
		{"server", &c.Server}, {"name", &c.Name}, {"room", &c.Room}, {"replay", &c.Replay}, {"retry", &c.Retry},
		{"retry_max", &c.RetryMax}, {"timeout", &c.Timeout}, {"exit_on_eof", &c.ExitOnEOF}, {"mode", &c.Mode},
		{"password", &c.Password}, {"key", &c.Key}, {"listen", &c.Listen}, {"tls", &c.TLS},
		{"fingerprint", &c.Fingerprint},
	}
}

func (p *PeerConfig) fields() []field {
	return []field{
		{"listen", &p.Listen}, {"friend", &p.Friend}, {"max_message_bytes", &p.MaxMessageBytes},
		{"max_conns", &p.MaxConns}, {"timeout", &p.Timeout},
	}
}

func (e *EchoConfig) fields() []field {
	return []field{{"listen", &e.Listen}, {"max_clients", &e.MaxClients}, {"idle", &e.Idle}, {"write", &e.Write}}
}

// decode stores the decoded JSON v in the field dst points to, walking
// objects key by key, and reports by key path every unknown key and every
// value of the wrong kind, so one pass names all of them. A value of the
// wrong kind leaves its field as it was.
func decode(v any, dst any, path string, errs *[]error) {
	bad := func(format string, args ...any) { badValue(errs, path, format, args...) }
	switch dst := dst.(type) {
	case *Duration:
		s, ok := v.(string)
		if !ok {
			bad(`want a duration string such as "10s", got %s`, jsonKind(v))
		} else if d, err := time.ParseDuration(s); err != nil {
			bad(`want a duration such as "10s", not %q`, s)
		} else if d < 0 {
			bad("must not be negative")
		} else {
			*dst = Duration(d)
		}
	case object:
		obj, ok := v.(map[string]any)
		if !ok {
			bad("want an object, got %s", jsonKind(v))
			return
		}
		fields := dst.fields()
		for _, k := range sortlite.Keys(obj) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			i := slices.IndexFunc(fields, func(f field) bool { return f.key == k })
			if i < 0 {
				*errs = append(*errs, fmtlite.Errorf("%s: unknown key", p))
				continue
			}
			decode(obj[k], fields[i].ptr, p, errs)
		}
	case *map[string]Room:
		if v == nil {
			*dst = nil // null: none
			return
		}
		obj, ok := v.(map[string]any)
		if !ok {
			bad("want an object, got %s", jsonKind(v))
			return
		}
		if *dst == nil {
			*dst = make(map[string]Room, len(obj))
		}
		for _, k := range sortlite.Keys(obj) {
			var r Room
			decode(obj[k], &r, path+"."+k, errs)
			(*dst)[k] = r
		}
	case *[]string:
		arr, ok := v.([]any)
		if !ok {
			bad("want an array, got %s", jsonKind(v))
			return
		}
		s := make([]string, len(arr))
		for i, e := range arr {
			decode(e, &s[i], fmtlite.Sprintf("%s[%d]", path, i), errs)
		}
		*dst = s
	case *string:
		if s, ok := v.(string); ok {
			*dst = s
		} else {
			bad("want a string, got %s", jsonKind(v))
		}
	case *bool:
		if b, ok := v.(bool); ok {
			*dst = b
		} else {
			bad("want true or false, got %s", jsonKind(v))
		}
	case **int:
		if v == nil {
			*dst = nil
			return
		}
		*dst = new(int)
		decode(v, *dst, path, errs)
	case *int:
		n, ok := v.(jsonlite.Number)
		if !ok {
			bad("want a whole number, got %s", jsonKind(v))
		} else if i, err := strconv.Atoi(string(n)); err != nil {
			bad("want a whole number, not %s", n)
		} else {
			*dst = i
		}
	case *float64:
		n, ok := v.(jsonlite.Number)
		if !ok {
			bad("want a number, got %s", jsonKind(v))
		} else if x, err := n.Float64(); err == nil {
			*dst = x
		}
	default:
		panic("config: a field of a type decode does not know, at " + path)
	}
}

// badValue reports a value of the wrong kind at path. (Not inlined:
// decode calls it from many places.)
//
//go:noinline
func badValue(errs *[]error, path, format string, args ...any) {
	if path == "" {
		path = "(top level)"
	}
	*errs = append(*errs, fmtlite.Errorf("%s: %s", path, fmtlite.Sprintf(format, args...)))
}

func jsonKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(v)
	case jsonlite.Number:
		return "the number " + v.String()
	case bool:
		return strconv.FormatBool(v)
	case []any:
		return "an array"
	default:
		return "an object"
	}
}

// CheckAddr reports whether v is host:port with a port from 0 to 65535.
func CheckAddr(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmtlite.Errorf("want host:port, not %q", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmtlite.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// Door returns the address of the door called name in l, the value of the
// key relay.listen.NAME, or nil when there is no such door.
func (l *Listen) Door(name string) *string {
	for _, f := range l.fields() {
		if f.key == name {
			return f.ptr.(*string)
		}
	}
	return nil
}

// DoorNames lists the doors, as keys under relay.listen.
func DoorNames() []string {
	var names []string
	for _, f := range (&Listen{}).fields() {
		names = append(names, f.key)
	}
	return names
}

// checkHosts reports every listen address this machine cannot bind now,
// naming its key (see Check). It binds port 0 of each IP address, which
// leaves the configured ports alone: a running relay does not fail it.
func (f *File) checkHosts() error {
	var errs []error
	host := func(key, v string) {
		h, _, err := net.SplitHostPort(v)
		if err != nil || h == "" || h == "localhost" {
			return // "" is every address; a bad form is Validate's
		}
		ip, zone, ok := netaddr.ParseAddr(h)
		if !ok {
			errs = append(errs, fmtlite.Errorf("%s: %q is not an IP address or localhost: give the address to listen on (names are not looked up)", key, h))
			return
		}
		if ip.IsUnspecified() && zone == "" {
			return
		}
		ln, err := listen.TCP(net.JoinHostPort(h, "0"), -1)
		if err == nil {
			ln.Close()
			return
		}
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			errs = append(errs, fmtlite.Errorf("%s: %s is not an address of this machine (its interface may not be up yet; the relay would wait for it)", key, h))
		} else {
			errs = append(errs, fmtlite.Errorf("%s: cannot listen on %s: %w", key, h, err))
		}
	}
	for _, name := range DoorNames() {
		if addr := *f.Relay.Listen.Door(name); addr != "" {
			host("relay.listen."+name, addr)
		}
	}
	if f.Client.Mode == "tutorial" {
		host("client.listen", f.Client.Listen)
	}
	host("peer.listen", f.Peer.Listen)
	host("echo.listen", f.Echo.Listen)
	return errors.Join(errs...)
}

// Validate reports every out-of-range value, naming its key.
// problems collects what Validate finds, each as "key: what is wrong".
// Its checks are methods, called from many places, and not inlined: each
// call stays a call (Validate is the largest function of the minimal
// binary as it is).
type problems []error

//go:noinline
func (p *problems) bad(key, format string, args ...any) {
	*p = append(*p, fmtlite.Errorf("%s: %s", key, fmtlite.Sprintf(format, args...)))
}

// addr checks a host:port, which may be empty if optional.
//
//go:noinline
func (p *problems) addr(key, v string, optional bool) {
	if v == "" {
		if !optional {
			p.bad(key, "must be set (host:port)")
		}
		return
	}
	if err := CheckAddr(v); err != nil {
		p.bad(key, "%v", err)
	}
}

//go:noinline
func (p *problems) between(key string, v, lo, hi int) {
	if v < lo || v > hi {
		p.bad(key, "must be from %d to %d, not %d", lo, hi, v)
	}
}

//go:noinline
func (p *problems) positive(key string, d Duration) {
	if d <= 0 {
		p.bad(key, "must be more than 0s")
	}
}

// nets checks a list of networks.
func (p *problems) nets(key string, list []string) {
	for i, n := range list {
		if _, ok := netaddr.ParsePrefix(n); !ok {
			p.bad(fmtlite.Sprintf("%s[%d]", key, i), "want a network such as \"192.168.0.0/16\", not %q", n)
		}
	}
}

// hash checks a password hash, which may be empty.
func (p *problems) hash(key, v string) {
	if v != "" && secret.Check(v) != nil {
		p.bad(key, "not a hash; make one with `roomrelay passwd`")
	}
}

func (f *File) Validate() error {
	var found problems
	bad, addr, between, positive := found.bad, found.addr, found.between, found.positive
	r := &f.Relay
	addr("relay.listen.line", r.Listen.Line, true)
	addr("relay.listen.legacy", r.Listen.Legacy, true)
	addr("relay.listen.udp", r.Listen.UDP, true)
	addr("relay.listen.irc", r.Listen.IRC, true)
	addr("relay.listen.http", r.Listen.HTTP, true)
	var tlsOn []string
	for _, name := range TLSDoors {
		if v := *r.Listen.Door(name); v != "" {
			addr("relay.listen."+name, v, true)
			tlsOn = append(tlsOn, "relay.listen."+name)
		}
	}
	if len(tlsOn) > 0 {
		if r.TLS.Cert == "" {
			bad("relay.tls.cert", "must be set for the TLS doors on (%s)", strings.Join(tlsOn, ", "))
		}
		if r.TLS.Key == "" {
			bad("relay.tls.key", "must be set for the TLS doors on (%s)", strings.Join(tlsOn, ", "))
		}
	}
	found.ports(&r.Listen)
	if r.Listen == (Listen{}) {
		bad("relay.listen", "every door is off; set at least one of %s", strings.Join(DoorNames(), ", "))
	}
	nets, hash := found.nets, found.hash
	nets("relay.udp_allow", r.UDPAllow)
	nets("relay.stats_allow", r.StatsAllow)
	nets("relay.legacy_allow", r.LegacyAllow)
	hash("relay.password", r.Password)
	hash("relay.admin_password", r.AdminPassword)
	folded := map[string]string{}
	names := make([]string, 0, len(r.Rooms))
	for name := range r.Rooms {
		names = append(names, name)
	}
	sortlite.Strings(names)
	for _, name := range names {
		rm, key := r.Rooms[name], "relay.rooms."+name
		if err := proto.CheckRoom(name); err != nil {
			bad(key, "%v", err)
			continue
		}
		if other, ok := folded[proto.Fold(name)]; ok {
			bad(key, "the same room as relay.rooms.%s", other)
		}
		folded[proto.Fold(name)] = name
		hash(key+".key", rm.Key)
		if rm.Key != "" && proto.Fold(name) == proto.Fold(r.DefaultRoom) {
			bad(key+".key", "the default room cannot have a key: every member enters it first (use relay.password)")
		}
		if len(rm.Topic) > MaxTopic || proto.Clean([]byte(rm.Topic)) != rm.Topic {
			bad(key+".topic", "want at most %d bytes of text without control characters", MaxTopic)
		}
	}
	if !slices.Contains(LogLevels[:], r.LogLevel) {
		bad("relay.log_level", `want "debug", "info", "warn" or "error", not %q`, r.LogLevel)
	}
	between("relay.memory_limit_mb", r.MemoryLimitMB, 0, 1<<20)
	between("relay.gc_percent", r.GCPercent, 10, 1000)
	if err := proto.CheckRoom(r.DefaultRoom); err != nil {
		bad("relay.default_room", "%v", err)
	}
	l := &r.Limits
	between("relay.limits.max_line_bytes", l.MaxLineBytes, MinLine, 65536)
	between("relay.limits.max_clients", l.MaxClients, 1, 100000)
	between("relay.limits.max_clients_per_ip", l.MaxClientsPerIP, 1, 100000)
	between("relay.limits.max_rooms", l.MaxRooms, 1, 10000)
	between("relay.limits.history", l.History, 1, 1<<20)
	if l.HistoryBytes != 0 && (l.HistoryBytes < l.MaxLineBytes || l.HistoryBytes > 1<<30) {
		bad("relay.limits.history_bytes", "must be 0 (no bound) or from relay.limits.max_line_bytes (%d) to %d, not %d", l.MaxLineBytes, 1<<30, l.HistoryBytes)
	}
	between("relay.limits.queue", l.Queue, 1, max(l.History, 1))
	between("relay.limits.replay", l.Replay, 0, max(l.History, 0))
	between("relay.limits.burst", l.Burst, 1, 1<<20)
	between("relay.limits.flood_bytes", l.FloodBytes, 1024, 1<<26)
	between("relay.limits.replay_bytes_per_minute", l.ReplayBytesPerMinute, 0, 1<<30)
	if l.SendBuffer != 0 && (l.SendBuffer < 2048 || l.SendBuffer > 1<<26) {
		bad("relay.limits.send_buffer", "must be 0 (the system's) or from 2048 to %d, not %d", 1<<26, l.SendBuffer)
	}
	between("relay.limits.max_legacy_members", l.MaxLegacyMembers, 0, 100000)
	between("relay.limits.max_legacy_per_ip", l.MaxLegacyPerIP, 1, 100000)
	between("relay.limits.legacy_failures", l.LegacyFailures, 1, 1000)
	switch {
	case l.Rate < 0:
		bad("relay.limits.rate", "must not be negative (0 turns the limit off)")
	case l.Rate > 1e6:
		bad("relay.limits.rate", "at most 1000000 messages a second, not %g", l.Rate)
	}
	if r.StatsInterval < 0 {
		bad("relay.stats_interval", `must not be negative ("0s" turns the summary off)`)
	}
	tm := &r.Timeouts
	positive("relay.timeouts.handshake", tm.Handshake)
	positive("relay.timeouts.idle", tm.Idle)
	positive("relay.timeouts.write", tm.Write)
	positive("relay.timeouts.shutdown", tm.Shutdown)
	positive("relay.timeouts.message", tm.Message)
	positive("relay.timeouts.dial", tm.Dial)
	positive("relay.timeouts.legacy_lapse", tm.LegacyLapse)
	positive("relay.timeouts.http_grace", tm.HTTPGrace)
	positive("relay.timeouts.flood", tm.Flood)
	if tm.Retry < 0 {
		bad("relay.timeouts.retry", "must not be negative")
	}
	if tm.Keepalive < 0 {
		bad("relay.timeouts.keepalive", "must not be negative")
	}
	if _, err := ParseSync(r.Store.Sync); err != nil {
		bad("relay.store.sync", "%v", err)
	}
	c := &f.Client
	addr("client.server", c.Server, false)
	if c.Name != "" {
		if err := proto.CheckName(c.Name); err != nil {
			bad("client.name", "%v", err)
		}
	}
	if c.Room != "" {
		if err := proto.CheckRoom(c.Room); err != nil {
			bad("client.room", "%v", err)
		}
	}
	if c.Replay != nil && *c.Replay < 0 {
		bad("client.replay", "must not be negative")
	}
	positive("client.retry", c.Retry)
	positive("client.timeout", c.Timeout)
	if c.RetryMax < c.Retry {
		bad("client.retry_max", "must be at least client.retry (%s)", c.Retry.D())
	}
	if c.Fingerprint != "" {
		if _, err := ParseFingerprint(c.Fingerprint); err != nil {
			bad("client.fingerprint", "%v", err)
		}
	}
	switch c.Mode {
	case "line":
	case "tutorial":
		addr("client.listen", c.Listen, false)
		if c.TLS || c.Fingerprint != "" {
			bad("client.tls", "the tutorial protocol has no TLS: set client.mode to \"line\" for a TLS door")
		}
	default:
		bad("client.mode", `want "line" or "tutorial", not %q`, c.Mode)
	}
	p := &f.Peer
	addr("peer.listen", p.Listen, false)
	addr("peer.friend", p.Friend, false)
	between("peer.max_message_bytes", p.MaxMessageBytes, 1, 1<<20)
	between("peer.max_conns", p.MaxConns, 1, 10000)
	positive("peer.timeout", p.Timeout)
	e := &f.Echo
	addr("echo.listen", e.Listen, false)
	between("echo.max_clients", e.MaxClients, 1, 100000)
	positive("echo.idle", e.Idle)
	positive("echo.write", e.Write)
	return errors.Join(found...)
}
