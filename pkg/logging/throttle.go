package logging

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Throttle logs an event that may repeat many times a second (a refused
// connection, a failing dial, a failing disk) at most once per Every,
// and at once when its key changes, so that a new error is never hidden
// behind an old one. A line after some were left out says how many with
// the attribute "not_logged". The metrics count every event; the log says
// that it happens. Safe for concurrent use; the zero value with Every set
// is ready.
type Throttle struct {
	Every time.Duration

	mu      sync.Mutex
	last    time.Time // when the last line was logged; zero before the first
	key     string    // its key
	skipped int       // events left out since
}

// Log logs msg at level with args unless a line of the same key was
// logged less than Every ago, and reports whether it did. key names the
// kind of event, often the error's text; "" for a Throttle of one kind.
func (t *Throttle) Log(log *slog.Logger, level slog.Level, key, msg string, args ...any) bool {
	if !t.allow(key, time.Now(), &args) {
		return false
	}
	log.Log(context.Background(), level, msg, args...)
	return true
}

// allow decides, at now, whether an event of key is logged, and adds the
// count left out to args when it is.
func (t *Throttle) allow(key string, now time.Time, args *[]any) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && key == t.key && now.Sub(t.last) < t.Every {
		t.skipped++
		return false
	}
	if t.skipped > 0 {
		*args = append(*args, "not_logged", t.skipped)
	}
	t.last, t.key, t.skipped = now, key, 0
	return true
}
