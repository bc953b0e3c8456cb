package proto

import (
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSSE(t *testing.T) {
	var b []byte
	b = AppendSSE(b, &SSE{ID: "k3f9ab-42", Data: []byte(`{"type":"msg","seq":42}` + "\n")})
	b = AppendSSEComment(b, "keep-alive")
	b = AppendSSERetry(b, 1500*time.Millisecond)
	b = AppendSSE(b, &SSE{Event: "caught-up", Data: []byte("a\nb")})
	want := "id: k3f9ab-42\ndata: {\"type\":\"msg\",\"seq\":42}\n\n: keep-alive\n\nretry: 1500\n\nevent: caught-up\ndata: a\ndata: b\n\n"
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	r := NewSSEReader(bytes.NewReader(b), 1024)
	var got []SSE
	for range 3 {
		ev, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	wantEvs := []SSE{{ID: "k3f9ab-42", Data: []byte(`{"type":"msg","seq":42}`)}, {Event: "caught-up", Data: []byte("a\nb")}}
	if diff := cmp.Diff(wantEvs, got); diff != "" {
		t.Errorf("read (-want +got):\n%s", diff)
	}
	if _, err := NewSSEReader(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 50).Read(); err == nil {
		t.Error("over-long line read")
	}
}

// TestSSEAt: an event's id given as a point is written as its text would
// be, and without an allocation (the browser door writes one per event
// per member).
func TestSSEAt(t *testing.T) {
	data := []byte(`{"type":"msg","seq":42}` + "\n")
	at := Point{Epoch: "k3f9ab", Seq: 42}
	want := AppendSSE(nil, &SSE{ID: at.String(), Data: data})
	if got := AppendSSE(nil, &SSE{At: at, Data: data}); !bytes.Equal(got, want) {
		t.Errorf("with At: %q, want %q", got, want)
	}
	if got := AppendSSE(nil, &SSE{At: Point{Seq: 42}, Data: data}); bytes.HasPrefix(got, []byte("id:")) {
		t.Errorf("a point without an epoch: %q, want no id", got)
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendSSE(buf[:0], &SSE{At: at, Data: data}) }); n != 0 {
		t.Errorf("%v allocations an event, want none", n)
	}
}

func TestJoinForm(t *testing.T) {
	j, err := ParseJoin(url.Values{"name": {" élodie "}, "room": {"#kitchen"}, "last_event_id": {"k3f9ab-7"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(JoinForm{Name: "élodie", Room: "kitchen", Since: &Point{"k3f9ab", 7}}, j); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []url.Values{{}, {"name": {"a,b"}}, {"name": {"bob"}, "room": {"a b c"}}, {"name": {"bob"}, "last_event_id": {"x-"}}} {
		if _, err := ParseJoin(bad); err == nil {
			t.Errorf("ParseJoin(%v) took it", bad)
		}
	}
	b := AppendJoined(nil, &Joined{Token: "t\"", Name: "山田", Room: "lobby", Seq: 9})
	var back Joined
	if err := json.Unmarshal(b, &back); err != nil || back != (Joined{Token: "t\"", Name: "山田", Room: "lobby", Seq: 9}) {
		t.Errorf("%s decodes to %+v, %v", b, back, err)
	}
	var e struct{ Error string }
	if err := json.Unmarshal(AppendError(nil, "bad \x01 name"), &e); err != nil || e.Error != "bad \x01 name" {
		t.Errorf("error answer decodes to %q, %v", e.Error, err)
	}
}

// Round trip: an event encoded and read back is the same event, its data
// without a final line end, line ends made LF; no input makes the reader
// fail other than by a line too long or a cut stream.
func FuzzSSE(f *testing.F) {
	f.Add("k3f9ab-42", "", []byte(`{"type":"msg"}`+"\n"))
	f.Add("", "caught-up", []byte("a\r\nb\n\nc"))
	f.Add("1\n2", "x\ry", []byte(""))
	f.Fuzz(func(t *testing.T, id, name string, data []byte) {
		b := AppendSSE(nil, &SSE{ID: id, Event: name, Data: data})
		ev, err := NewSSEReader(bytes.NewReader(b), len(b)).Read()
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		want := SSE{Data: bytes.ReplaceAll(bytes.TrimSuffix(data, []byte("\n")), []byte("\r\n"), []byte("\n"))}
		if !strings.ContainsAny(id, "\r\n\x00") {
			want.ID = id
		}
		if !strings.ContainsAny(name, "\r\n") {
			want.Event = name
		}
		if bytes.ContainsRune(want.Data, '\r') || strings.ContainsRune(want.Event, '\r') || strings.ContainsRune(want.ID, '\r') {
			return // a lone CR ends a line for EventSource; the relay's ids, names and JSON data hold none
		}
		if want.Event == "" && ev.Event != "" || want.ID != ev.ID || want.Event != ev.Event || !bytes.Equal(want.Data, ev.Data) {
			t.Errorf("%q read back as %+v, want %+v", b, ev, want)
		}
		NewSSEReader(bytes.NewReader(data), 64).Read()
	})
}
