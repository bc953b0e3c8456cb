//go:build !minimal

package relay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"roomrelay/proto"
)

var screenshot = flag.String("screenshot", "", "TestBrowser: save a phone-size screenshot of the page here (docs/browser.png)")

// webDriver is a WebDriver session (W3C WebDriver: HTTP and JSON) of a
// chromedriver this test started.
type webDriver struct {
	t    testing.TB
	base string // http://127.0.0.1:PORT/session/ID
	c    *http.Client
}

// call sends a WebDriver command and decodes its "value" into out (when
// not nil).
func (wd *webDriver) call(method, path string, in, out any) {
	wd.t.Helper()
	if err := wdCall(wd.c, method, wd.base+path, in, out); err != nil {
		wd.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
}

func wdCall(c *http.Client, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %.300s", resp.Status, b)
	}
	var v struct{ Value json.RawMessage }
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("%.300s: %w", b, err)
	}
	if out != nil {
		return json.Unmarshal(v.Value, out)
	}
	return nil
}

// startChrome starts chromedriver and a headless Chromium session with a
// phone-size screen, or skips the test when chromedriver is not installed.
func startChrome(t *testing.T) *webDriver {
	t.Helper()
	driver, err := exec.LookPath("chromedriver")
	if err != nil {
		t.Skip("chromedriver is not installed (Debian: apt-get install chromium chromium-driver); the browser test is skipped")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(driver, fmt.Sprintf("--port=%d", port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	root := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, 20*time.Second, "chromedriver to be ready", func() bool {
		var st struct{ Ready bool }
		return wdCall(c, "GET", root+"/status", nil, &st) == nil && st.Ready
	})
	opts := map[string]any{
		"args": []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir()},
		"mobileEmulation": map[string]any{"deviceMetrics": map[string]any{"width": 390, "height": 720, "pixelRatio": 2}},
	}
	if bin, err := exec.LookPath("chromium"); err == nil {
		opts["binary"] = bin
	}
	var sess struct{ SessionID string }
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{"browserName": "chrome", "goog:chromeOptions": opts,
		"acceptInsecureCerts": true}}} // the HTTPS door's self-signed certificate
	if err := wdCall(c, "POST", root+"/session", caps, &sess); err != nil {
		t.Fatalf("new session: %v", err)
	}
	wd := &webDriver{t: t, base: root + "/session/" + sess.SessionID, c: c}
	t.Cleanup(func() { wdCall(c, "DELETE", wd.base, nil, nil) })
	return wd
}

// find returns the element matching a CSS selector.
func (wd *webDriver) find(css string) string {
	wd.t.Helper()
	var el map[string]string
	wd.call("POST", "/element", map[string]string{"using": "css selector", "value": css}, &el)
	for _, id := range el {
		return id
	}
	wd.t.Fatalf("no element %s", css)
	return ""
}

func (wd *webDriver) typeIn(css, text string) {
	wd.t.Helper()
	wd.call("POST", "/element/"+wd.find(css)+"/value", map[string]string{"text": text}, nil)
}

func (wd *webDriver) click(css string) {
	wd.t.Helper()
	wd.call("POST", "/element/"+wd.find(css)+"/click", map[string]any{}, nil)
}

// text returns the text shown in the element with that id.
func (wd *webDriver) text(id string) string {
	wd.t.Helper()
	var s string
	wd.call("POST", "/execute/sync", map[string]any{"script": "return document.getElementById(arguments[0]).innerText", "args": []any{id}}, &s)
	return s
}

// waitText waits until the element with that id shows want.
func (wd *webDriver) waitText(id, want string) {
	wd.t.Helper()
	var got string
	defer func() {
		if wd.t.Failed() {
			wd.t.Logf("#%s shows %q", id, got)
		}
	}()
	waitFor(wd.t, 15*time.Second, fmt.Sprintf("#%s to show %q", id, want), func() bool {
		got = wd.text(id)
		return strings.Contains(got, want)
	})
}

// waitState waits until the state line says exactly want.
func (wd *webDriver) waitState(want string) {
	wd.t.Helper()
	var got string
	defer func() {
		if wd.t.Failed() {
			wd.t.Logf("the state line says %q", got)
		}
	}()
	waitFor(wd.t, 15*time.Second, fmt.Sprintf("the state line to say %q", want), func() bool {
		got = wd.text("state")
		return got == want
	})
}

// waitLast waits until the log's last line shows want and is in view,
// wholly inside the log's box.
func (wd *webDriver) waitLast(want string) {
	wd.t.Helper()
	var last struct {
		Text    string
		Visible bool
	}
	defer func() {
		if wd.t.Failed() {
			wd.t.Logf("the log's last line: %+v", last)
		}
	}()
	const script = `const log = document.getElementById("log"), e = log.lastElementChild;
		if (!e) return {text: "", visible: false};
		const a = log.getBoundingClientRect(), b = e.getBoundingClientRect();
		return {text: e.innerText, visible: b.top >= a.top - 1 && b.bottom <= a.bottom + 1};`
	waitFor(wd.t, 15*time.Second, fmt.Sprintf("the log's last line, %q, in view", want), func() bool {
		wd.call("POST", "/execute/sync", map[string]any{"script": script, "args": []any{}}, &last)
		return strings.Contains(last.Text, want) && last.Visible
	})
}

// browserChat opens the page at url in wd, joins as Ana, and has Ana and
// nc (a line member in lobby) say text and "hello Ana" to each other.
func browserChat(t *testing.T, wd *webDriver, nc *tconn, url, text string) {
	t.Helper()
	wd.call("POST", "/url", map[string]string{"url": url}, nil)
	wd.typeIn("#name", "Ana")
	wd.click("#login button")
	wd.waitText("state", "caught up")
	nc.until("Ana's join", func(l string) bool { return l == "--- Ana joined lobby" })
	wd.typeIn("#text", text)
	wd.click("#say button")
	if got := nc.messages(1)[0]; got != "Ana: "+text {
		t.Errorf("nc got %q", got)
	}
	nc.send("hello Ana")
	wd.waitText("log", "nc: hello Ana")
}

// A browser and an nc-style line member chat in one room through the
// page, in headless Chromium; the page catches up after its stream is cut.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: runs Chromium")
	}
	s := startServer(t, httpConfig())
	wd := startChrome(t)
	nc := join(t, s, "nc")
	nc.send("before Ana came")
	nc.sync("before")
	browserChat(t, wd, nc, "http://"+s.Addr("http").String()+"/", "hello from the phone <b>not bold</b>")
	// A first join's replay is the room's past, not messages missed.
	if got := wd.text("state"); got != "caught up, 1 earlier message shown" {
		t.Errorf("after the first join the page says %q", got)
	}
	wd.waitText("here", "Ana")
	wd.waitText("log", "Ana: hello from the phone <b>not bold</b>") // as text, not HTML

	// A message without a text (as an older relay's store may hold) is
	// shown empty.
	rm, err := s.room("lobby")
	if err != nil {
		t.Fatal(err)
	}
	rm.post(&proto.Event{Kind: proto.KindMsg, From: "old", Time: now()}, 0, s.maxLag())
	nc.send("after the empty one")
	wd.waitText("log", "nc: after the empty one")
	if log := wd.text("log"); !strings.Contains(log, "old:") || strings.Contains(log, "undefined") {
		t.Errorf("a message without a text:\n%s", log)
	}

	// Cut the stream and hold its reconnection while nc talks.
	hold := make(chan struct{})
	eventsHook = func() {
		select {
		case <-hold:
		case <-time.After(20 * time.Second):
		}
	}
	defer func() { eventsHook = nil }()
	var d *httpDoor
	for _, x := range s.doors {
		if h, ok := x.(*httpDoor); ok {
			d = h
		}
	}
	d.mu.Lock()
	for _, h := range d.byToken {
		h.takeOver()
	}
	d.mu.Unlock()
	wd.waitText("state", "reconnecting")
	nc.send("while you slept", "and again")
	nc.sync("slept")
	close(hold)
	wd.waitText("state", "caught up, 2 missed messages shown")
	wd.waitText("log", "nc: while you slept")
	wd.waitText("log", "nc: and again")
	if log := wd.text("log"); strings.Count(log, "hello Ana") != 1 {
		t.Errorf("a message shown twice after the resume:\n%s", log)
	}
	if s.lookup("Ana") == nil {
		t.Error("Ana left while her stream was cut")
	}
	if *screenshot != "" {
		var b64 string
		wd.call("GET", "/screenshot", nil, &b64)
		png, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A reload keeps the member (its token is kept) and resumes after the
	// last event shown.
	wd.call("POST", "/refresh", map[string]any{}, nil)
	wd.waitText("state", "caught up, 0 missed messages shown")
	nc.send("after the reload")
	wd.waitText("log", "nc: after the reload")
	if log := wd.text("log"); strings.Contains(log, "hello Ana") || strings.Contains(log, "name taken") {
		t.Errorf("after the reload:\n%s", log)
	}
}

// TestBrowserSecrets: on a relay with a password, the page asks for it
// when the relay refuses the name without it, and again after a wrong one;
// a room with a key makes it ask for the key, which takes it in.
func TestBrowserSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: runs Chromium")
	}
	s, _ := startAuth(t, authConfig())
	wd := startChrome(t)
	wd.call("POST", "/url", map[string]string{"url": "http://" + s.Addr("http").String() + "/"}, nil)
	wd.typeIn("#name", "Ana")
	wd.click("#login button")
	wd.waitText("loginerr", "this relay needs a password: type it above, then press Enter")
	wd.typeIn("#password", "not it")
	wd.click("#login button")
	wd.waitText("loginerr", "wrong password")
	forgive(s)
	wd.typeIn("#password", testPassword)
	wd.click("#login button")
	wd.waitText("state", "caught up")
	wd.waitText("room", "lobby")

	// More lines than the phone-size log shows: the key form, opening,
	// must not push the newest out of view.
	rm, err := s.room("lobby")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		rm.post(&proto.Event{Kind: proto.KindMsg, From: "nc", Text: fmt.Sprint("line ", i), Time: now()}, 0, s.maxLag())
	}
	wd.waitLast("nc: line 29")
	wd.typeIn("#text", "/join kitchen")
	wd.click("#say button")
	wd.waitText("keylabel", "Key of kitchen")
	wd.waitLast("cannot join kitchen: it has a key")
	wd.typeIn("#keytext", testKey)
	wd.click("#key button[type=submit]")
	wd.waitText("room", "kitchen")
	wd.waitText("log", "topic of kitchen: family only")
	wd.waitLast("Ana joined kitchen")
	wd.waitState("connected") // what lobby's stream caught up on is no news of kitchen
	if m := s.lookup("Ana"); m == nil || s.Stats().BadSecret != 1 {
		t.Errorf("Ana: %v; %d wrong secrets counted, want 1", m, s.Stats().BadSecret)
	}
}
