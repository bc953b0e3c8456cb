//go:build !minimal

package relay

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"roomrelay/proto"
)

// TestHTTPSendBudget: a browser's lines count toward the same budget as
// a line member's; a request cannot be paced, so past it the rest of
// the text is refused with 429 and an error event, nothing after it sent.
func TestHTTPSendBudget(t *testing.T) {
	cfg := httpConfig()
	cfg.Limits.Rate = 0.001 // no refill within the test
	cfg.Limits.Burst = 3
	s := startServer(t, cfg)
	nc := join(t, s, "nc")
	web := newBrowser(t, s)
	web.join("web")
	st := web.events("")
	st.until("caught-up", caughtUp)
	code, body := web.postForm("/api/send", url.Values{"token": {web.token}, "text": {"one\ntwo\nthree\nfour\nfive"}})
	if code != http.StatusTooManyRequests || !strings.Contains(body, `not sent from \"four\" on`) {
		t.Errorf("over the budget: %d %s", code, body)
	}
	st.until("the refusal", func(_ proto.SSE, e proto.Event) bool {
		return e.Kind == proto.KindError && strings.Contains(e.Text, "slow down")
	})
	if got := nc.messages(3); fmt.Sprint(got) != "[web: one web: two web: three]" {
		t.Errorf("nc got %q", got)
	}
	for _, l := range nc.sync("after") {
		if strings.HasPrefix(l, "web: ") {
			t.Errorf("nc got %q past the budget", l)
		}
	}
}

// TestHTTPSendAsLine: a browser's lines go the line door's way (one
// budget, the same refusal of a line too long, which counts in it, the
// same commands); past the budget the browser's request is refused where
// the line member would be paced. The line member's hello is a line of
// its budget, a browser's join is not: the browser says one line more
// first.
func TestHTTPSendAsLine(t *testing.T) {
	cfg := httpConfig()
	cfg.Limits.Rate = 0.001 // no refill within the test
	cfg.Limits.Burst = 4
	cfg.Limits.MaxLineBytes = 64
	s := startServer(t, cfg)
	nc := join(t, s, "nc")
	long := strings.Repeat("x", cfg.Limits.MaxLineBytes+1)

	lin := join(t, s, "lin")
	lin.send(long, "/me waves", "ok", "more")
	tooLong := lin.until("the refusal of the long line", func(l string) bool { return strings.HasPrefix(l, "!!! ") })
	if got := nc.messages(2); fmt.Sprint(got) != "[* lin waves lin: ok]" {
		t.Errorf("from the line door, nc got %q", got)
	}

	web := newBrowser(t, s)
	web.join("web")
	st := web.events("")
	st.until("caught-up", caughtUp)
	code, body := web.postForm("/api/send", url.Values{"token": {web.token}, "text": {"hi\n" + long + "\n/me waves\nok\nmore"}})
	if code != http.StatusTooManyRequests || !strings.Contains(body, `not sent from \"more\" on`) {
		t.Errorf("over the budget: %d %s", code, body)
	}
	st.until("the refusal of the long line", func(_ proto.SSE, e proto.Event) bool {
		if e.Kind != proto.KindError {
			return false
		}
		if got := "!!! " + e.Text; got != tooLong {
			t.Errorf("the browser's long line: %q; the line door's: %q", got, tooLong)
		}
		return true
	})
	if got := nc.messages(3); fmt.Sprint(got) != "[web: hi * web waves web: ok]" {
		t.Errorf("from the browser, nc got %q", got)
	}
	for _, l := range nc.sync("after") {
		if strings.HasSuffix(l, "more") {
			t.Errorf("nc got %q past the budget", l)
		}
	}
}
