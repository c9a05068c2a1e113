package rawio

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection, each wrapped.
func pair(t *testing.T) (a, b *Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- nc
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	other := <-accepted
	if other == nil {
		t.FailNow()
	}
	a, b = Wrap(nc).(*Conn), Wrap(other).(*Conn)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestTransfer: what one end writes, the other reads whole and in order,
// whether it fits the socket's buffers or must wait for the reader
// (EAGAIN, then the netpoller), in writes of any size.
func TestTransfer(t *testing.T) {
	for _, tc := range []struct {
		name         string
		size, chunk  int
		readBuf      int
		readDeadline time.Duration
	}{
		{"one byte", 1, 1, 1, 0},
		{"a line", 100, 100, 4096, 0},
		{"many small writes", 1 << 20, 97, 4096, 0},
		{"one write far beyond the buffers", 16 << 20, 16 << 20, 64 << 10, 0},
		{"with a deadline that does not pass", 4 << 20, 1 << 20, 1024, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t)
			data := make([]byte, tc.size)
			for i := range data {
				data[i] = byte(i*7 + i>>11)
			}
			errc := make(chan error, 1)
			go func() {
				for off := 0; off < len(data); off += tc.chunk {
					end := min(off+tc.chunk, len(data))
					n, err := a.Write(data[off:end])
					if err == nil && n != end-off {
						err = io.ErrShortWrite
					}
					if err != nil {
						errc <- err
						return
					}
				}
				errc <- a.CloseWrite()
			}()
			if tc.readDeadline > 0 {
				b.SetReadDeadline(time.Now().Add(tc.readDeadline))
			}
			h := sha256.New()
			buf := make([]byte, tc.readBuf)
			got := 0
			for {
				n, err := b.Read(buf)
				h.Write(buf[:n])
				got += n
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("read after %d bytes: %v", got, err)
				}
			}
			if err := <-errc; err != nil {
				t.Fatalf("write: %v", err)
			}
			if want := sha256.Sum256(data); got != len(data) || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("read %d bytes (digest %x), want %d (digest %x)", got, h.Sum(nil), len(data), want)
			}
		})
	}
}

// TestErrors: a read or write that fails says why as package net does, and
// the causes callers test for are found by errors.Is.
func TestErrors(t *testing.T) {
	t.Run("read deadline", func(t *testing.T) {
		_, b := pair(t)
		b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := b.Read(make([]byte, 10))
		var ne net.Error
		if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read past the deadline: %d, %v; want 0 and a time-out", n, err)
		}
	})
	t.Run("write deadline", func(t *testing.T) {
		a, _ := pair(t) // the other end never reads
		a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		big := make([]byte, 64<<20)
		n, err := a.Write(big)
		if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n >= len(big) {
			t.Fatalf("write past the deadline: %d of %d bytes, %v; want some and a time-out", n, len(big), err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		a, b := pair(t)
		a.SetLinger(0)
		a.Close() // sends RST
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := b.Read(make([]byte, 10))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read after a reset: %v, want ECONNRESET", err)
		}
		if want := "read: connection reset by peer"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not say %q as net's does", err, want)
		}
	})
	t.Run("closed while reading", func(t *testing.T) {
		_, b := pair(t)
		errc := make(chan error, 1)
		go func() {
			_, err := b.Read(make([]byte, 10))
			errc <- err
		}()
		time.AfterFunc(20*time.Millisecond, func() { b.Close() })
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read on a connection closed meanwhile: %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a read went on after its connection was closed")
		}
		if _, err := b.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after close: %v, want net.ErrClosed", err)
		}
	})
	t.Run("peer gone", func(t *testing.T) {
		a, b := pair(t)
		b.SetLinger(0)
		b.Close()
		var err error
		for i := 0; i < 100 && err == nil; i++ { // the first writes may be buffered before the reset comes back
			_, err = a.Write([]byte("hello\n"))
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("write to a reset connection: %v, want ECONNRESET or EPIPE", err)
		}
	})
}

// TestWrapOther: what is not a TCP connection is returned as it is.
func TestWrapOther(t *testing.T) {
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if got := Wrap(p); got != p {
		t.Fatalf("Wrap(pipe) = %T, want the pipe itself", got)
	}
}

// TestNoAllocations: a Read and a Write allocate nothing, on a connection
// as on a file: they are on the path of every request and record.
func TestNoAllocations(t *testing.T) {
	a, b := pair(t)
	msg, buf := make([]byte, 100), make([]byte, 100)
	if n := testing.AllocsPerRun(200, func() {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(b, buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("a Write and a Read allocate %v times, want 0", n)
	}
	_, rf := newFile(t, t.TempDir())
	if n := testing.AllocsPerRun(200, func() {
		if _, err := rf.Write(msg); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("a File's Write allocates %v times, want 0", n)
	}
}
