//go:build minimal && linux

package listen

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The minimal build looks up no names: a host that is no IP address (an
// invalid literal here, so that nothing is looked up in any build) is an
// error, not a retry.
func TestTCPNoNames(t *testing.T) {
	_, err := TCP("999.0.0.1:0", -1)
	if err == nil || !strings.Contains(err.Error(), "looks up no names") {
		t.Errorf("999.0.0.1:0: %v, want an error saying names are not looked up", err)
	}
}

func TestDialNoNames(t *testing.T) {
	_, err := Dial(context.Background(), "999.0.0.1:1", time.Second)
	if err == nil || !strings.Contains(err.Error(), "looks up no names") {
		t.Errorf("999.0.0.1:1: %v, want an error saying names are not looked up", err)
	}
}
