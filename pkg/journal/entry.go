package journal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/herdkit/herd/pkg/store"
)

// Entry types.
const (
	entryIncarnation = 'I' // the incarnation of the change numbers that follow
	entryRecord      = 'R' // a stored record and its change number
	entryWatermark   = 'W' // what this server holds of a neighbour's changes
	entryEnd         = 'E' // a complete snapshot, or a segment closed cleanly
)

// headerSize is the CRC-32C of the payload and the payload's length, both
// little-endian uint32s, before every payload.
const headerSize = 8

// maxPayload bounds an entry: a record of the longest accepted line, with
// room to spare. A larger length is corruption.
const maxPayload = 2 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// entry is one decoded journal entry. A record's text and origin point
// into the payload it was decoded from, valid until the next entry is
// read: a store copies them (store.Loader), and record makes strings of
// them for whatever keeps them.
type entry struct {
	kind   byte
	inc    uint64          // entryIncarnation, entryWatermark
	seq    uint64          // entryRecord, entryWatermark, entryEnd
	text   []byte          // entryRecord: the client id, position and time
	origin []byte          // entryRecord
	recv   int64           // entryRecord
	hops   uint8           // entryRecord
	peer   string          // entryWatermark
	mark   store.Watermark // entryWatermark
}

// record returns a record entry's record, with strings of its own.
func (e *entry) record() store.Record {
	return store.Record{Text: string(e.text), Origin: string(e.origin), Recv: e.recv, Hops: e.hops}
}

// appendEntry frames a payload with its checksum and length.
func appendEntry(dst []byte, payload func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	dst = payload(dst)
	p := dst[start+headerSize:]
	binary.LittleEndian.PutUint32(dst[start:], crc32.Checksum(p, castagnoli))
	binary.LittleEndian.PutUint32(dst[start+4:], uint32(len(p)))
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendIncarnation(dst []byte, inc uint64) []byte {
	return appendEntry(dst, func(b []byte) []byte {
		return binary.LittleEndian.AppendUint64(append(b, entryIncarnation), inc)
	})
}

func appendRecord(dst []byte, seq uint64, r store.Packed) []byte {
	return appendEntry(dst, func(b []byte) []byte {
		b = append(b, entryRecord)
		b = binary.AppendUvarint(b, seq)
		b = binary.AppendVarint(b, r.Recv)
		b = append(b, r.Hops)
		b = appendString(b, r.Origin)
		b = binary.AppendUvarint(b, uint64(r.TextLen()))
		return r.AppendText(b)
	})
}

func appendWatermark(dst []byte, peer string, w store.Watermark) []byte {
	return appendEntry(dst, func(b []byte) []byte {
		b = binary.LittleEndian.AppendUint64(append(b, entryWatermark), w.Incarnation)
		b = binary.AppendUvarint(b, w.Seq)
		return appendString(b, peer)
	})
}

func appendEnd(dst []byte, seq uint64) []byte {
	return appendEntry(dst, func(b []byte) []byte { return binary.AppendUvarint(append(b, entryEnd), seq) })
}

var errCorrupt = errors.New("corrupt entry")

// decode parses one payload.
func decode(p []byte) (entry, error) {
	if len(p) == 0 {
		return entry{}, errCorrupt
	}
	e := entry{kind: p[0]}
	d := decoder{b: p[1:]}
	switch e.kind {
	case entryIncarnation:
		e.inc = d.uint64()
	case entryRecord:
		e.seq = d.uvarint()
		e.recv = d.varint()
		e.hops = d.byte()
		e.origin, e.text = d.bytes(), d.bytes()
		if d.err == nil && (len(e.origin) == 0 || bytes.Count(e.text, []byte{' '}) != 2 || bytes.HasPrefix(e.text, []byte{' '})) {
			d.err = errCorrupt
		}
	case entryWatermark:
		e.mark.Incarnation = d.uint64()
		e.mark.Seq = d.uvarint()
		e.peer = string(d.bytes())
	case entryEnd:
		e.seq = d.uvarint()
	default:
		return entry{}, errCorrupt
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	return e, d.err
}

// decoder reads fields from a payload and remembers the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errCorrupt, nil }

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// bytes returns a field of a length and bytes, pointing into the payload.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

// readError is a failure to read a file, as opposed to bad content: it
// says nothing about what the file holds.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// readEntries calls fn for every entry of r in order. It returns the
// offset just after the last whole, valid entry, and an error if the data
// stops being valid before the end: a torn tail (a partial entry) or
// corruption (a bad checksum, length or field). fn's errors stop the read
// the same way. A failure of r itself is a *readError.
func readEntries(r io.Reader, fn func(entry) error) (good int64, err error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var hdr [headerSize]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return good, nil
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				return good, &readError{err}
			}
			return good, fmt.Errorf("torn entry header at %d", good)
		}
		sum, n := binary.LittleEndian.Uint32(hdr[:]), binary.LittleEndian.Uint32(hdr[4:])
		if n == 0 || n > maxPayload {
			return good, fmt.Errorf("bad entry length %d at %d", n, good)
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				return good, &readError{err}
			}
			return good, fmt.Errorf("torn entry at %d", good)
		}
		if crc32.Checksum(payload, castagnoli) != sum {
			return good, fmt.Errorf("checksum mismatch at %d", good)
		}
		e, err := decode(payload)
		if err != nil {
			return good, fmt.Errorf("malformed entry at %d", good)
		}
		if err := fn(e); err != nil {
			return good, fmt.Errorf("entry at %d: %w", good, err)
		}
		good += headerSize + int64(n)
	}
}
