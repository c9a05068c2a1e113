//go:build linux

package netlab

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Capture records the frames that cross a lab's bridge, as they leave or
// enter each veth of its hub (so most frames twice): every packet between
// its hosts, and between them and this machine.
type Capture struct {
	file *os.File
	done chan struct{} // closed when read returns
	stop sync.Once
	err  error // Stop's

	mu     sync.Mutex
	frames [][]byte
}

// Capture limits: a frame's first bytes kept, and the frames kept (a
// capture is for a few seconds of a test).
const (
	snapLen   = 2048
	maxFrames = 200_000
)

// Capture starts recording the frames that cross the lab's bridge.
func (l *Lab) Capture() (*Capture, error) {
	var fd int
	err := inNamespace(filepath.Join("/run/netns", l.hub), func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		return err
	})
	if err != nil {
		return nil, err
	}
	// Non-blocking, so that the runtime's poller reads it and Stop's
	// Close ends a read.
	c := &Capture{file: os.NewFile(uintptr(fd), "capture "+l.Name), done: make(chan struct{})}
	go c.read()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read records frames until Stop's deadline.
func (c *Capture) read() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		n, err := c.file.Read(buf)
		if err != nil {
			return
		}
		c.mu.Lock()
		if len(c.frames) < maxFrames {
			c.frames = append(c.frames, append([]byte(nil), buf[:min(n, snapLen)]...))
		}
		c.mu.Unlock()
	}
}

// drain is how long Stop goes on reading: the frames sent before it was
// called may still wait in the socket's queue.
const drain = 200 * time.Millisecond

// Stop ends the capture and returns the frames it recorded, each from
// its Ethernet header on. Calling it again returns the same.
func (c *Capture) Stop() ([][]byte, error) {
	c.stop.Do(func() { c.err = c.end() })
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames, c.err
}

// end reads for drain more, then closes the socket.
func (c *Capture) end() error {
	if err := c.file.SetReadDeadline(time.Now().Add(drain)); err != nil {
		c.file.Close()
		<-c.done
		return err
	}
	<-c.done
	err := c.file.Close()
	if len(c.frames) >= maxFrames {
		err = errors.Join(err, errors.New("capture: the frame limit was reached; later frames are missing"))
	}
	return err
}

// FrameAddrs returns the source and destination of an Ethernet frame
// that carries IPv4 (for a VXLAN frame, its outer header: the hosts'),
// and ok false for any other frame.
func FrameAddrs(frame []byte) (src, dst netip.Addr, ok bool) {
	const eth, ipv4 = 14, 20
	if len(frame) < eth+ipv4 || frame[12] != 0x08 || frame[13] != 0x00 || frame[eth]>>4 != 4 {
		return netip.Addr{}, netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(frame[eth+12 : eth+16])), netip.AddrFrom4([4]byte(frame[eth+16 : eth+20])), true
}
