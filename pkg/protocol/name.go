package protocol

// MaxNameLen is the longest server name, in bytes.
const MaxNameLen = 64

// ValidName reports whether s can name a server: 1 to MaxNameLen letters,
// digits, '.', '_' or '-', so that it is one field of an AT line and of
// a peer frame.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
