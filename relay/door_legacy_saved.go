//go:build !minimal

package relay

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"time"

	"roomrelay/internal/atomicfile"
	"roomrelay/internal/jsonlite"
	"roomrelay/proto"
	"roomrelay/relay/config"
	"roomrelay/relay/store"
)

// legacyFile is the file, in relay.store.path, that keeps the legacy
// registrations over a restart: a tutorial client registers only when it
// starts, so a relay that forgot it would never hear from it again.
const legacyFile = "legacy.json"

// legacySaved is legacyFile's content.
type legacySaved struct {
	Registrations []legacyRegistration
}

// legacyRegistration is one legacy member as saved: what a registration
// holds. Its lapse is not saved: a member read back lapses
// Timeouts.LegacyLapse after the restart, the time the relay was down not
// counted against it.
type legacyRegistration struct {
	Name     string
	From     string // the address it registered from
	Endpoint string // host:port it is dialled at; its host is From
	Room     string // where it was: the default room then
}

// legacyFileMax bounds the bytes of legacyFile read back: about 2 000
// registrations of the longest names and endpoints (names are at most
// 24 characters, rooms 32), whatever relay.limits.max_legacy_members is
// now (a file written under a larger limit is trimmed to the limit, not
// refused).
const legacyFileMax = 1 << 20

// prepare reads back, the first time the door is to open (at Start, or at
// the Reload that turns it on), the registrations saved in the store.
func (d *legacyDoor) prepare(*config.Config) (string, error) {
	d.restored.Do(d.restore)
	return "", nil
}

// save writes the legacy members to legacyFile when the relay has a
// store, after each registration, change of endpoint and drop, so that a
// restart keeps them (see restore). Not once the relay is shutting down:
// the ends of its members then are no drops. A file that cannot be
// written is logged; the relay goes on.
func (d *legacyDoor) save() {
	s := d.s
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	s.mu.Lock()
	st, closing := s.store, s.closing
	var ms []*member
	if st != nil && !closing {
		for _, m := range s.names {
			if _, ok := m.drv.(*legacyPeer); ok && !m.isDone() {
				ms = append(ms, m)
			}
		}
	}
	s.mu.Unlock()
	if st == nil || closing {
		return
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.id, b.id) })
	saved := legacySaved{Registrations: make([]legacyRegistration, 0, len(ms))}
	for _, m := range ms {
		p := m.drv.(*legacyPeer)
		p.mu.Lock()
		endpoint := p.endpoint
		p.mu.Unlock()
		room := s.conf().DefaultRoom // where it is on its way to, until it is in
		m.mu.Lock()
		if m.room != nil {
			room = m.room.name
		}
		m.mu.Unlock()
		saved.Registrations = append(saved.Registrations, legacyRegistration{Name: m.name, From: p.addr.String(), Endpoint: endpoint, Room: room})
	}
	path, sync := store.Beside(st, legacyFile)
	if err := atomicfile.Write(path, saved.append(nil), 0o600, sync); err != nil {
		s.warnf("legacy: %s: %v: a restart would forget the registrations since", path, err)
	}
}

// restore registers again the legacy members that legacyFile holds, as
// their clients registered them, each held to what a registration is
// (relay.legacy_allow, bans, the limits): they get deliveries and may post
// as before the restart. A file that cannot be read or decoded is logged,
// naming it, and ignored: its clients must be started again.
func (d *legacyDoor) restore() {
	s := d.s
	s.mu.Lock()
	st := s.store
	s.mu.Unlock()
	if st == nil {
		return
	}
	path, _ := store.Beside(st, legacyFile)
	limits := s.conf().Limits
	saved, err := readLegacy(path, legacyFileMax)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		s.warnf("legacy: %s: %v: ignored; tutorial clients registered before the restart must be started again", path, err)
		return
	}
	regs := saved.Registrations
	if len(regs) > limits.MaxLegacyMembers {
		s.warnf("legacy: %s: %d registrations over relay.limits.max_legacy_members (%d) not read back", path, len(regs)-limits.MaxLegacyMembers, limits.MaxLegacyMembers)
		regs = regs[:limits.MaxLegacyMembers]
	}
	n := 0
	for _, r := range regs {
		if err := d.restoreOne(r); err != nil {
			s.warnf("legacy: %s: %s not registered again: %v", path, r.Name, err)
			continue
		}
		n++
	}
	s.infof("legacy: %d of %d registrations read back from %s", n, len(saved.Registrations), path)
	if n != len(saved.Registrations) {
		d.save() // without those that were not
	}
}

// readLegacy reads and decodes legacyFile at path, of at most max bytes.
func readLegacy(path string, max int) (legacySaved, error) {
	var saved legacySaved
	f, err := os.Open(path)
	if err != nil {
		return saved, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	switch {
	case err != nil:
		return saved, err
	case len(b) > max:
		return saved, fmt.Errorf("over %d bytes", max)
	}
	err = saved.parse(b)
	return saved, err
}

// append appends saved as legacyFile holds it: a JSON object, one
// registration a line. (Not encoding/json: the relay decodes its JSON
// without reflection, and its decoder would add about 75 KB to the
// binary and 0.35 MB of it to what a relay at rest maps.)
func (saved legacySaved) append(b []byte) []byte {
	b = append(b, "{\"registrations\": ["...)
	for i, r := range saved.Registrations {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n\t"...)
		sep := byte('{')
		for _, kv := range [...][2]string{{"name", r.Name}, {"from", r.From}, {"endpoint", r.Endpoint}, {"room", r.Room}} {
			b = append(proto.AppendJSONString(append(b, sep), kv[0]), ':')
			b = proto.AppendJSONString(b, kv[1])
			sep = ','
		}
		b = append(b, '}')
	}
	return append(b, "\n]}\n"...)
}

// parse reads legacyFile's content b into saved: an object whose
// "registrations" is an array of objects of strings; other keys are
// skipped, a value of another kind is an error.
func (saved *legacySaved) parse(b []byte) error {
	v, end, _, err := jsonlite.Parse(b)
	if err != nil {
		return err
	}
	if rest := bytes.TrimSpace(b[end:]); len(rest) > 0 {
		return errors.New("text after the JSON object")
	}
	top, ok := v.(map[string]any)
	regs, isList := top["registrations"].([]any)
	if !ok || !isList && top["registrations"] != nil {
		return errors.New(`want {"registrations": [...]}`)
	}
	for i, e := range regs {
		o, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("registration %d is not an object", i+1)
		}
		var r legacyRegistration
		for _, f := range [...]struct {
			k   string
			dst *string
		}{{"name", &r.Name}, {"from", &r.From}, {"endpoint", &r.Endpoint}, {"room", &r.Room}} { // in order: the first bad one is named
			k, dst := f.k, f.dst
			switch x := o[k].(type) {
			case string:
				*dst = x
			case nil:
			default:
				return fmt.Errorf("registration %d: %s is not a string", i+1, k)
			}
		}
		saved.Registrations = append(saved.Registrations, r)
	}
	return nil
}

// restoreOne registers r again, after the checks its registration passed.
func (d *legacyDoor) restoreOne(r legacyRegistration) error {
	s := d.s
	from, err := netip.ParseAddr(r.From)
	if err != nil {
		return err
	}
	from = from.Unmap()
	ep, err := netip.ParseAddrPort(r.Endpoint)
	switch {
	case err != nil:
		return err
	case ep.Addr().Unmap() != from || ep.Port() == 0:
		return fmt.Errorf("endpoint %s is not a port of %s", r.Endpoint, from)
	case proto.CheckName(r.Name) != nil:
		return proto.CheckName(r.Name)
	case !allowed(s.conf().LegacyAllow, from):
		return fmt.Errorf("%s is not in relay.legacy_allow", from)
	}
	if _, banned := s.banned(from, "", time.Now()); banned {
		s.stats.banned.Add(1)
		return fmt.Errorf("%s is banned by an admin", from)
	}
	if home := s.conf().DefaultRoom; r.Room != "" && proto.Fold(r.Room) != proto.Fold(home) {
		s.infof("legacy: %s was in %s; the default room is now %s", r.Name, r.Room, home)
	}
	_, err = d.enrol(from, r.Name, netip.AddrPortFrom(from, ep.Port()).String())
	return err
}
