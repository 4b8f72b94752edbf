package netport

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// memoryBufferSize is how many bytes one direction of a memory connection
// holds before a writer waits for the reader, as a socket buffer would.
const memoryBufferSize = 64 << 10

// memoryAddrSeq numbers memory addresses so that every listener and every
// dialing end has its own.
var memoryAddrSeq atomic.Uint64

// memoryAddr is the address of an in-memory endpoint: "memory:N".
type memoryAddr string

func newMemoryAddr() memoryAddr {
	return memoryAddr("memory:" + strconv.FormatUint(memoryAddrSeq.Add(1), 10))
}

func (a memoryAddr) Network() string { return "memory" }
func (a memoryAddr) String() string  { return string(a) }

// deadline is a point in time after which blocked and future calls fail. It
// is signalled by closing a channel from a timer made when the deadline is
// set, so that it works in a testing/synctest bubble's fake time.
type deadline struct {
	mu      sync.Mutex // guards timer and expired
	timer   *time.Timer
	expired chan struct{} // closed once the deadline has passed; never nil
}

func newDeadline() *deadline {
	return &deadline{expired: make(chan struct{})}
}

// set moves the deadline to t; the zero time clears it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.expired // the timer fired: wait for it to close the channel
	}
	d.timer = nil
	if isClosed(d.expired) {
		d.expired = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	if dur := time.Until(t); dur > 0 {
		expired := d.expired
		d.timer = time.AfterFunc(dur, func() { close(expired) })
	} else {
		close(d.expired)
	}
}

// stop cancels a pending timer, so that a closed endpoint leaves none behind.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Forget the timer only when it will never fire, so that a racing set
	// does not wait for a channel nobody closes.
	if d.timer != nil && d.timer.Stop() {
		d.timer = nil
	}
}

// wait returns a channel closed when the deadline passes. A waiter keeps
// seeing later moves of the deadline, because the channel is only replaced
// once it has been closed.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// A MemoryListener is a net.Listener whose connections live in memory: no
// socket, no descriptor, no goroutine. Dial and DialContext connect to it;
// Accept returns the other end. Its connections are buffered both ways (up to
// 64 KiB a direction), support deadlines, half-close with CloseWrite and CloseRead, return
// net.ErrClosed and io.EOF where a socket would, and block only on channels
// and sync primitives, so they work inside a testing/synctest bubble when
// made there. It is safe for concurrent use.
type MemoryListener struct {
	addr memoryAddr
	// accepted hands a server end from Dial to Accept; unbuffered, so that
	// Dial returns only once Accept has the connection.
	accepted chan *memoryConn
	done     chan struct{} // closed when the listener stops accepting

	mu      sync.Mutex               // guards the fields below
	stopped bool                     // done is closed
	closed  bool                     // Close has run
	conns   map[*memoryConn]struct{} // open connections handed out, both ends; nil once closed
}

// NewMemoryListener returns a listener with a fresh address whose Network
// is "memory" (its String is "memory:N", unique in the process).
func NewMemoryListener() *MemoryListener {
	return &MemoryListener{
		addr:     newMemoryAddr(),
		accepted: make(chan *memoryConn),
		done:     make(chan struct{}),
		conns:    make(map[*memoryConn]struct{}),
	}
}

// Addr returns the listener's address.
func (l *MemoryListener) Addr() net.Addr { return l.addr }

// Accept waits for a Dial and returns the listener's end of the new
// connection. Once the listener is closed it returns a *net.OpError
// wrapping net.ErrClosed.
func (l *MemoryListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accepted:
		// Dial may have won the race with a concurrent Close: refuse
		// the connection rather than hand it out after the close.
		if !isClosed(l.done) {
			return c, nil
		}
		c.Close()
	case <-l.done:
	}
	return nil, &net.OpError{Op: "accept", Net: "memory", Addr: l.addr, Err: net.ErrClosed}
}

// Dial is DialContext with a background context.
func (l *MemoryListener) Dial() (net.Conn, error) {
	return l.DialContext(context.Background())
}

// DialContext connects to the listener and returns the dialing end once
// Accept has taken the other one. It fails with a *net.OpError (Op "dial")
// wrapping syscall.ECONNREFUSED when the listener stops accepting first, or
// wrapping ctx.Err() when ctx ends first.
func (l *MemoryListener) DialContext(ctx context.Context) (net.Conn, error) {
	fail := func(err error) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "memory", Addr: l.addr, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	client, server := newMemoryPair(newMemoryAddr(), l.addr)
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return fail(syscall.ECONNREFUSED)
	}
	// Register both ends before the hand-over, so that a Close racing
	// with it still finds and closes them.
	for _, c := range []*memoryConn{client, server} {
		l.conns[c] = struct{}{}
		c.onClose = l.forget
	}
	l.mu.Unlock()
	var err error
	select {
	case l.accepted <- server:
		return client, nil
	case <-l.done:
		err = syscall.ECONNREFUSED
	case <-ctx.Done():
		err = ctx.Err()
	}
	client.Close()
	server.Close()
	return fail(err)
}

func (l *MemoryListener) forget(c *memoryConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// Close stops the listener: blocked and later Accept calls return
// net.ErrClosed, Dial calls syscall.ECONNREFUSED. It also closes every
// connection the listener handed out, both ends, as a test tearing down
// expects. A second Close returns a *net.OpError wrapping net.ErrClosed.
//
// A Port serving the listener does not call Close but stopAccepting, so
// that Port.Close leaves open connections alone as over a real socket.
func (l *MemoryListener) Close() error {
	l.stopAccepting()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: "memory", Addr: l.addr, Err: net.ErrClosed}
	}
	l.closed = true
	// No conn joins once stopped; forget on the nil map is a no-op.
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	return nil
}

// stopAccepting stops the listener as Close does (Accept returns
// net.ErrClosed, Dial syscall.ECONNREFUSED) but leaves the connections
// already handed out open. It is what a Port calls on Port.Close. It is
// idempotent and returns nil; a later Close still closes the connections.
func (l *MemoryListener) stopAccepting() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.stopped = true
		close(l.done)
	}
	return nil
}

// pipe is one direction of a memory connection: a bounded byte buffer
// shared by the writing end and the reading end.
type pipe struct {
	mu      sync.Mutex    // guards the fields below
	buf     bytes.Buffer  // written, not yet read; at most memoryBufferSize
	eof     bool          // the writer closed: the reader gets io.EOF once buf is empty
	broken  bool          // the reader closed: writes fail with EPIPE
	changed chan struct{} // closed and replaced whenever any field changes
}

func newPipe() *pipe { return &pipe{changed: make(chan struct{})} }

func (p *pipe) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *pipe) closeWrite() {
	p.mu.Lock()
	p.eof = true
	p.notifyLocked()
	p.mu.Unlock()
}

func (p *pipe) closeRead() {
	p.mu.Lock()
	p.broken = true
	p.buf.Reset()
	p.notifyLocked()
	p.mu.Unlock()
}

// memoryEndpoint is what both kinds of memory endpoint share: an address,
// a local close and the two deadlines. Blocking calls select on closed and
// on a deadline's channel, so both unblock them.
type memoryEndpoint struct {
	local      memoryAddr
	closed     chan struct{} // closed by shut
	closeOnce  sync.Once
	rdDeadline *deadline
	wrDeadline *deadline
}

func newMemoryEndpoint(local memoryAddr) memoryEndpoint {
	return memoryEndpoint{
		local:      local,
		closed:     make(chan struct{}),
		rdDeadline: newDeadline(),
		wrDeadline: newDeadline(),
	}
}

func (e *memoryEndpoint) LocalAddr() net.Addr { return e.local }

// shut closes the endpoint, running then first; it reports false when the
// endpoint was already closed.
func (e *memoryEndpoint) shut(then func()) bool {
	done := false
	e.closeOnce.Do(func() {
		close(e.closed)
		e.rdDeadline.stop()
		e.wrDeadline.stop()
		then()
		done = true
	})
	return done
}

// check reports why a call must fail before blocking, or nil.
func (e *memoryEndpoint) check(d *deadline) error {
	switch {
	case isClosed(e.closed):
		return net.ErrClosed
	case isClosed(d.wait()):
		return os.ErrDeadlineExceeded
	}
	return nil
}

func (e *memoryEndpoint) opError(op string, remote net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "memory", Source: e.local, Addr: remote, Err: err}
}

// SetDeadline sets both deadlines; see SetReadDeadline.
func (e *memoryEndpoint) SetDeadline(t time.Time) error {
	if err := e.SetReadDeadline(t); err != nil {
		return err
	}
	return e.SetWriteDeadline(t)
}

// SetReadDeadline makes pending and later reads fail with a *net.OpError
// wrapping os.ErrDeadlineExceeded once t has passed (at once if it has);
// the zero time or a later t clears an expired deadline.
func (e *memoryEndpoint) SetReadDeadline(t time.Time) error {
	if isClosed(e.closed) {
		return e.opError("set", nil, net.ErrClosed)
	}
	e.rdDeadline.set(t)
	return nil
}

// SetWriteDeadline is SetReadDeadline for writes.
func (e *memoryEndpoint) SetWriteDeadline(t time.Time) error {
	if isClosed(e.closed) {
		return e.opError("set", nil, net.ErrClosed)
	}
	e.wrDeadline.set(t)
	return nil
}

// memoryConn is one end of an in-memory connection; both ends have this
// type. Besides net.Conn it has CloseRead and CloseWrite, as *net.TCPConn does.
type memoryConn struct {
	memoryEndpoint
	remote  memoryAddr
	rd, wr  *pipe             // rd carries the peer's writes to us, wr ours to the peer
	wrLock  chan struct{}     // a one-slot lock that keeps each Write's bytes together
	onClose func(*memoryConn) // set before the conn is shared; nil when unowned
}

// newMemoryPair returns the two ends of a connection between addresses a and b.
func newMemoryPair(a, b memoryAddr) (*memoryConn, *memoryConn) {
	ab, ba := newPipe(), newPipe()
	mk := func(local, remote memoryAddr, rd, wr *pipe) *memoryConn {
		return &memoryConn{
			memoryEndpoint: newMemoryEndpoint(local),
			remote:         remote, rd: rd, wr: wr,
			wrLock: make(chan struct{}, 1),
		}
	}
	return mk(a, b, ba, ab), mk(b, a, ab, ba)
}

func (c *memoryConn) RemoteAddr() net.Addr { return c.remote }

// Read returns buffered data, waiting for some if there is none. It returns
// io.EOF once the peer closed or half-closed and the buffer is drained, and
// otherwise a *net.OpError wrapping net.ErrClosed or os.ErrDeadlineExceeded.
func (c *memoryConn) Read(b []byte) (int, error) {
	n, err := c.read(b)
	return n, c.wrap("read", err)
}

// wrap puts err in a *net.OpError; nil and io.EOF pass unchanged.
func (c *memoryConn) wrap(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return c.opError(op, c.remote, err)
}

func (c *memoryConn) read(b []byte) (int, error) {
	p := c.rd
	for {
		if err := c.check(c.rdDeadline); err != nil {
			return 0, err
		}
		if len(b) == 0 {
			return 0, nil
		}
		p.mu.Lock()
		if p.buf.Len() > 0 {
			n, _ := p.buf.Read(b)
			p.notifyLocked()
			p.mu.Unlock()
			return n, nil
		}
		if p.eof || p.broken {
			p.mu.Unlock()
			return 0, io.EOF
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-c.closed:
		case <-c.rdDeadline.wait():
		}
	}
}

// Write buffers b for the peer, waiting only while the buffer is full. After
// the peer closed (or this end called CloseWrite) it fails with a
// *net.OpError wrapping syscall.EPIPE; after Close, net.ErrClosed.
func (c *memoryConn) Write(b []byte) (int, error) {
	n, err := c.write(b)
	return n, c.wrap("write", err)
}

func (c *memoryConn) write(b []byte) (int, error) {
	select {
	case c.wrLock <- struct{}{}:
		defer func() { <-c.wrLock }()
	case <-c.closed:
		return 0, net.ErrClosed
	case <-c.wrDeadline.wait():
		return 0, os.ErrDeadlineExceeded
	}
	p, n := c.wr, 0
	for {
		if err := c.check(c.wrDeadline); err != nil {
			return n, err
		}
		p.mu.Lock()
		if p.eof || p.broken {
			p.mu.Unlock()
			return n, syscall.EPIPE
		}
		if room := memoryBufferSize - p.buf.Len(); room > 0 && n < len(b) {
			m := min(room, len(b)-n)
			p.buf.Write(b[n : n+m])
			n += m
			p.notifyLocked()
		}
		if n == len(b) {
			p.mu.Unlock()
			return n, nil
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-c.closed:
		case <-c.wrDeadline.wait():
		}
	}
}

// Close closes this end. Data written before Close stays readable by the
// peer, which then reads io.EOF (a FIN after pending data, not a reset);
// data not yet read by this end is dropped, and the peer's later writes fail
// with EPIPE. Calls on this end then return net.ErrClosed.
func (c *memoryConn) Close() error {
	if !c.shut(func() {
		c.wr.closeWrite()
		c.rd.closeRead()
		if c.onClose != nil {
			c.onClose(c)
		}
	}) {
		return c.opError("close", c.remote, net.ErrClosed)
	}
	return nil
}

// CloseRead shuts the reading side, as *net.TCPConn's CloseRead does:
// this end's pending and later reads return io.EOF, data not yet read is
// dropped, and the peer's later writes fail with EPIPE. This end can still
// write.
func (c *memoryConn) CloseRead() error {
	if isClosed(c.closed) {
		return c.opError("close", c.remote, net.ErrClosed)
	}
	c.rd.closeRead()
	return nil
}

// CloseWrite half-closes the connection: the peer reads io.EOF after the
// pending data, this end keeps reading, and its later writes fail with EPIPE.
func (c *memoryConn) CloseWrite() error {
	if isClosed(c.closed) {
		return c.opError("close", c.remote, net.ErrClosed)
	}
	c.wr.closeWrite()
	return nil
}
