package protocol

import "encoding/binary"

// Fields is an IAMAT's position and client time packed into numbers, 18
// bytes where the text takes about 40, from which the text is rebuilt
// byte for byte (Append): a store of a million clients holds these rather
// than the texts. PackFields packs the forms that numbers can rebuild:
// each coordinate with up to maxPackedFrac decimals (leading zeros of
// its integer part included), and a time of at most nine decimals whose
// seconds are below 2^34 (the year 2514) written without leading zeros.
// Anything else, valid or not, is left to its holder to keep as text.
type Fields struct {
	// Time is the client time as seconds << 30 | nanoseconds: its order
	// is the time's (CompareTime's, for times that pack).
	Time uint64
	// Lat and Lng are the digits of each coordinate, integer part and
	// fraction, read as one number: +34.068930 is 34068930.
	Lat, Lng uint32
	// Format is what the numbers leave out: the time's decimals (bits 0
	// to 3), then for the latitude (bits 4 to 9) and the longitude (bits
	// 10 to 15) a sign bit and a shape, (integer digits - 1) * 8 +
	// decimals.
	Format uint16
}

// Unpacked is a Format that PackFields never returns (its latitude's
// shape is out of range): a holder of Fields may use it to mark a record
// whose position and time it keeps as text.
const Unpacked uint16 = 0xffff

// maxPackedFrac is the most decimals of a coordinate that pack: 180 with
// seven decimals is 1,800,000,000, which a uint32 holds.
const maxPackedFrac = 7

// Bits of Format.
const (
	timeFracBits = 4
	coordBits    = 6
	coordSign    = 1 << 5 // within a coordinate's bits
	coordShape   = coordSign - 1
)

// PackFields packs a position and a client time, as an IAMAT has them, and
// reports whether it could: a form it cannot rebuild exactly (more
// decimals than fit, a time with leading zeros, ...) or an invalid one is
// not packed.
func PackFields[T text](pos, time T) (Fields, bool) {
	var f Fields
	lat, latFmt, mid, ok := packCoord(pos, 0)
	if !ok {
		return Fields{}, false
	}
	lng, lngFmt, end, ok := packCoord(pos, mid)
	if !ok || end != len(pos) {
		return Fields{}, false
	}
	t, timeFrac, ok := packTime(time)
	if !ok {
		return Fields{}, false
	}
	f.Time, f.Lat, f.Lng = t, lat, lng
	f.Format = timeFrac | latFmt<<timeFracBits | lngFmt<<(timeFracBits+coordBits)
	return f, true
}

// packCoord packs the coordinate starting at s[i]: its digits as one
// number, its sign and shape, and the index just after it. Validation
// stops at what packing needs (a sign, 1 to 3 digits, a point followed by
// 1 to maxPackedFrac digits, a value a uint32 holds); ranges are the
// parser's.
func packCoord[T text](s T, i int) (uint32, uint16, int, bool) {
	var v uint64
	var format uint16
	if i >= len(s) || (s[i] != '+' && s[i] != '-') {
		return 0, 0, 0, false
	}
	if s[i] == '-' {
		format = coordSign
	}
	i++
	start := i
	for i < len(s) && isDigit(s[i]) && i-start < 3 {
		v = v*10 + uint64(s[i]-'0')
		i++
	}
	whole := i - start
	if whole == 0 || (i < len(s) && isDigit(s[i])) {
		return 0, 0, 0, false
	}
	frac := 0
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) && i-fs < maxPackedFrac {
			v = v*10 + uint64(s[i]-'0')
			i++
		}
		frac = i - fs
		if frac == 0 || (i < len(s) && isDigit(s[i])) {
			return 0, 0, 0, false
		}
	}
	if v > 1<<32-1 { // 999.9999999 does not fit; no valid coordinate is that large
		return 0, 0, 0, false
	}
	return uint32(v), format | uint16((whole-1)*8+frac), i, true
}

// packTime packs a client time: seconds << 30 | nanoseconds, and its
// number of decimals.
func packTime[T text](s T) (uint64, uint16, bool) {
	if len(s) == 0 || (s[0] == '0' && len(s) > 1 && s[1] != '.') {
		return 0, 0, false // empty, or leading zeros
	}
	var sec uint64
	i := 0
	for i < len(s) && isDigit(s[i]) {
		sec = sec*10 + uint64(s[i]-'0')
		if sec >= 1<<34 {
			return 0, 0, false
		}
		i++
	}
	if i == 0 {
		return 0, 0, false
	}
	var nsec uint64
	frac := 0
	if i < len(s) {
		if s[i] != '.' {
			return 0, 0, false
		}
		i++
		for ; i < len(s) && isDigit(s[i]) && frac < 9; i++ {
			nsec = nsec*10 + uint64(s[i]-'0')
			frac++
		}
		if frac == 0 || i != len(s) {
			return 0, 0, false
		}
		nsec *= pow10[9-frac]
	}
	return sec<<30 | nsec, uint16(frac), true
}

var pow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// Sec returns the whole seconds of the client time.
func (f Fields) Sec() int64 { return int64(f.Time >> 30) }

// Nsec returns the nanoseconds of the client time.
func (f Fields) Nsec() int64 { return int64(f.Time & (1<<30 - 1)) }

// Append appends the position and the time, separated by a space, exactly
// as PackFields read them.
func (f Fields) Append(dst []byte) []byte {
	var b scratch
	p := f.putTime(&b, len(b))
	p--
	b[p] = ' '
	return append(dst, b[f.putPos(&b, p):]...)
}

// Len returns the length of what Append appends.
func (f Fields) Len() int { return f.PosLen() + 1 + f.TimeLen() }

// AppendPos appends the position as PackFields read it.
func (f Fields) AppendPos(dst []byte) []byte {
	var b scratch
	return append(dst, b[f.putPos(&b, len(b)):]...)
}

// PosLen returns the length of what AppendPos appends.
func (f Fields) PosLen() int {
	return coordLen(f.Format>>timeFracBits) + coordLen(f.Format>>(timeFracBits+coordBits))
}

// AppendTime appends the client time as PackFields read it.
func (f Fields) AppendTime(dst []byte) []byte {
	var b scratch
	return append(dst, b[f.putTime(&b, len(b)):]...)
}

// TimeLen returns the length of what AppendTime appends.
func (f Fields) TimeLen() int {
	n := digits(f.Time >> 30)
	if frac := int(f.Format & (1<<timeFracBits - 1)); frac > 0 {
		n += 1 + frac
	}
	return n
}

// The text is written from right to left into a scratch buffer, each
// number eight digits at a time (put8), then copied out once: a number
// may write zeros to the left of its digits, where what comes before it
// is written next. This costs a third of writing the digits two at a
// time, where every step waits on a division (BenchmarkFieldsAppend).

// scratch holds the longest text (46 bytes) and the eight bytes the last
// number written may spill to its left.
type scratch [64]byte

// putPos writes the position ending before b[p], and returns where it
// starts.
func (f Fields) putPos(b *scratch, p int) int {
	p = putCoord(b, p, f.Lng, f.Format>>(timeFracBits+coordBits))
	return putCoord(b, p, f.Lat, f.Format>>timeFracBits)
}

// putCoord writes a coordinate ending before b[p], and returns where it
// starts.
func putCoord(b *scratch, p int, v uint32, format uint16) int {
	shape := int(format & coordShape)
	whole, frac := shape/8+1, shape%8
	p = putNumber(b, p, uint64(v), whole+frac)
	if frac > 0 {
		// Every digit at once, then the integer part one to the left.
		for i := range whole {
			b[p-1+i] = b[p+i]
		}
		p--
		b[p+whole] = '.'
	}
	p--
	b[p] = '+'
	if format&coordSign != 0 {
		b[p] = '-'
	}
	return p
}

// putTime writes the client time ending before b[p], and returns where it
// starts.
func (f Fields) putTime(b *scratch, p int) int {
	if frac := int(f.Format & (1<<timeFracBits - 1)); frac > 0 {
		p = putNumber(b, p, divPow10(f.Time&(1<<30-1), 9-frac), frac)
		p--
		b[p] = '.'
	}
	sec := f.Time >> 30
	return putNumber(b, p, sec, digits(sec))
}

// putNumber writes v as n decimal digits (at most 16, padded with zeros)
// ending before b[p], and returns where they start; it may write zeros
// in the eight bytes to their left.
func putNumber(b *scratch, p int, v uint64, n int) int {
	put8(b[p-8:p], v%1e8)
	switch hi := v / 1e8; {
	case n > 10:
		put8(b[p-16:p-8], hi)
	case n > 8:
		b[p-9], b[p-10] = byte('0'+hi%10), byte('0'+hi/10%10)
	}
	return p - n
}

// put8 writes v, below 10^8, as eight decimal digits into dst[:8]: each
// step splits every lane of a word in two at once (4 digits into 2 and
// 2, then 2 into 1 and 1), by multiplications that are exact in that
// range, so that the digits come in a dozen instructions and no chain of
// divisions.
func put8(dst []byte, v uint64) {
	x := v/1e4 | v%1e4<<32                     // two lanes of 4 digits, the first in the low bits
	y := x * 10486 >> 20 & 0x0000007f_0000007f // each lane / 100
	y |= (x - y*100) << 16                     // four lanes of 2 digits
	z := y * 103 >> 10 & 0x000f_000f_000f_000f // each lane / 10
	z |= (y - z*10) << 8                       // eight lanes of 1 digit
	binary.LittleEndian.PutUint64(dst, z+0x30303030_30303030)
}

// divPow10 returns v / 10^n for n from 0 to 9, each a division by a
// constant, which the compiler turns into a multiplication.
func divPow10(v uint64, n int) uint64 {
	switch n {
	case 1:
		return v / 10
	case 2:
		return v / 100
	case 3:
		return v / 1e3
	case 4:
		return v / 1e4
	case 5:
		return v / 1e5
	case 6:
		return v / 1e6
	case 7:
		return v / 1e7
	case 8:
		return v / 1e8
	case 9:
		return v / 1e9
	}
	return v
}

func coordLen(format uint16) int {
	shape := int(format & coordShape)
	whole, frac := shape/8+1, shape%8
	if frac == 0 {
		return 1 + whole
	}
	return 2 + whole + frac
}

// digits returns the number of decimal digits of v (1 for 0).
func digits(v uint64) int {
	n := 1
	for n < len(pow10) && v >= pow10[n] {
		n++
	}
	return n
}
