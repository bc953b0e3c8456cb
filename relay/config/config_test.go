package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The shipped config.json spells out exactly the defaults.
func TestShippedConfigIsDefault(t *testing.T) {
	f, err := Load(filepath.Join("..", "..", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Default(), *f); diff != "" {
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
		{"unknown keys", `{"relay":{"limits":{"colour":1},"listen":{"irc":""}},"x":{}}`, []string{
			"relay.limits.colour: unknown key", "relay.listen.irc: unknown key", "x: unknown key"}},
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
			"gc_percent":5,"limits":{"queue":600,"max_line_bytes":10,"rate":-1,"max_legacy_per_ip":0},"timeouts":{"write":"0s","legacy_lapse":"0s"}},"client":{"mode":"carrier-pigeon","retry_max":"1ms"}}`, []string{
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
			`client.retry_max: must be at least client.retry (1s)`,
			`client.mode: want "line" or "tutorial", not "carrier-pigeon"`,
		}},
		{"no doors", `{"relay":{"listen":{"line":"","legacy":"","udp":""}}}`, []string{
			"relay.listen: every door is off; set at least one of line, legacy, udp"}},
		{"duplicates", `{"relay":{"limits":{"rate":5},"limits":{"rate":6,"rate":7}}}`, []string{
			"relay.limits: duplicate key", "relay.limits.rate: duplicate key"}},
		{"same address", `{"relay":{"listen":{"line":"127.0.0.1:7000","legacy":"127.0.0.1:7000"}}}`, []string{
			"relay.listen.legacy: the same address as relay.listen.line (127.0.0.1:7000); each door needs its own"}},
		{"kinds and ranges together", `{"relay":{"log_level":"loud","limits":{"burst":"x"}},"client":{"mode":"fancy"}}`, []string{
			`relay.limits.burst: want a whole number, got "x"`,
			`relay.log_level: want "debug", "info", "warn" or "error", not "loud"`,
			`client.mode: want "line" or "tutorial", not "fancy"`}},
		{"trailing", `{} {}`, []string{"trailing data after the top-level object at byte 3"}},
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
