//go:build !minimal

package relay

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
)

// The HTTP door's fixed bounds; its grace and write deadline are in the
// configuration (Timeouts.HTTPGrace, Timeouts.Write).
const (
	httpReadHeader = 10 * time.Second // a request's headers
	httpRead       = 30 * time.Second // a whole request
	httpIdle       = 60 * time.Second // a kept-alive connection between requests
	httpMaxHeader  = 8 << 10          // a request's headers, in bytes
	httpKeepalive  = 25 * time.Second // a comment on an idle event stream
	httpRetry      = time.Second      // a browser's wait before reconnecting a stream that ended
)

//go:embed web
var webFiles embed.FS

// httpPosters bounds how many addresses' budgets for POST /api/post the
// HTTP door keeps (see limiterTable).
const httpPosters = 1024

func init() {
	optionalDoors = append(optionalDoors, func(s *Server) door {
		return &httpDoor{s: s, byToken: map[string]*httpDriver{}, perIP: map[netip.Addr]int{}, posters: newLimiterTable[netip.Addr](httpPosters)}
	})
}

// httpDoor serves the browser page and the HTTP API (see PROTOCOL.md and
// proto/sse.go). Each browser is a member like any other, made by POST
// /api/join and served by an httpDriver: its events are written by the
// GET /api/events request that holds its stream, its lines come from POST
// /api/send. Connections are admitted by the relay (admit.go) on their
// real address.
type httpDoor struct {
	s *Server

	// Guarded by mu.
	mu      sync.Mutex
	byToken map[string]*httpDriver
	perIP   map[netip.Addr]int        // browser members, by the address that made them
	posters *limiterTable[netip.Addr] // /api/post's rate limits, by address
}

func (*httpDoor) name() string                 { return "http" }
func (*httpDoor) addr(c *config.Config) string { return c.Listen.HTTP }

// httpDriver is a browser member's driver. A goroutine (watch) waits for
// the session's deadline, which is its grace while no stream is open; the
// GET /api/events request holding the stream writes its events.
type httpDriver struct {
	// Set once.
	m     *member
	token string
	ip    netip.Addr

	wakeC chan struct{} // capacity 1: events may be ready; never closed
	stopC chan struct{} // capacity 1: the member was kicked or its deadline moved
	sem   chan struct{} // capacity 1: held by the stream writing, and by watch to see the member off

	goneAt atomic.Int64 // when its last stream ended, in Unix nanoseconds; 0 while one is open
	in     sync.Mutex   // held while handling its input: /api/send, and a resume

	mu  sync.Mutex
	cut chan struct{} // closed to end the current stream, when another takes over
}

func (h *httpDriver) wake(*member) {
	select {
	case h.wakeC <- struct{}{}:
	default:
	}
}

func (h *httpDriver) stop(m *member) {
	select {
	case h.stopC <- struct{}{}:
	default:
	}
	h.wake(m)
}

// lapseBy is when the member lapses: Timeouts.HTTPGrace after its last
// stream ended; never while one is open. See member.readBy.
func (h *httpDriver) lapseBy(m *member) time.Time {
	at := h.goneAt.Load()
	if at == 0 {
		return time.Unix(0, math.MaxInt64)
	}
	return time.Unix(0, at).Add(m.srv.conf().Timeouts.HTTPGrace.D())
}

// handler is the door's routes, cross-origin POSTs refused.
func (d *httpDoor) handler(closing <-chan struct{}) http.Handler {
	routes := map[string]http.HandlerFunc{
		"GET /":           page("index.html", "text/html; charset=utf-8"),
		"GET /app.js":     page("app.js", "text/javascript; charset=utf-8"),
		"GET /style.css":  page("style.css", "text/css; charset=utf-8"),
		"POST /api/join":  d.join,
		"GET /api/events": func(w http.ResponseWriter, r *http.Request) { d.events(w, r, closing) },
		"POST /api/send":  d.send,
		"POST /api/post":  d.post,
		"GET /api/stats":  d.stats,
	}
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		if h := routes[method+" "+r.URL.Path]; h != nil {
			h(w, r)
			return
		}
		for _, m := range []string{"GET", "POST"} {
			if routes[m+" "+r.URL.Path] != nil {
				w.Header().Set("Allow", m)
				fail(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+": use "+m)
				return
			}
		}
		fail(w, http.StatusNotFound, "no such page: "+r.URL.Path)
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(crossOrigin))
	return cop.Handler(mux)
}

// crossOrigin refuses a POST from another site (see handler) as every
// API error is answered: {"error": why}.
func crossOrigin(w http.ResponseWriter, r *http.Request) {
	why := "Origin " + r.Header.Get("Origin") + " is not " + r.Host
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		why = "Sec-Fetch-Site: " + site
	}
	fail(w, http.StatusForbidden, "cross-origin request refused ("+why+"): post from the relay's own page, or from a script that sends no Origin")
}

// page serves one of the page's files, with headers that allow nothing
// from elsewhere, no inline script and no framing.
func page(name, ctype string) http.HandlerFunc {
	b, err := webFiles.ReadFile("web/" + name)
	if err != nil {
		panic(err) // embedded: a build without it does not compile
	}
	return func(w http.ResponseWriter, r *http.Request) {
		setPage(w.Header(), ctype)
		w.Write(b)
	}
}

func setPage(h http.Header, ctype string) {
	h.Set("Content-Type", ctype)
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

// fail answers an API request with status and {"error": msg}.
func fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(proto.AppendError(nil, msg))
}

// form reads a POST's form, its body bounded by what a line can take.
func (d *httpDoor) form(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, int64(3*d.s.conf().Limits.MaxLineBytes+1024))
	if err := r.ParseForm(); err != nil {
		var big *http.MaxBytesError
		if errors.As(err, &big) {
			fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", big.Limit))
		} else {
			fail(w, http.StatusBadRequest, "bad form: "+err.Error())
		}
		return false
	}
	return true
}

// remoteIP is the address a request comes from.
func remoteIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// newToken draws a browser member's token: 128 random bits.
func newToken() string {
	var b [16]byte
	rand.Read(b[:]) // it never fails: it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// join makes a browser member: POST /api/join.
func (d *httpDoor) join(w http.ResponseWriter, r *http.Request) {
	s := d.s
	if !d.form(w, r) {
		return
	}
	j, err := proto.ParseJoin(r.PostForm)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	ip, l := remoteIP(r), s.conf().Limits
	t := time.Now()
	if why, banned := s.refusedBan(ip, t); banned {
		fail(w, http.StatusForbidden, "refused: "+why)
		return
	}
	h := &httpDriver{token: newToken(), ip: ip, wakeC: make(chan struct{}, 1), stopC: make(chan struct{}, 1), sem: make(chan struct{}, 1)}
	d.mu.Lock()
	switch {
	case len(d.byToken) >= l.MaxClients:
		d.mu.Unlock()
		fail(w, http.StatusServiceUnavailable, fmt.Sprintf("relay full (%d browsers)", l.MaxClients))
		return
	case d.perIP[ip] >= l.MaxClientsPerIP:
		d.mu.Unlock()
		fail(w, http.StatusTooManyRequests, fmt.Sprintf("too many browsers from %s (%d)", ip, l.MaxClientsPerIP))
		return
	}
	m := s.newMember(nil, "http", h)
	h.m, m.from = m, ip
	h.goneAt.Store(m.lastIn.Load()) // no stream yet: its grace runs
	d.byToken[h.token] = h
	d.perIP[ip]++
	d.mu.Unlock()
	if s.conf().Password != "" {
		// Before the name is looked at: a wrong password says nothing of it.
		if err := s.password(m, j.Password, t); err != nil {
			d.forget(h)
			var we *waitError
			switch {
			case err == errNoPassword:
				fail(w, http.StatusUnauthorized, "this relay has a password: give it (password)")
			case errors.As(err, &we):
				w.Header().Set("Retry-After", fmt.Sprint(int64(we.seconds())))
				fail(w, http.StatusTooManyRequests, err.Error())
			default:
				fail(w, http.StatusUnauthorized, "wrong password")
			}
			return
		}
		m.passed = true
	}
	if err := s.claim(m, j.Name, true); err != nil {
		d.forget(h)
		status := http.StatusServiceUnavailable
		if errors.Is(err, errNameTaken) {
			status = http.StatusConflict
		}
		fail(w, status, err.Error())
		return
	}
	hello := proto.Hello{Name: j.Name, Room: j.Room, Key: j.Key}
	if j.Since != nil {
		seq := j.Since.Seq
		hello.Epoch, hello.Since = j.Since.Epoch, &seq
	}
	h.in.Lock()
	s.enter(m, hello, t)
	h.in.Unlock()
	m.named.Store(true)
	s.wg.Add(1) // the door's server is counted: the relay is not waiting on zero
	go d.watch(h)
	s.infof("http %s: %s joined", ip, m.name)
	m.mu.Lock()
	rm := m.room
	m.mu.Unlock()
	rm.mu.RLock()
	seq := rm.seq
	rm.mu.RUnlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(proto.AppendJoined(nil, &proto.Joined{Token: h.token, Name: m.name, Room: rm.name, Seq: seq}))
}

// forget drops h's token and its place among its address's browsers.
func (d *httpDoor) forget(h *httpDriver) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byToken[h.token] != h {
		return
	}
	delete(d.byToken, h.token)
	if d.perIP[h.ip]--; d.perIP[h.ip] <= 0 {
		delete(d.perIP, h.ip)
	}
}

// find returns the member of a token, or nil.
func (d *httpDoor) find(token string) *httpDriver {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byToken[token]
}

// watch waits for h's member's deadlines (its grace while no stream is
// open: see lapseBy) and, once it is kicked and its stream is done, sees
// it off.
func (d *httpDoor) watch(h *httpDriver) {
	m := h.m
	defer d.s.wg.Done()
	defer d.forget(h)
	timer := time.NewTimer(time.Until(m.readBy()))
	defer timer.Stop()
	for {
		select {
		case <-m.doneC():
			h.sem <- struct{}{} // the stream, if any, has written its goodbye
			m.end(nil)
			return
		case <-h.stopC:
		case <-timer.C:
			if why, ok := m.expired(time.Now()); ok {
				m.kick(why)
			}
		}
		timer.Reset(time.Until(m.readBy()))
	}
}

// events streams a member's events: GET /api/events.
func (d *httpDoor) events(w http.ResponseWriter, r *http.Request, closing <-chan struct{}) {
	q := r.URL.Query()
	h := d.find(q.Get("token"))
	if h == nil {
		fail(w, http.StatusNotFound, "unknown token: join again (POST /api/join)")
		return
	}
	m := h.m
	var since *proto.Point
	if id := r.Header.Get("Last-Event-ID"); id != "" || q.Has("last_event_id") {
		if id == "" {
			id = q.Get("last_event_id")
		}
		p, err := proto.ParsePoint(id)
		if err != nil {
			fail(w, http.StatusBadRequest, "last event id: "+err.Error())
			return
		}
		since = &p
	}
	if eventsHook != nil {
		eventsHook()
	}
	cut := h.takeOver()
	timer := time.NewTimer(d.s.conf().Timeouts.Write.D())
	defer timer.Stop()
	select {
	case h.sem <- struct{}{}:
	case <-timer.C:
		fail(w, http.StatusServiceUnavailable, "another stream of this token is still open")
		return
	case <-r.Context().Done():
		return
	}
	defer func() {
		h.goneAt.Store(time.Now().UnixNano())
		<-h.sem
		h.stop(m) // its grace starts
	}()
	if m.isDone() {
		fail(w, http.StatusGone, "this member has left: join again (POST /api/join)")
		return
	}
	h.goneAt.Store(0)
	h.stop(m)
	st := &stream{w: w, rc: http.NewResponseController(w), m: m, h: h}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if since != nil {
		h.in.Lock()
		d.resume(m, since)
		h.in.Unlock()
	}
	st.head = m.head()
	if st.write(proto.AppendSSERetry(nil, httpRetry)) != nil {
		return
	}
	keep := time.NewTicker(httpKeepalive)
	defer keep.Stop()
	if st.flush(time.Time{}) != nil {
		return
	}
	for {
		var err error
		select {
		case <-h.wakeC:
			err = st.flush(time.Time{})
		case <-keep.C:
			err = st.write(proto.AppendSSEComment(nil, "keep-alive"))
		case <-m.doneC():
			if m.why.flushes() {
				st.flush(time.Unix(0, m.flushBy))
			}
			if bye := m.goodbye(); bye != nil && m.why.told() {
				st.write(proto.AppendSSE(nil, &proto.SSE{Data: bye}))
			}
			return
		case <-cut:
			return
		case <-closing:
			if !isClosed(d.s.quit) {
				return // the door moved (a reload): the browser reconnects
			}
			closing = nil // the relay is stopping: its member is about to be told why
		case <-r.Context().Done():
			return
		}
		if err != nil {
			d.s.debugf("http %s: %s: stream ended: %v", remoteIP(r), m.name, err)
			return
		}
	}
}

// eventsHook, when set (by tests only), runs as a stream is asked for.
var eventsHook func()

// takeOver ends the member's stream, if one is open, and returns the
// channel that ends the next.
func (h *httpDriver) takeOver() chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cut != nil {
		close(h.cut)
	}
	h.cut = make(chan struct{})
	return h.cut
}

// head returns m's room's next sequence number.
func (m *member) head() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.room.mu.RLock()
	defer m.room.mu.RUnlock()
	return m.room.seq + 1
}

// resume moves m's cursor in its room to just after since, as /since
// does on the line door: what the cursor still owed is replayed from
// since on.
func (d *httpDoor) resume(m *member, since *proto.Point) {
	m.mu.Lock()
	r := m.room
	r.mu.Lock()
	m.next.Store(r.seq + 1)
	r.mu.Unlock()
	m.mu.Unlock()
	d.s.join(m, r.name, since, 0)
}

// stream is one open event stream of a browser member.
type stream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	m    *member
	h    *httpDriver
	head uint64 // the room's head when the stream opened: caught up once written up to it
	seen uint64 // room events written since it opened
	done bool   // caught-up sent

	batch []*event
	buf   []byte
}

// write writes b and flushes it, within Timeouts.Write.
func (st *stream) write(b []byte) error {
	st.rc.SetWriteDeadline(time.Now().Add(st.m.srv.conf().Timeouts.Write.D()))
	if _, err := st.w.Write(b); err != nil {
		return err
	}
	return st.rc.Flush()
}

// flush writes what is ready for the member, batch by batch, until
// nothing is, or until is passed (when not zero); then, once the stream
// has written up to where its room was when it opened, the caught-up
// event.
func (st *stream) flush(until time.Time) error {
	m := st.m
	for until.IsZero() || time.Now().Before(until) {
		batch, _, ok := m.batch(&st.batch)
		if !ok {
			m.kick(bySlow)
			return nil
		}
		if len(batch) == 0 {
			break
		}
		m.mu.Lock()
		cur := m.room
		m.mu.Unlock()
		st.buf = st.buf[:0]
		msgs := 0
		for i, ev := range batch {
			msgs += ev.message()
			e := proto.SSE{Data: ev.line(true)}
			if seq := ev.roomSeq(); seq != 0 {
				epoch := m.srv.epochOf(cur, ev.room)
				e.At = proto.Point{Epoch: epoch, Seq: seq} // no id while epoch is ""
				if ev.kind == proto.KindMsg || ev.kind == proto.KindAction {
					st.seen++
				}
			}
			st.buf = proto.AppendSSE(st.buf, &e)
			batch[i] = nil
		}
		m.srv.stats.out(msgs, len(st.buf))
		if err := st.write(st.buf); err != nil {
			return err
		}
	}
	if !st.done && m.next.Load() >= st.head {
		st.done = true
		return st.write(proto.AppendSSE(nil, &proto.SSE{Event: "caught-up", Data: fmt.Appendf(nil, `{"missed":%d}`, st.seen)}))
	}
	return nil
}

// epochOf returns the epoch of the room called name: cur's when it is
// cur (nearly always), or "" when there is no such room now.
func (s *Server) epochOf(cur *room, name string) string {
	if cur != nil && cur.name == name {
		return cur.epoch
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rooms[proto.Fold(name)]; r != nil {
		return r.epoch
	}
	return ""
}

// send takes a browser member's text, as lines of the line door: POST
// /api/send.
func (d *httpDoor) send(w http.ResponseWriter, r *http.Request) {
	if !d.form(w, r) {
		return
	}
	h := d.find(r.PostForm.Get("token"))
	if h == nil || h.m.isDone() {
		fail(w, http.StatusNotFound, "unknown token: join again (POST /api/join)")
		return
	}
	l := d.s.conf().Limits
	m, max := h.m, l.MaxLineBytes
	text := strings.TrimRight(r.PostForm.Get("text"), "\r\n")
	h.in.Lock()
	defer h.in.Unlock()
	for line := range strings.Lines(text) {
		b := []byte(strings.TrimRight(line, "\r\n"))
		var err error
		if len(b) > max {
			b, err = nil, proto.ErrLineTooLong
		}
		t := time.Now()
		// The budgets of the line door (see paceBy), but a request cannot
		// be paced as a socket is: past them the rest is refused.
		m.mu.Lock()
		by := m.paceBy(t)
		m.mu.Unlock()
		if !by.IsZero() {
			msg := fmt.Sprintf("slow down: at most %g lines a second; not sent from %q on", l.Rate, b)
			m.notify(proto.KindError, "%s", msg)
			fail(w, http.StatusTooManyRequests, msg)
			return
		}
		if why, leave := m.line(b, err, t); leave {
			m.kick(why)
			break
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// post is a one-shot message for scripts: POST /api/post, from
// relay.udp_allow only, under the rate limits of its address, to a room
// without a key (it carries no secret, as the UDP door).
func (d *httpDoor) post(w http.ResponseWriter, r *http.Request) {
	s := d.s
	ip := remoteIP(r)
	if !allowed(s.conf().UDPAllow, ip) {
		fail(w, http.StatusForbidden, fmt.Sprintf("%s is not in relay.udp_allow", ip))
		return
	}
	if why, banned := s.refusedBan(ip, time.Now()); banned {
		fail(w, http.StatusForbidden, "refused: "+why)
		return
	}
	if !d.form(w, r) {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	text := proto.Clean([]byte(r.PostForm.Get("text")))
	room := strings.TrimPrefix(strings.TrimSpace(r.PostForm.Get("room")), "#")
	if room == "" {
		room = s.conf().DefaultRoom
	}
	l := s.conf().Limits
	var err error
	switch {
	case proto.CheckName(name) != nil:
		err = proto.CheckName(name)
	case proto.CheckRoom(room) != nil:
		err = proto.CheckRoom(room)
	case strings.TrimSpace(text) == "":
		err = errors.New("empty text")
	case len(name)+len(httpMarker)+2+len(text) > l.MaxLineBytes:
		err = fmt.Errorf("message would make a %d-byte line (at most %d)", len(name)+len(httpMarker)+2+len(text), l.MaxLineBytes)
	}
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if key, _, _ := s.roomSettings(room); key != "" {
		fail(w, http.StatusForbidden, room+" has a key: /api/post takes no secret; join it (POST /api/join)")
		return
	}
	d.mu.Lock()
	t := time.Now()
	lim := d.posters.get(ip, t, l.Rate, l.Burst)
	ok := lim != nil && lim.allow(t, l.Rate, l.Burst)
	d.mu.Unlock()
	if !ok {
		fail(w, http.StatusTooManyRequests, fmt.Sprintf("slow down: at most %g messages a second", l.Rate))
		return
	}
	if s.lookup(name) != nil {
		fail(w, http.StatusConflict, fmt.Sprintf("%v: %s is in use", errNameTaken, name))
		return
	}
	rm, err := s.room(room)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	rm.post(&proto.Event{Kind: proto.KindMsg, From: name + httpMarker, Text: text, Time: now()}, 0, s.maxLag())
	s.stats.posted.Add(1)
	s.stats.bytesIn.Add(int64(len(text)) + 1)
	w.WriteHeader(http.StatusNoContent)
}

// stats answers GET /api/stats from relay.stats_allow: the relay's
// counters, and its members by door and by room.
func (d *httpDoor) stats(w http.ResponseWriter, r *http.Request) {
	s := d.s
	if ip := remoteIP(r); !allowed(s.conf().StatsAllow, ip) {
		fail(w, http.StatusForbidden, fmt.Sprintf("%s is not in relay.stats_allow", ip))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(s.statsLine())
}
