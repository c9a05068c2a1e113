package herdtest

import (
	"bufio"
	"fmt"
	"maps"
	"net"
	"sync"
	"time"
)

// Acks is the record of every acknowledged IAMAT: client id to the AT
// line the server replied with. An IAMAT whose reply did not arrive is
// not in it: the server may or may not have stored it.
type Acks struct {
	mu    sync.Mutex
	lines map[string]string
	per   map[string]int // acknowledgements by server
}

// NewAcks returns an empty record.
func NewAcks() *Acks {
	return &Acks{lines: map[string]string{}, per: map[string]int{}}
}

// Add records that server acknowledged client id with at.
func (a *Acks) Add(server, id, at string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lines[id] = at
	a.per[server]++
}

// Len is the number of acknowledged IAMATs.
func (a *Acks) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.lines)
}

// Of is the number of IAMATs server acknowledged.
func (a *Acks) Of(server string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.per[server]
}

// Lines returns a copy of the record.
func (a *Acks) Lines() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.lines)
}

// Load sends IAMATs to servers, each on a connection of its own, one at a
// time and every Interval, each for a new client id; it records each
// acknowledged one in Acks. A server that does not answer is dialled
// again until Stop.
type Load struct {
	// Acks is the record of what the servers acknowledged.
	Acks *Acks

	client *Client
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   map[string]int // failed exchanges by server
}

// Interval is the pause between a server's acknowledgement and the next
// IAMAT to it.
const Interval = 20 * time.Millisecond

// StartLoad starts sending to servers, server name to the address of its
// client port. Client ids are prefix-<server>-<n>.
func (c *Client) StartLoad(prefix string, servers map[string]string) *Load {
	l := &Load{Acks: NewAcks(), client: c, stop: make(chan struct{}), errs: map[string]int{}}
	for name, addr := range servers {
		l.wg.Add(1)
		go l.send(fmt.Sprintf("%s-%s", prefix, name), name, addr)
	}
	return l
}

// Stop stops the load and waits for the exchanges in flight.
func (l *Load) Stop() {
	close(l.stop)
	l.wg.Wait()
}

// Failures is the number of exchanges with server that failed.
func (l *Load) Failures(server string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs[server]
}

// send is the loop of one server's connection.
func (l *Load) send(prefix, server, addr string) {
	defer l.wg.Done()
	var c net.Conn
	var r *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		case <-time.After(Interval):
		}
		if c == nil {
			var err error
			if c, err = l.client.dial(addr, time.Second); err != nil {
				c = nil
				l.failed(server)
				continue
			}
			r = bufio.NewReader(c)
		}
		id := fmt.Sprintf("%s-%d", prefix, n)
		at, err := exchange(c, r, id)
		if err != nil {
			c.Close()
			c = nil
			l.failed(server)
			continue
		}
		l.Acks.Add(server, id, at)
	}
}

func (l *Load) failed(server string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs[server]++
}

// exchange sends one IAMAT for id on c and reads its acknowledgement.
func exchange(c net.Conn, r *bufio.Reader, id string) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(iamatLine(id, time.Now()))); err != nil {
		return "", err
	}
	at, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return checkAT(at, id)
}
