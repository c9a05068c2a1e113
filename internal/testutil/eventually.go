package testutil

import (
	"errors"
	"testing"
	"time"
)

// pollMax caps the pause between two calls of a condition; the first
// pause is a millisecond and the next ones 2 ms. A longer pause (10 ms)
// made pkg/node's TestRestartWithDataDir fail about one run in ten (B
// counts records from the restarted A in reconciliation), which the
// per-package helpers this replaced, at 1-2 ms, never showed: a race that
// depends on how soon a test sees its condition, not yet understood.
const pollMax = 2 * time.Millisecond

// Eventually calls cond until it returns nil, and fails the test with
// cond's last error if it has not by the end of within. cond says what it
// waits for in its error ("journal holds 3 of 5 changes"), which is all a
// reader of a failure sees. Call it from the test's goroutine; cond may
// call t.Fatal.
func Eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, pollMax)
	}
}

// Holds turns a yes-or-no condition into one for Eventually, which fails
// saying what did not hold.
func Holds(what string, cond func() bool) func() error {
	return func() error {
		if cond() {
			return nil
		}
		return errors.New(what + " does not hold")
	}
}
