package store

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"roomrelay/internal/fmtlite"
	"time"

	"roomrelay/proto"
)

// A segment is a sequence of records, each framed as
//
//	length   uint32, little endian: the bytes of the payload
//	checksum uint32, little endian: CRC-32C (Castagnoli) of the payload
//	payload  its type, one byte, then its fields
//
// and the payloads, strings written as a uvarint length and the bytes:
//
//	'h' header, first in every segment: flags byte (flagAlways: every
//	    event was synced before it was delivered), epoch string, room string
//	'e' event: kind byte, seq uvarint, time varint (Unix milliseconds,
//	    0 for none), from, to and text strings
//	'c' closed: the relay stopped cleanly; last seq uvarint
//	'r' reserved: the room may hand out sequence numbers up to this one,
//	    uvarint; written and synced before it hands out a higher one
//
// A record is accepted only whole and with its checksum right; the first
// one that is not ends what is read of its segment.

const (
	recHeader  = 'h'
	recEvent   = 'e'
	recClosed  = 'c'
	recReserve = 'r'

	flagAlways = 1 << 0

	frameHead = 8
	// maxPayload bounds a record read back, so a corrupt length does not
	// allocate: far more than an event of the longest line can hold.
	maxPayload = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// record is one decoded record.
type record struct {
	typ   byte
	flags byte
	epoch string
	room  string
	ev    proto.Event // recEvent; Seq also for recClosed and recReserve
}

// appendFrame frames the payload that add appends to dst.
func appendFrame(dst []byte, add func([]byte) []byte) []byte {
	at := len(dst)
	dst = append(dst, make([]byte, frameHead)...)
	dst = add(dst)
	payload := dst[at+frameHead:]
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[at+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// appendHeader appends a segment's header record.
func appendHeader(dst []byte, flags byte, epoch, room string) []byte {
	return appendFrame(dst, func(b []byte) []byte {
		return appendString(appendString(append(b, recHeader, flags), epoch), room)
	})
}

// appendEvent appends an event's record.
//
// (Not inlined: one copy of it and its closure in the binary.)
//
//go:noinline
func appendEvent(dst []byte, e *proto.Event) []byte {
	return appendFrame(dst, func(b []byte) []byte {
		b = binary.AppendUvarint(append(b, recEvent, byte(e.Kind)), e.Seq)
		var ms int64
		if !e.Time.IsZero() {
			ms = e.Time.UnixMilli()
		}
		b = binary.AppendVarint(b, ms)
		return appendString(appendString(appendString(b, e.From), e.To), e.Text)
	})
}

// appendClosed appends the record of a clean stop after event last.
func appendClosed(dst []byte, last uint64) []byte {
	return appendFrame(dst, func(b []byte) []byte { return binary.AppendUvarint(append(b, recClosed), last) })
}

// appendReserve appends the record of a reservation up to seq.
//
// (Not inlined, as appendEvent.)
//
//go:noinline
func appendReserve(dst []byte, seq uint64) []byte {
	return appendFrame(dst, func(b []byte) []byte { return binary.AppendUvarint(append(b, recReserve), seq) })
}

// errShort is a record cut off by the end of its segment: a torn write.
var errShort = errors.New("record cut short")

// readRecord decodes the record at the start of b and returns its length
// in b.
func readRecord(b []byte) (record, int, error) {
	if len(b) < frameHead {
		return record{}, 0, errShort
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxPayload {
		return record{}, 0, fmtlite.Errorf("bad record length %d", n)
	}
	if uint64(len(b)-frameHead) < uint64(n) {
		return record{}, 0, errShort
	}
	payload := b[frameHead : frameHead+int(n)]
	if sum := crc32.Checksum(payload, castagnoli); sum != binary.LittleEndian.Uint32(b[4:]) {
		return record{}, 0, fmtlite.Errorf("bad checksum %08x", sum)
	}
	r, err := decodePayload(payload)
	return r, frameHead + int(n), err
}

// decodePayload reads a record's payload; every field must be there and
// nothing after them.
func decodePayload(p []byte) (record, error) {
	d := decoder{b: p[1:]}
	r := record{typ: p[0]}
	switch r.typ {
	case recHeader:
		r.flags = d.byte()
		r.epoch = d.string(proto.MaxEpoch)
		r.room = d.string(proto.MaxRoomBytes)
	case recEvent:
		r.ev.Kind = proto.Kind(d.byte())
		r.ev.Seq = d.uvarint()
		if ms := d.varint(); ms != 0 {
			r.ev.Time = time.UnixMilli(ms).UTC()
		}
		r.ev.From = d.string(maxPayload)
		r.ev.To = d.string(maxPayload)
		r.ev.Text = d.string(maxPayload)
		if d.err == nil && (r.ev.Seq == 0 || r.ev.Kind == 0) {
			d.err = errors.New("event without a kind or a seq")
		}
	case recClosed, recReserve:
		r.ev.Seq = d.uvarint()
	default:
		return r, fmtlite.Errorf("unknown record type %q", r.typ)
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmtlite.Errorf("%d bytes after a %q record", len(d.b), r.typ)
	}
	return r, d.err
}

// decoder reads fields until its first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmtlite.Errorf("bad %s in record", what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(max int) string {
	n := d.uvarint()
	if n > uint64(len(d.b)) || n > uint64(max) {
		d.fail("string length")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
