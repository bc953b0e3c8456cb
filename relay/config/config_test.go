package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"roomrelay/relay/secret"
)

// The shipped config.json spells out exactly the defaults.
func TestShippedConfigIsDefault(t *testing.T) {
	path := filepath.Join("..", "..", "config.json")
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	// Load puts the certificate beside the file.
	want.Relay.TLS.Cert = filepath.Join(filepath.Dir(path), want.Relay.TLS.Cert)
	want.Relay.TLS.Key = filepath.Join(filepath.Dir(path), want.Relay.TLS.Key)
	if diff := cmp.Diff(want, *f); diff != "" {
		t.Errorf("config.json differs from Default() (-default +file):\n%s", diff)
	}
}

func TestParseEmptyGivesDefaults(t *testing.T) {
	f, err := Parse([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Default(), *f); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	f, err = Parse([]byte(`{"relay":{"limits":{"replay":0},"timeouts":{"idle":"90m"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Relay.Limits.Replay != 0 || f.Relay.Timeouts.Idle.D().Minutes() != 90 || f.Relay.Limits.Queue != 256 {
		t.Errorf("explicit values not kept over defaults: %+v", f.Relay)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       []string
	}{
		{"unknown keys", `{"relay":{"limits":{"colour":1},"listen":{"xmpp":""}},"x":{}}`, []string{
			"relay.limits.colour: unknown key", "relay.listen.xmpp: unknown key", "x: unknown key"}},
		{"kinds", `{"relay":{"limits":{"queue":"10","rate":true,"history":1.5},"timeouts":{"write":10,"idle":"soon"},"udp_allow":"lan"},"client":{"exit_on_eof":"yes"}}`, []string{
			`client.exit_on_eof: want true or false, got "yes"`,
			`relay.limits.history: want a whole number, not 1.5`,
			`relay.limits.queue: want a whole number, got "10"`,
			`relay.limits.rate: want a number, got true`,
			`relay.timeouts.idle: want a duration such as "10s", not "soon"`,
			`relay.timeouts.write: want a duration string such as "10s", got the number 10`,
			`relay.udp_allow: want an array, got "lan"`,
		}},
		{"ranges", `{"relay":{"listen":{"line":"nowhere","legacy":"","udp":"x:99999"},"default_room":"a room","udp_allow":["10.0.0.0/33"],
			"gc_percent":5,"limits":{"queue":600,"max_line_bytes":10,"rate":-1,"max_legacy_per_ip":0},"timeouts":{"write":"0s","legacy_lapse":"0s"},"store":{"sync":"sometimes"}},"client":{"mode":"carrier-pigeon","retry_max":"1ms"}}`, []string{
			`relay.listen.line: want host:port, not "nowhere"`,
			`relay.listen.udp: port "99999" is not a number from 0 to 65535`,
			`relay.udp_allow[0]: want a network such as "192.168.0.0/16", not "10.0.0.0/33"`,
			"relay.gc_percent: must be from 10 to 1000, not 5",
			`relay.default_room: invalid name: room names have no spaces`,
			`relay.limits.max_line_bytes: must be from 128 to 65536, not 10`,
			`relay.limits.queue: must be from 1 to 512, not 600`,
			`relay.limits.max_legacy_per_ip: must be from 1 to 100000, not 0`,
			`relay.limits.rate: must not be negative (0 turns the limit off)`,
			`relay.timeouts.write: must be more than 0s`,
			`relay.timeouts.legacy_lapse: must be more than 0s`,
			`relay.store.sync: want "always", "off" or a duration such as "1s", not "sometimes"`,
			`client.retry_max: must be at least client.retry (1s)`,
			`client.mode: want "line" or "tutorial", not "carrier-pigeon"`,
		}},
		{"flow control", `{"relay":{"limits":{"history_bytes":100,"flood_bytes":10,"replay_bytes_per_minute":-1,"send_buffer":100},"timeouts":{"flood":"0s"}}}`, []string{
			"relay.limits.history_bytes: must be 0 (no bound) or from relay.limits.max_line_bytes (1024) to 1073741824, not 100",
			"relay.limits.flood_bytes: must be from 1024 to 67108864, not 10",
			"relay.limits.replay_bytes_per_minute: must be from 0 to 1073741824, not -1",
			"relay.limits.send_buffer: must be 0 (the system's) or from 2048 to 67108864, not 100",
			"relay.timeouts.flood: must be more than 0s",
		}},
		{"no doors", `{"relay":{"listen":{"line":"","legacy":"","udp":"","irc":"","http":""}}}`, []string{
			"relay.listen: every door is off; set at least one of line, legacy, udp, irc, http, line_tls, irc_tls, https"}},
		{"tls", `{"relay":{"listen":{"line_tls":"127.0.0.1:x","https":"127.0.0.1:8443"},"tls":{"cert":"","key":""}},
			"client":{"fingerprint":"sha256:AB:CD"}}`, []string{
			`relay.listen.line_tls: port "x" is not a number from 0 to 65535`,
			"relay.tls.cert: must be set for the TLS doors on (relay.listen.line_tls, relay.listen.https)",
			"relay.tls.key: must be set for the TLS doors on (relay.listen.line_tls, relay.listen.https)",
			`client.fingerprint: want a SHA-256 fingerprint such as "sha256:AB:CD:..." (32 bytes in hex), not "sha256:AB:CD"`,
		}},
		{"tls in tutorial mode", `{"client":{"mode":"tutorial","tls":true}}`, []string{
			`client.tls: the tutorial protocol has no TLS: set client.mode to "line" for a TLS door`}},
		{"duplicates", `{"relay":{"limits":{"rate":5},"limits":{"rate":6,"rate":7}}}`, []string{
			"relay.limits: duplicate key", "relay.limits.rate: duplicate key"}},
		{"kinds and ranges together", `{"relay":{"log_level":"loud","limits":{"burst":"x"}},"client":{"mode":"fancy"}}`, []string{
			`relay.limits.burst: want a whole number, got "x"`,
			`relay.log_level: want "debug", "info", "warn" or "error", not "loud"`,
			`client.mode: want "line" or "tutorial", not "fancy"`}},
		{"trailing", `{} {}`, []string{"not valid JSON: line 1 column 4: more data after the top-level object"}},
		{"trailing on a later line", "{\"relay\": {\"log_level\": \"débug\"}}\n\n  ]", []string{
			"not valid JSON: line 3 column 3: more data after the top-level object"}},
		{"cut short", "{\n  \"relay\": {\n    \"log_level\": \"info\"\n", []string{
			"not valid JSON: line 4 column 1: the file ends inside the top-level object (cut short?)"}},
		{"empty", " \n", []string{"not valid JSON: the file is empty"}},
		{"column in characters", `{"relay": {"default_room": "küche",}}`, []string{
			"not valid JSON: line 1 column 36: invalid character '}' looking for beginning of object key string"}},
		{"syntax", "{\n  \"relay\": {,}\n}", []string{"not valid JSON: line 2 column 13: invalid character ',' looking for beginning of object key string"}},
		{"not an object", `[]`, []string{"(top level): want an object, got an array"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.Split(err.Error(), "\n")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// A UTF-8 byte-order mark, as some Windows editors write, is no content.
func TestByteOrderMark(t *testing.T) {
	f, err := Parse([]byte("\ufeff{\"relay\": {\"default_room\": \"hall\"}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Relay.DefaultRoom != "hall" {
		t.Errorf("default_room %q, want hall", f.Relay.DefaultRoom)
	}
	_, err = Parse([]byte("\ufeff{\n ,"))
	if want := "not valid JSON: line 2 column 2: invalid character ',' looking for beginning of object key string"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// Check also asks whether this machine can listen at each address; Load
// leaves that to the relay, which retries an address not there yet.
func TestCheckHosts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	// 192.0.2.1 is a documentation address (RFC 5737): no machine has it;
	// 999.0.0.1 is no IP address (and Check looks up no name).
	os.WriteFile(path, []byte(`{
		"relay": {"listen": {"line": "192.0.2.1:7777", "legacy": "999.0.0.1:7778", "udp": "localhost:7779"}},
		"client": {"mode": "tutorial", "listen": "[::]:8881"},
		"peer": {"listen": "127.0.0.1:8881"},
		"echo": {"listen": ":65432"}}`), 0o644)
	if _, err := Load(path); err != nil {
		t.Fatalf("Load: %v", err)
	}
	_, err := Check(path)
	if err == nil {
		t.Fatal("Check: no error")
	}
	want := []string{
		"config " + path + ":",
		"relay.listen.line: 192.0.2.1 is not an address of this machine (its interface may not be up yet; the relay would wait for it)",
		`relay.listen.legacy: "999.0.0.1" is not an IP address or localhost: give the address to listen on (names are not looked up)`,
	}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// The shipped config passes, here as on the router.
	if _, err := Check(filepath.Join("..", "..", "config.json")); err != nil {
		t.Errorf("Check(config.json): %v", err)
	}
}

func TestListenDoors(t *testing.T) {
	if diff := cmp.Diff([]string{"line", "legacy", "udp", "irc", "http", "line_tls", "irc_tls", "https"}, DoorNames()); diff != "" {
		t.Errorf("DoorNames (-want +got):\n%s", diff)
	}
	var l Listen
	*l.Door("legacy") = "127.0.0.1:1"
	if l.Legacy != "127.0.0.1:1" || l.Door("xmpp") != nil {
		t.Errorf("Door: %+v, xmpp %v", l, l.Door("xmpp"))
	}
}

// Defaults that would not fit a small history shrink with it; explicit
// values do not.
func TestSmallHistory(t *testing.T) {
	f, err := Parse([]byte(`{"relay":{"limits":{"history":5}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if l := f.Relay.Limits; l.Queue != 5 || l.Replay != 5 {
		t.Errorf("queue %d, replay %d; want 5 and 5", l.Queue, l.Replay)
	}
	if _, err := Parse([]byte(`{"relay":{"limits":{"history":5,"replay":6}}}`)); err == nil {
		t.Error("an explicit replay over history passed")
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"relay":{"nope":1}}`), 0o644)
	if _, err := Load(bad); err == nil || errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "relay.nope: unknown key") {
		t.Errorf("err = %v", err)
	}
}

func TestParseFingerprint(t *testing.T) {
	hexFP := "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12"
	var want [32]byte
	for i := range want {
		fmt.Sscanf(hexFP[2*i:2*i+2], "%02x", &want[i])
	}
	colons := strings.ToUpper(hexFP[:2])
	for i := 2; i < len(hexFP); i += 2 {
		colons += ":" + strings.ToUpper(hexFP[i:i+2])
	}
	for _, v := range []string{hexFP, "sha256:" + colons, "SHA256:" + hexFP, colons, "sha256 Fingerprint=" + colons, " " + colons + "\n"} {
		got, err := ParseFingerprint(v)
		if err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		if got != want {
			t.Errorf("%q: got %x", v, got)
		}
	}
	for _, v := range []string{"", "sha256:", hexFP[:62], hexFP + "00", "md5:" + hexFP, strings.Replace(hexFP, "a", "g", 1)} {
		if _, err := ParseFingerprint(v); err == nil {
			t.Errorf("%q: no error", v)
		}
	}
}

func TestLoadPutsTheCertificateBesideTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	abs := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, []byte(`{"relay":{"tls":{"cert":"certs/c.pem","key":"`+abs+`"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Relay.TLS.Cert, filepath.Join(dir, "certs", "c.pem"); got != want {
		t.Errorf("cert %q, want %q", got, want)
	}
	if f.Relay.TLS.Key != abs {
		t.Errorf("key %q, want %q (absolute: kept)", f.Relay.TLS.Key, abs)
	}
}

// Secrets are hashes: a value in clear, or any other string that is no
// hash, is refused by its key, and the error never quotes it.
func TestSecretsAreHashes(t *testing.T) {
	good := secret.Hash("hunter2")
	f, err := Parse([]byte(`{"relay":{"password":"` + good + `","admin_password":"` + good + `",
		"rooms":{"kitchen":{"key":"` + good + `","topic":"family only","hidden":true},"hall":{}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Room{Key: good, Topic: "family only", Hidden: true}); f.Relay.Rooms["kitchen"] != want {
		t.Errorf("relay.rooms.kitchen = %+v, want %+v", f.Relay.Rooms["kitchen"], want)
	}
	_, err = Parse([]byte(`{"relay":{"password":"hunter2","admin_password":"pbkdf2-sha256$1$x$y",
		"rooms":{"kitchen":{"key":"letmein","topic":"a\u0007bell"},"Kitchen":{},"lobby":{"key":"` + good + `"},"bad/room":{},"hall":{"secret":1}}}}`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"relay.password: not a hash; make one with `roomrelay passwd`",
		"relay.admin_password: not a hash; make one with `roomrelay passwd`",
		"relay.rooms.kitchen.key: not a hash; make one with `roomrelay passwd`",
		"relay.rooms.kitchen.topic: want at most 300 bytes of text without control characters",
		"relay.rooms.kitchen: the same room as relay.rooms.Kitchen",
		"relay.rooms.lobby.key: the default room cannot have a key",
		"relay.rooms.bad/room: ",
		"relay.rooms.hall.secret: unknown key",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
	for _, clear := range []string{"hunter2", "letmein"} {
		if strings.Contains(err.Error(), clear) {
			t.Errorf("the error quotes the secret %q:\n%v", clear, err)
		}
	}
}
