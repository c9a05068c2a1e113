package bench

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// startProgress writes line(elapsed) to w every second, over the previous
// one, until stop is called, which clears it. With w nil it does nothing.
func startProgress(w io.Writer, line func(elapsed time.Duration) string) (stop func()) {
	if w == nil {
		return func() {}
	}
	start := time.Now()
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprintf(w, "\r\033[K%s", line(time.Since(start)))
			case <-quit:
				fmt.Fprint(w, "\r\033[K")
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// progressTo returns w if it is a terminal, for a progress line, and nil
// otherwise.
func progressTo(w io.Writer) io.Writer {
	if isTerminal(w) {
		return w
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
