package netport

import (
	"net"
	"os"
	"syscall"
)

// memoryPacketQueue is how many datagrams one direction of a memory packet
// pipe holds before WriteTo waits, as a full socket buffer would.
const memoryPacketQueue = 256

// NewMemoryPacketPipe returns two connected in-memory datagram endpoints,
// each with its own "memory" address. A WriteTo on one addressed to the
// other's address delivers a copy of the bytes to the other as one
// datagram; any other address fails with a *net.OpError wrapping
// syscall.EHOSTUNREACH. Each direction queues up to 256 datagrams, after
// which WriteTo waits for the reader, as on a blocking socket. ReadFrom
// returns one datagram, cut to the length of its buffer as recvfrom(2) does.
// Datagrams have no end of stream: once one end is closed, the other reads
// what is queued and then waits, and its writes are dropped silently as
// datagrams to a closed port are. Both ends support deadlines, return
// net.ErrClosed after their own Close, and block only on channels, so they
// work inside a testing/synctest bubble when made there. A DatagramPort
// serving one end can Connect to the other's address, Write and
// WriteSequence; SetBroadcast and the multicast calls answer
// ErrNotSupported, since a pipe has neither.
func NewMemoryPacketPipe() (net.PacketConn, net.PacketConn) {
	ab := make(chan []byte, memoryPacketQueue)
	ba := make(chan []byte, memoryPacketQueue)
	a := newMemoryPacketConn(newMemoryAddr(), ba, ab)
	b := newMemoryPacketConn(newMemoryAddr(), ab, ba)
	a.peer, b.peer = b, a
	return a, b
}

// memoryPacketConn is one end of a memory packet pipe.
type memoryPacketConn struct {
	memoryEndpoint
	peer    *memoryPacketConn // set once by NewMemoryPacketPipe
	in, out chan []byte       // datagrams to this end and from it
}

func newMemoryPacketConn(addr memoryAddr, in, out chan []byte) *memoryPacketConn {
	return &memoryPacketConn{memoryEndpoint: newMemoryEndpoint(addr), in: in, out: out}
}

// ReadFrom waits for a datagram, copies at most len(b) bytes of it into b
// and returns their count and the peer's address. Errors are *net.OpError
// values wrapping net.ErrClosed or os.ErrDeadlineExceeded.
func (c *memoryPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	fail := func(err error) (int, net.Addr, error) {
		return 0, nil, c.opError("read", c.peer.local, err)
	}
	if err := c.check(c.rdDeadline); err != nil {
		return fail(err)
	}
	select {
	case d := <-c.in:
		return copy(b, d), c.peer.local, nil
	case <-c.closed:
		return fail(net.ErrClosed)
	case <-c.rdDeadline.wait():
		return fail(os.ErrDeadlineExceeded)
	}
}

// WriteTo sends a copy of b as one datagram to addr, which must be the
// peer's address, waiting while the peer's queue is full.
func (c *memoryPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	fail := func(err error) (int, error) {
		return 0, c.opError("write", addr, err)
	}
	if err := c.check(c.wrDeadline); err != nil {
		return fail(err)
	}
	if addr == nil || addr.Network() != "memory" || addr.String() != c.peer.local.String() {
		return fail(syscall.EHOSTUNREACH)
	}
	select {
	case c.out <- append([]byte(nil), b...):
		return len(b), nil
	case <-c.peer.closed:
		return len(b), nil
	case <-c.closed:
		return fail(net.ErrClosed)
	case <-c.wrDeadline.wait():
		return fail(os.ErrDeadlineExceeded)
	}
}

// Close closes this end; datagrams it already sent stay readable by the
// peer. A second Close returns a *net.OpError wrapping net.ErrClosed.
func (c *memoryPacketConn) Close() error {
	if !c.shut(func() {}) {
		return c.opError("close", nil, net.ErrClosed)
	}
	return nil
}
