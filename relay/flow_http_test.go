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
