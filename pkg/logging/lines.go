package logging

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Lines writes the protocol log: one record per client line, with the
// connection, the line and its whole reply.
type Lines interface {
	// Line logs input lines and their replies at time t ("line"
	// records); key and value, when key is not empty, say more (the parse
	// error, the places status).
	Line(t time.Time, conn uint64, remote string, in, out []byte, key, value string)
	// IAMATs logs the replies to IAMATs read at time t whose lines are
	// each "IAMAT" and the last three fields of its reply, separated by
	// single spaces ("iamat" records, without "in"): a reply holds its
	// line, so the line is not written twice.
	IAMATs(t time.Time, conn uint64, remote string, out []byte)
}

// The protocol log writes a record per request, as many as the server
// answers, so it has a fast path: with the JSON format it formats its one
// kind of record by hand, into the same bytes slog's JSONHandler would
// write (TestJSONLinesMatchSlog), without slog's per-record caller lookup,
// attribute handling and string copies. The text format goes through slog.

// jsonLines is the JSON fast path.
type jsonLines struct {
	sinks  []io.Writer
	prefix []byte // `,"node":"Hill"` from With, before the record's own attributes
}

func (j *jsonLines) Line(t time.Time, conn uint64, remote string, in, out []byte, key, value string) {
	j.write(t, "line", conn, remote, in, true, out, key, value)
}

func (j *jsonLines) IAMATs(t time.Time, conn uint64, remote string, out []byte) {
	j.write(t, "iamat", conn, remote, nil, false, out, "", "")
}

// write formats one record, with "in" when withIn, and writes it.
func (j *jsonLines) write(t time.Time, msg string, conn uint64, remote string, in []byte, withIn bool, out []byte, key, value string) {
	b := getBuffer()
	buf := append(*b, `{"time":"`...)
	buf = appendTime(buf, t)
	buf = append(buf, `","level":"INFO","msg":"`...)
	buf = append(buf, msg...)
	buf = append(buf, '"')
	buf = append(buf, j.prefix...)
	buf = append(buf, `,"component":"client","conn":`...)
	buf = strconv.AppendUint(buf, conn, 10)
	buf = append(buf, `,"remote":"`...)
	buf = appendEscaped(buf, remote)
	if withIn {
		buf = append(buf, `","in":"`...)
		buf = appendEscaped(buf, in)
	}
	buf = append(buf, `","out":"`...)
	buf = appendEscaped(buf, out)
	buf = append(buf, '"')
	if key != "" {
		buf = append(buf, ',', '"')
		buf = appendEscaped(buf, key)
		buf = append(buf, `":"`...)
		buf = appendEscaped(buf, value)
		buf = append(buf, '"')
	}
	buf = append(buf, '}', '\n')
	for _, w := range j.sinks {
		w.Write(buf)
	}
	*b = buf[:0]
	putBuffer(b)
}

// stamp is the formatting of one second: what comes before the fraction
// of a time.RFC3339Nano time, and what comes after it.
type stamp struct {
	sec        int64
	loc        *time.Location
	head, zone []byte
}

var lastStamp atomic.Pointer[stamp]

// appendTime appends t as time.RFC3339Nano does, formatting the date, the
// time of day and the zone once per second rather than once per record.
func appendTime(buf []byte, t time.Time) []byte {
	s := lastStamp.Load()
	if s == nil || s.sec != t.Unix() || s.loc != t.Location() {
		full := t.Truncate(time.Second).AppendFormat(nil, time.RFC3339) // 2006-01-02T15:04:05Z07:00
		s = &stamp{sec: t.Unix(), loc: t.Location(), head: full[:19], zone: full[19:]}
		lastStamp.Store(s)
	}
	buf = append(buf, s.head...)
	if ns := uint32(t.Nanosecond()); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 1; i -= 2 { // two digits a step
			d := ns % 100 * 2
			ns /= 100
			frac[i-1], frac[i] = pairs[d], pairs[d+1]
		}
		frac[1] = byte('0' + ns)
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		buf = append(buf, frac[:n]...)
	}
	return append(buf, s.zone...)
}

// slogLines is the protocol log through a slog.Logger, for the text format
// and for tests.
type slogLines struct{ log *slog.Logger }

// SlogLines writes the protocol log to log, at info level.
func SlogLines(log *slog.Logger) Lines { return slogLines{log} }

func (s slogLines) Line(t time.Time, conn uint64, remote string, in, out []byte, key, value string) {
	ctx := context.Background()
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{slog.String("component", "client"), slog.Uint64("conn", conn), slog.String("remote", remote),
		slog.String("in", string(in)), slog.String("out", string(out))}
	if key != "" {
		attrs = append(attrs, slog.String(key, value))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "line", attrs...)
}

func (s slogLines) IAMATs(t time.Time, conn uint64, remote string, out []byte) {
	ctx := context.Background()
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "iamat", slog.String("component", "client"), slog.Uint64("conn", conn),
		slog.String("remote", remote), slog.String("out", string(out)))
}

// off is the protocol log below the configured level.
type off struct{}

func (off) Line(time.Time, uint64, string, []byte, []byte, string, string) {}

func (off) IAMATs(time.Time, uint64, string, []byte) {}

const hexDigits = "0123456789abcdef"

// pairs holds the two digits of 00 to 99.
const pairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// plain marks the bytes that appear in a JSON string as they are: ASCII
// but for control characters, quotes and backslashes.
var plain = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// Every byte 0x01 and every byte 0x80, for testing eight bytes at once.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainRun returns the end of the run of plain bytes of s from i. It tests
// eight bytes a step with the word-wide tests of "Bit Twiddling Hacks"
// (no byte with its high bit, below 0x20, a quote or a backslash): a
// protocol line is almost all plain.
func plainRun[T ~string | ~[]byte](s T, i int) int {
	for ; i+8 <= len(s); i += 8 {
		b := s[i : i+8]
		_ = b[7]
		x := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		below20 := (x - 0x20*ones) &^ x & highs // exact where no high bit is set
		quote, backslash := x^('"'*ones), x^('\\'*ones)
		zeros := (quote-ones)&^quote&highs | (backslash-ones)&^backslash&highs
		if x&highs|below20|zeros != 0 {
			break
		}
	}
	for i < len(s) && plain[s[i]] {
		i++
	}
	return i
}

// appendEscaped appends s as the inside of a JSON string, escaped exactly
// as log/slog's JSONHandler escapes: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029
// escaped.
func appendEscaped[T ~string | ~[]byte](buf []byte, s T) []byte {
	start := 0
	for i := 0; i < len(s); {
		i = plainRun(s, i)
		if i == len(s) {
			break
		}
		if b := s[i]; b < utf8.RuneSelf {
			buf = append(buf, s[start:i]...)
			switch b {
			case '\\', '"':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		var r [utf8.UTFMax]byte
		c, size := utf8.DecodeRune(r[:copy(r[:], s[i:])])
		switch {
		case c == utf8.RuneError && size == 1:
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\u202`...)
			buf = append(buf, hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(buf, s[start:]...)
}
