package protocol

// maxTimeDigits bounds the significant integer digits of a client time so
// that its seconds fit an int64 with room for the subtraction of a receive
// time: 10^18 seconds is some thirty billion years.
const maxTimeDigits = 18

// ParseTime parses a client time, POSIX seconds written digits[.digits],
// into whole seconds and nanoseconds. Digits beyond the ninth decimal are
// accepted; they count when records are ordered (CompareTime) but not in
// the nanoseconds returned here, which are truncated.
func ParseTime[T text](s T) (sec, nsec int64, ok bool) {
	i := 0
	significant := 0
	for i < len(s) && isDigit(s[i]) {
		if sec != 0 || s[i] != '0' {
			significant++
			if significant > maxTimeDigits {
				return 0, 0, false
			}
		}
		sec = sec*10 + int64(s[i]-'0')
		i++
	}
	if i == 0 {
		return 0, 0, false
	}
	if i == len(s) {
		return sec, 0, true
	}
	if s[i] != '.' {
		return 0, 0, false
	}
	i++
	fs := i
	for i < len(s) && isDigit(s[i]) {
		if i-fs < 9 {
			nsec = nsec*10 + int64(s[i]-'0')
		}
		i++
	}
	if i == fs || i != len(s) {
		return 0, 0, false
	}
	for k := i - fs; k < 9; k++ {
		nsec *= 10
	}
	return sec, nsec, true
}

// CompareTime compares two valid client times exactly, digit by digit,
// whatever their length: it returns -1 if a is earlier than b, 0 if they
// are the same instant (1.5 and 01.50 are), and +1 if a is later.
func CompareTime[T text](a, b T) int {
	aw, af := splitTime(a)
	bw, bf := splitTime(b)
	aw, bw = trimZeros(aw), trimZeros(bw)
	if len(aw) != len(bw) {
		return sign(len(aw) - len(bw))
	}
	for i := 0; i < len(aw); i++ {
		if aw[i] != bw[i] {
			return sign(int(aw[i]) - int(bw[i]))
		}
	}
	n := max(len(af), len(bf))
	for i := 0; i < n; i++ {
		ca, cb := byte('0'), byte('0')
		if i < len(af) {
			ca = af[i]
		}
		if i < len(bf) {
			cb = bf[i]
		}
		if ca != cb {
			return sign(int(ca) - int(cb))
		}
	}
	return 0
}

func splitTime[T text](s T) (whole, frac T) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:]
		}
	}
	return s, s[len(s):]
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// AppendDiff appends recv minus the client time sec.nsec as a signed
// decimal number of seconds with exactly nine decimals: +0.000123456,
// -2.500000000, +0.000000000. The arithmetic is on whole seconds and
// nanoseconds, never through a float64 of the epoch.
func AppendDiff(dst []byte, recvUnixNano, sec, nsec int64) []byte {
	rs, rn := recvUnixNano/1e9, recvUnixNano%1e9
	if rn < 0 { // Go's % keeps the dividend's sign
		rs--
		rn += 1e9
	}
	ds, dn := rs-sec, rn-nsec
	switch {
	case ds > 0 && dn < 0:
		ds--
		dn += 1e9
	case ds < 0 && dn > 0:
		ds++
		dn -= 1e9
	}
	if ds < 0 || dn < 0 {
		dst = append(dst, '-')
		ds, dn = -ds, -dn
	} else {
		dst = append(dst, '+')
	}
	dst = appendUint(dst, uint64(ds))
	dst = append(dst, '.')
	var frac [9]byte
	for i := 8; i >= 0; i-- {
		frac[i] = byte('0' + dn%10)
		dn /= 10
	}
	return append(dst, frac[:]...)
}

// ParseDiff parses a time difference as AppendDiff writes it: a sign, then
// seconds written digits[.digits] as ParseTime reads them. A negative
// difference has sec and nsec both at most zero.
func ParseDiff[T text](s T) (sec, nsec int64, ok bool) {
	if len(s) < 2 || (s[0] != '+' && s[0] != '-') {
		return 0, 0, false
	}
	sec, nsec, ok = ParseTime(s[1:])
	if !ok {
		return 0, 0, false
	}
	if s[0] == '-' {
		sec, nsec = -sec, -nsec
	}
	return sec, nsec, true
}

func appendUint(dst []byte, v uint64) []byte {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, buf[i:]...)
}
