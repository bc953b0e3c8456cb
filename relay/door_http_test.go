//go:build !minimal

package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
)

// httpConfig is testConfig with the HTTP door on a loopback port.
func httpConfig() config.Config {
	cfg := testConfig()
	cfg.Listen.HTTP = "127.0.0.1:0"
	return cfg
}

// browser is a test client of the HTTP door.
type browser struct {
	t     testing.TB
	base  string
	c     *http.Client
	token string
	name  string
}

func newBrowser(t testing.TB, s *Server) *browser {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &browser{t: t, base: "http://" + s.Addr("http").String(), c: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// postForm posts form to path and returns the status and the body.
func (b *browser) postForm(path string, form url.Values) (int, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// join claims name (with extra form fields), failing the test unless it
// is given.
func (b *browser) join(name string, extra ...string) proto.Joined {
	b.t.Helper()
	form := url.Values{"name": {name}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	code, body := b.postForm("/api/join", form)
	if code != http.StatusOK {
		b.t.Fatalf("join %s: %d %s", name, code, body)
	}
	var j proto.Joined
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		b.t.Fatalf("join %s: %q: %v", name, body, err)
	}
	b.token, b.name = j.Token, j.Name
	return j
}

func (b *browser) say(text string) {
	b.t.Helper()
	if code, body := b.postForm("/api/send", url.Values{"token": {b.token}, "text": {text}}); code != http.StatusNoContent {
		b.t.Fatalf("send %q: %d %s", text, code, body)
	}
}

// sse is an open event stream.
type sse struct {
	t      testing.TB
	r      *proto.SSEReader
	cancel context.CancelFunc
	last   string // the last id read
}

// events opens b's event stream, resuming after lastID when it is not "".
func (b *browser) events(lastID string) *sse {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", b.base+"/api/events?token="+url.QueryEscape(b.token), nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	tr := b.c.Transport.(*http.Transport).Clone() // over TLS too, as b's
	tr.DisableKeepAlives = true
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		cancel()
		b.t.Fatalf("events: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		b.t.Fatalf("events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	st := &sse{t: b.t, r: proto.NewSSEReader(resp.Body, 1<<16), cancel: func() { cancel(); resp.Body.Close(); tr.CloseIdleConnections() }}
	b.t.Cleanup(st.cancel)
	return st
}

// next reads the next event, decoded.
func (st *sse) next() (proto.SSE, proto.Event) {
	st.t.Helper()
	ev, err := st.r.Read()
	if err != nil {
		st.t.Fatalf("read event: %v", err)
	}
	if ev.ID != "" {
		st.last = ev.ID
	}
	if ev.Event != "" {
		return ev, proto.Event{}
	}
	e, err := proto.DecodeJSON(ev.Data)
	if err != nil {
		st.t.Fatalf("event %q: %v", ev.Data, err)
	}
	return ev, e
}

// until reads events until ok, returning the messages ("from: text") read
// on the way, the one that satisfied ok included when it is one.
func (st *sse) until(what string, ok func(proto.SSE, proto.Event) bool) []string {
	st.t.Helper()
	var msgs []string
	for range 1000 {
		raw, e := st.next()
		if e.Kind == proto.KindMsg {
			msgs = append(msgs, e.From+": "+e.Text)
		}
		if ok(raw, e) {
			return msgs
		}
	}
	st.t.Fatalf("no %s in 1000 events", what)
	return nil
}

func caughtUp(raw proto.SSE, _ proto.Event) bool { return raw.Event == "caught-up" }

// A browser and a line member chat in one room; every room event has an
// EPOCH-SEQ id; names are the relay's.
func TestHTTPChat(t *testing.T) {
	s := startServer(t, httpConfig())
	web := newBrowser(t, s)
	j := web.join("web user")
	if j.Room != "lobby" || j.Name != "web user" || len(j.Token) < 22 {
		t.Errorf("joined %+v", j)
	}
	if code, body := newBrowser(t, s).postForm("/api/join", url.Values{"name": {"Web_User"}}); code != http.StatusConflict || !strings.Contains(body, `"error":"name taken`) {
		t.Errorf("a taken name: %d %s", code, body)
	}
	if code, body := newBrowser(t, s).postForm("/api/join", url.Values{"name": {"a,b"}}); code != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
		t.Errorf("a bad name: %d %s", code, body)
	}
	st := web.events("")
	st.until("caught-up", caughtUp)
	nc := join(t, s, "nc")
	st.until("nc's join", func(_ proto.SSE, e proto.Event) bool { return e.Kind == proto.KindJoin && e.From == "nc" })
	web.say("hello from the page")
	if got := nc.messages(1)[0]; got != "web user: hello from the page" {
		t.Errorf("nc got %q", got)
	}
	nc.send("hi page")
	var id string
	got := st.until("nc's message", func(raw proto.SSE, e proto.Event) bool { id = raw.ID; return e.From == "nc" })
	if want := []string{"web user: hello from the page", "nc: hi page"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("page got %q, want %q", got, want)
	}
	if p, err := proto.ParsePoint(id); err != nil || p.Epoch != epochOf(t, s, "lobby") {
		t.Errorf("id %q: %v", id, err)
	}
	web.say("/me waves")
	if got := nc.line(); got != "* web user waves" {
		t.Errorf("nc got %q", got)
	}
	web.say("/quit")
	st.until("the goodbye", func(_ proto.SSE, e proto.Event) bool { return e.Kind == proto.KindNotice && e.Text == "bye" })
	waitFor(t, 5*time.Second, "the name freed", func() bool { return s.lookup("web user") == nil })
	if code, _ := web.postForm("/api/send", url.Values{"token": {web.token}, "text": {"x"}}); code != http.StatusNotFound {
		t.Errorf("send after /quit: %d", code)
	}
}

// TestHTTPMessagesOut: the messages a browser's stream is written count
// in messages_out, each once.
func TestHTTPMessagesOut(t *testing.T) {
	s := startServer(t, httpConfig())
	web := newBrowser(t, s)
	web.join("phone")
	st := web.events("")
	st.until("caught-up", caughtUp)
	nc := join(t, s, "nc")
	nc.send("one", "/me waves", "two")
	st.until("nc's last", func(_ proto.SSE, e proto.Event) bool { return e.Text == "two" })
	if got := s.Stats().MessagesOut; got != 3 { // nc is not written its own
		t.Errorf("messages_out %d, want 3", got)
	}
}

// A stream cut while events come, then resumed from the last id the
// browser read (Last-Event-ID), loses nothing in the window and repeats
// nothing; the member, its name and its token stay meanwhile.
func TestHTTPResume(t *testing.T) {
	s := startServer(t, httpConfig())
	web := newBrowser(t, s)
	web.join("phone")
	nc := join(t, s, "nc")
	st := web.events("")
	st.until("caught-up", caughtUp)
	nc.send("one", "two", "three")
	st.until("two", func(_ proto.SSE, e proto.Event) bool { return e.Text == "two" })
	last := st.last
	st.cancel() // "three" may have been written to the dead stream: it is lost there
	nc.send("four", "five")
	nc.sync("a")
	if s.lookup("phone") == nil {
		t.Fatal("the member left with its stream")
	}
	st = web.events(last)
	var missed string
	got := st.until("caught-up", func(raw proto.SSE, _ proto.Event) bool {
		missed = string(raw.Data)
		return caughtUp(raw, proto.Event{})
	})
	if want := []string{"nc: three", "nc: four", "nc: five"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("resumed with %q, want %q", got, want)
	}
	if missed != `{"missed":3}` {
		t.Errorf("caught-up %s", missed)
	}
	// A new member resumes too: the page rejoining once its token is gone.
	web.say("/quit")
	waitFor(t, 5*time.Second, "the name freed", func() bool { return s.lookup("phone") == nil })
	nc.send("six")
	nc.sync("b")
	web.join("phone", "last_event_id", last)
	st = web.events("")
	got = st.until("caught-up", caughtUp)
	if want := []string{"nc: three", "nc: four", "nc: five", "nc: six"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rejoined with %q, want %q", got, want)
	}
}

// A browser whose stream is gone keeps its name for its token for
// relay.timeouts.http_grace, then keeps nothing.
func TestHTTPGrace(t *testing.T) {
	cfg := httpConfig()
	cfg.Timeouts.HTTPGrace = config.Duration(300 * time.Millisecond)
	s := startServer(t, cfg)
	web := newBrowser(t, s)
	web.join("sleepy")
	st := web.events("")
	st.until("caught-up", caughtUp)
	st.cancel()
	start := time.Now()
	waitFor(t, 5*time.Second, "the grace to pass", func() bool { return s.lookup("sleepy") == nil })
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("dropped after %v, before its grace", d)
	}
	if code, body := web.postForm("/api/send", url.Values{"token": {web.token}, "text": {"x"}}); code != http.StatusNotFound {
		t.Errorf("send after the grace: %d %s", code, body)
	}
	if n := s.Stats().Disconnects["lapsed"]; n != 1 {
		t.Errorf("lapsed disconnects %d", n)
	}
}

// The door's handlers, without a socket: the page's headers, the API's
// refusals, /api/post and /api/stats by address.
func TestHTTPHandlers(t *testing.T) {
	s := startServer(t, httpConfig())
	var d *httpDoor
	for _, x := range s.doors {
		if h, ok := x.(*httpDoor); ok {
			d = h
		}
	}
	h := d.handler(make(chan struct{}))
	do := func(method, target, from string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req := httptest.NewRequest(method, target, body)
		req.RemoteAddr = from
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := do("GET", "/", "127.0.0.1:5000", nil)
	if csp := rec.Header().Get("Content-Security-Policy"); rec.Code != 200 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
		!strings.Contains(rec.Body.String(), `<script src="app.js"`) || !strings.Contains(rec.Body.String(), `name="viewport"`) {
		t.Errorf("page: %d, CSP %q", rec.Code, csp)
	}
	if rec := do("GET", "/app.js", "127.0.0.1:5000", nil); rec.Code != 200 || strings.Contains(rec.Body.String(), "innerHTML") {
		t.Errorf("app.js: %d (or it uses innerHTML)", rec.Code)
	}
	nc := join(t, s, "nc")
	for _, tc := range []struct {
		name, method, target, from string
		form                       url.Values
		hdr                        []string
		code                       int
		body                       string
	}{
		{"cross-site join", "POST", "/api/join", "127.0.0.1:1", url.Values{"name": {"evil"}}, []string{"Sec-Fetch-Site", "cross-site"}, 403,
			`{"error":"cross-origin request refused (Sec-Fetch-Site: cross-site): post from the relay's own page, or from a script that sends no Origin"}`},
		{"cross-origin post", "POST", "/api/post", "127.0.0.1:1", url.Values{"name": {"evil"}, "text": {"x"}}, []string{"Origin", "http://evil.example"}, 403,
			`{"error":"cross-origin request refused (Origin http://evil.example is not example.com): post`},
		{"same-origin send", "POST", "/api/send", "127.0.0.1:1", url.Values{"token": {"nope"}, "text": {"x"}}, []string{"Origin", "http://example.com", "Sec-Fetch-Site", "same-origin"}, 404, `"error":"unknown token`},
		{"post from outside udp_allow", "POST", "/api/post", "203.0.113.9:1", url.Values{"name": {"nas"}, "text": {"x"}}, nil, 403, `"error":"203.0.113.9 is not in relay.udp_allow"`},
		{"post without text", "POST", "/api/post", "192.168.1.2:1", url.Values{"name": {"nas"}}, nil, 400, `"error":"empty text"`},
		{"post in a held name", "POST", "/api/post", "192.168.1.2:1", url.Values{"name": {"NC"}, "text": {"x"}}, nil, 409, `name taken`},
		{"post", "POST", "/api/post", "192.168.1.2:1", url.Values{"name": {"nas"}, "text": {"backup done"}}, nil, 204, ""},
		{"body too large", "POST", "/api/join", "127.0.0.1:1", url.Values{"name": {strings.Repeat("x", 5000)}}, nil, 413, `"error"`},
		{"send with an unknown token", "POST", "/api/send", "127.0.0.1:1", url.Values{"token": {"nope"}, "text": {"x"}}, nil, 404, `"error":"unknown token`},
		{"events with an unknown token", "GET", "/api/events?token=nope", "127.0.0.1:1", nil, nil, 404, `"error":"unknown token`},
		{"join with a GET", "GET", "/api/join", "127.0.0.1:1", nil, nil, 405, ""},
		{"stats from the LAN", "GET", "/api/stats", "192.168.1.2:1", nil, nil, 403, `not in relay.stats_allow`},
		{"stats", "GET", "/api/stats", "[::1]:1", nil, nil, 200, `"doors":{"line":1},"rooms":{"lobby":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(tc.method, tc.target, tc.from, tc.form, tc.hdr...)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("%d %q, want %d and %q", rec.Code, rec.Body.String(), tc.code, tc.body)
			}
			if ct := rec.Header().Get("Content-Type"); rec.Code >= 400 && (ct != "application/json" || !json.Valid(rec.Body.Bytes())) {
				t.Errorf("an error as %q: %q, want JSON", ct, rec.Body.String())
			}
		})
	}
	if got := nc.messages(1)[0]; got != "nas@http: backup done" {
		t.Errorf("nc got %q", got)
	}
}

// A relay shutting down tells a browser why, on its stream.
func TestHTTPShutdown(t *testing.T) {
	s := startServer(t, httpConfig())
	web := newBrowser(t, s)
	web.join("web")
	st := web.events("")
	st.until("caught-up", caughtUp)
	done := make(chan struct{})
	go func() {
		defer close(done)
		shutdownNow(t, s)
	}()
	st.until("the goodbye", func(_ proto.SSE, e proto.Event) bool {
		return e.Kind == proto.KindError && e.Text == "disconnected: relay shutting down"
	})
	<-done
}

// The door's own HTTP/1.1 server: requests kept alive on one connection,
// HEAD, a header over the bound, a connection over the address's limit.
func TestHTTPServer(t *testing.T) {
	cfg := httpConfig()
	cfg.Limits.MaxClientsPerIP = 2
	s := startServer(t, cfg)
	addr := s.Addr("http").String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET /style.css HTTP/1.1\r\nHost: %s\r\n\r\nHEAD / HTTP/1.1\r\nHost: %s\r\n\r\n", addr, addr)
	for _, want := range []string{"text/css; charset=utf-8", "text/html; charset=utf-8"} {
		req := &http.Request{Method: "GET"}
		if strings.HasPrefix(want, "text/html") {
			req.Method = "HEAD" // its answer has the length of the page, and no body
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != want || resp.Close {
			t.Errorf("%s: %s, %q, close %v", want, resp.Status, resp.Header.Get("Content-Type"), resp.Close)
		}
		if want == "text/css; charset=utf-8" && (len(body) == 0 || resp.ContentLength != int64(len(body))) {
			t.Errorf("css: %d bytes, length %d", len(body), resp.ContentLength)
		}
		if want == "text/html; charset=utf-8" && len(body) != 0 {
			t.Errorf("HEAD answered with a body of %d bytes", len(body))
		}
	}
	// A second connection of the address is served, a third refused.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c2, "GET /api/events?token=x HTTP/1.1\r\nHost: %s\r\nX-Big: %s\r\n\r\n", addr, strings.Repeat("x", 10<<10))
	if resp, err := http.ReadResponse(bufio.NewReader(c2), nil); err != nil {
		t.Errorf("a header over 8 KiB: %v", err)
	} else if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || resp.Header.Get("Content-Type") != "application/json" ||
		strings.TrimSpace(string(body)) != `{"error":"request headers too large: at most 8192 bytes, the request line included"}` {
		t.Errorf("a header over 8 KiB: %s %q %s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	waitFor(t, 5*time.Second, "the big header's connection to end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 1
	})
	c3, _ := net.Dial("tcp", addr)
	defer c3.Close()
	c4, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	c4.SetDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c4), nil); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a third connection: %v %v", resp, err)
	}
}

// TestHTTPHeaderBoundPipelined: a request that follows another on a
// kept-alive connection is held to the same 8 KiB of headers as the
// first: what is already read of it counts against them.
func TestHTTPHeaderBoundPipelined(t *testing.T) {
	s := startServer(t, httpConfig())
	addr := s.Addr("http").String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	big := strings.Repeat("x", 9<<10) // over the bound alone, under twice it
	fmt.Fprintf(c, "HEAD / HTTP/1.1\r\nHost: %s\r\n\r\nHEAD / HTTP/1.1\r\nHost: %s\r\nX-Big: %s\r\n\r\n", addr, addr, big)
	br := bufio.NewReader(c)
	for i, want := range []int{http.StatusOK, http.StatusRequestHeaderFieldsTooLarge} {
		resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
		if err != nil {
			t.Fatalf("answer %d: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("answer %d: %s, want %d", i+1, resp.Status, want)
		}
	}
}
