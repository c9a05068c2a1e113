package protocol

import "strconv"

// text is what the scanners read: a line being parsed or a stored record.
type text interface{ ~string | ~[]byte }

// Largest magnitudes of a position, in degrees.
const (
	maxLat = 90
	maxLng = 180
)

// ValidPos reports whether s is an ISO 6709 style position: a latitude and
// a longitude in decimal degrees, each with a mandatory sign, 1 to 3
// integer digits and an optional fraction (a point and at least one digit),
// with nothing between or after them; latitude within ±90 and longitude
// within ±180, compared exactly on the digits.
func ValidPos[T text](s T) bool {
	_, ok := splitPos(s)
	return ok
}

// ParsePos returns the latitude and longitude of a valid position.
func ParsePos(s string) (lat, lng float64, ok bool) {
	mid, ok := splitPos(s)
	if !ok {
		return 0, 0, false
	}
	lat, err1 := strconv.ParseFloat(s[:mid], 64)
	lng, err2 := strconv.ParseFloat(s[mid:], 64)
	return lat, lng, err1 == nil && err2 == nil
}

// splitPos validates s and returns where the longitude starts.
func splitPos[T text](s T) (mid int, ok bool) {
	mid, ok = scanCoord(s, 0, maxLat)
	if !ok {
		return 0, false
	}
	end, ok := scanCoord(s, mid, maxLng)
	return mid, ok && end == len(s)
}

// scanCoord reads one signed coordinate starting at s[i] and returns the
// index just after it. Its magnitude must not exceed limit.
func scanCoord[T text](s T, i, limit int) (end int, ok bool) {
	if i >= len(s) || (s[i] != '+' && s[i] != '-') {
		return 0, false
	}
	i++
	start := i
	whole := 0
	for i < len(s) && isDigit(s[i]) {
		if i-start == 3 {
			return 0, false
		}
		whole = whole*10 + int(s[i]-'0')
		i++
	}
	if i == start {
		return 0, false
	}
	fracNonZero := false
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			fracNonZero = fracNonZero || s[i] != '0'
			i++
		}
		if i == fs {
			return 0, false
		}
	}
	if whole > limit || (whole == limit && fracNonZero) {
		return 0, false
	}
	return i, true
}
