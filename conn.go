package netport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// LingerTimeout bounds how long LoseConnection keeps reading (and
// discarding) after it has sent FIN, waiting for the peer to close too.
// Closing a TCP socket that still holds unread data sends a reset, which
// can make the peer drop the last data written to it; reading until the
// peer's own FIN avoids that.
const LingerTimeout = time.Second

// A Conn is one served connection. It implements Transport, and it is the
// Transport that the protocol's ConnectionMade receives. Its methods are
// safe for concurrent use.
type Conn struct {
	cfg   *Config
	port  *Port    // nil for an adopted connection
	raw   net.Conn // as accepted or adopted
	nc    net.Conn // what is served: raw, or TLS over it; set before proto
	proto Protocol

	wmu sync.Mutex // serialises writes and the write side's close

	snd atomic.Pointer[sendState] // send queue and producer (sendqueue.go); nil until used

	reason error // guarded by mu: why it ends; set before ending (an abort may still replace it until reported)

	// The fields are ordered so that a Conn fits a 224-byte allocation:
	// every idle connection keeps one. Fields that only some connections
	// need live in what waits and view point to, made on first use.

	ending atomic.Bool // set once the end is decided; later ends are ignored

	// unusual mirrors paused || drainReq || lingering || writeClosed,
	// refreshed under mu by noteLocked whenever one of them changes, so
	// that the per-read and per-write checks can skip mu while the
	// connection is simply reading and writing.
	unusual atomic.Bool

	pstate atomic.Uint32 // parked, pending and a generation (park.go); here for the packing

	mu          sync.Mutex
	paused      bool       // guarded by mu
	drainReq    bool       // guarded by mu: Shutdown asked for Drain
	lingering   bool       // guarded by mu: LoseConnection sent FIN
	writeClosed bool       // guarded by mu: LoseWriteConnection sent FIN
	readClosed  bool       // guarded by mu: the peer sent FIN
	handler     bool       // guarded by mu: served by a Handler function
	reported    bool       // guarded by mu: ConnectionLost has been given reason
	parkReq     bool       // guarded by mu: the sweeper asked this connection to park
	finished    bool       // guarded by mu: ConnectionLost has returned (lazy.go)
	timeouts    bool       // a Handler's conn applies IdleTimeout and WriteTimeout per call; set before serve runs
	heard       bool       // guarded by mu: data has reached the protocol (idle.heard mirrors it)
	drainLater  bool       // guarded by mu: Shutdown's request waits for the first data or the grace (drain)
	waits       *connWaits // guarded by mu: made when first needed (lazy.go)

	// What Conn returns over raw, made under mu when first needed; it
	// also holds the deadlines set through it (deadline.go).
	view atomic.Pointer[userConn]

	// The readiness read: rc waits for data without holding a buffer, and
	// readReady takes a buffer only when data is there.
	rc  syscall.RawConn
	buf *[]byte
	// slot is the connection's key in its port's set (connset.go);
	// guarded by the port's mu.
	slot int32

	// born is when the port accepted the connection, in milliseconds
	// since monoBase, wrapping: Shutdown gives a connection younger than
	// firstDataGrace time for its first data (drain).
	born uint32

	// Parking (park.go): an idle connection may give up its goroutine
	// until the idle watcher sees data. The fields in idle belong to
	// whichever goroutine serves the connection; pstate hands it over.
	idle      idleState
	blockedAt atomic.Uint32 // the sweeper's epoch when the read began to wait; 0 while busy
	listed    uint32        // the latest epoch whose sweeper list holds the connection; belongs to the serving goroutine (sweep.go)

	ctxs atomic.Pointer[connContext] // Context (context.go); nil until asked for
}

// newConn makes the Conn for nc. It calls nothing on nc, since it runs on
// the accept goroutine, and a wrapped conn's methods may block (a PROXY
// protocol listener reads the header in RemoteAddr): setup does that on the
// connection's own goroutine.
func newConn(cfg *Config, p *Port, nc net.Conn) *Conn {
	c := &Conn{
		cfg:  cfg,
		port: p,
		raw:  nc,
		nc:   nc,
	}
	if p != nil {
		c.born = monoMillis()
	}
	return c
}

// setup asks the connection for its addresses, on the goroutine that
// serves it. net's own conns keep theirs, and a Conn reads them from raw
// when asked, which saves an idle connection 32 bytes; any other conn's
// are kept in the view, since its methods may block (a PROXY protocol
// listener reads the header in RemoteAddr) or change. A conn that has
// none gets a placeholder (the port's address for the local end), so
// that logging and errors never meet a nil address.
func (c *Conn) setup() {
	local, remote := c.raw.LocalAddr(), c.raw.RemoteAddr()
	if isNetsOwn(c.raw) && !isNilAddr(local) && !isNilAddr(remote) {
		return
	}
	if isNilAddr(local) {
		local = nil
		if c.port != nil && !isNilAddr(c.port.addr) {
			local = c.port.addr
		}
	}
	if isNilAddr(local) {
		local = unknownAddr{"unknown"}
	}
	if isNilAddr(remote) {
		remote = unknownAddr{local.Network()}
	}
	c.mu.Lock()
	v := c.viewLocked()
	v.local, v.remote = local, remote
	c.mu.Unlock()
}

// Protocol returns the protocol serving the connection; nil until
// BuildProtocol has returned.
func (c *Conn) Protocol() Protocol { return c.proto }

// Done returns a channel closed after ConnectionLost has returned.
func (c *Conn) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return closedChan
	}
	w := c.waitsLocked()
	if w.done == nil {
		w.done = make(chan struct{})
	}
	return w.done
}

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr {
	if v := c.view.Load(); v != nil && v.local != nil {
		return v.local
	}
	if isNetsOwn(c.raw) {
		return c.raw.LocalAddr()
	}
	return unknownLocal // not set up yet
}

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr {
	if v := c.view.Load(); v != nil && v.remote != nil {
		return v.remote
	}
	if isNetsOwn(c.raw) {
		return c.raw.RemoteAddr()
	}
	return unknownLocal // not set up yet
}

// unknownLocal stands for the address of a conn not yet set up.
var unknownLocal net.Addr = unknownAddr{"unknown"}

// Conn returns the underlying connection: a *tls.Conn when serving TLS;
// otherwise a net.Conn over the accepted one (whose NetConn method returns
// it, and whose SyscallConn is its descriptor). Deadlines set on it are
// the connection's read and write deadlines, as Transport describes.
// Reading from it directly bypasses the protocol.
func (c *Conn) Conn() net.Conn {
	if c.nc != c.raw {
		return c.nc
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.viewLocked()
}

// String describes the connection, e.g. "tcp 127.0.0.1:8080 <- 127.0.0.1:51234".
func (c *Conn) String() string {
	local, remote := c.LocalAddr(), c.RemoteAddr()
	if isNilAddr(local) {
		local = unknownLocal
	}
	if isNilAddr(remote) {
		remote = unknownAddr{local.Network()}
	}
	return fmt.Sprintf("%s %s <- %s", local.Network(), local, remote)
}

// serve runs on the connection's own goroutine from accept to the end.
func (c *Conn) serve(f Factory, useTLS, counted bool) {
	parked := false
	defer func() {
		if !parked {
			c.finish()
		}
	}()
	c.setup()
	if useTLS && !c.handshake() {
		return
	}
	p, called := c.build(f, !counted)
	c.proto = p
	if c.proto == nil {
		if called {
			c.countRefused()
		}
		c.closeNC()
		return
	}
	parked = c.run()
}

// handshake runs the TLS handshake, bounded by HandshakeTimeout or
// IdleTimeout, whichever is shorter. The
// *tls.Conn is built over the recording view of the raw connection, so
// that deadlines set on it reach netport (deadline.go).
func (c *Conn) handshake() bool {
	c.mu.Lock()
	v := c.viewLocked()
	c.mu.Unlock()
	tc := tls.Server(v, c.cfg.TLS)
	ctx := context.Background()
	d := c.cfg.handshakeTimeout()
	if idle := c.idleTimeout(); idle > 0 && (d <= 0 || idle < d) {
		d = idle // a handshake is reading too
	}
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		c.cfg.logger().Debug("netport: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		c.closeNC()
		return false
	}
	c.nc = tc
	return true
}

// build calls BuildProtocol, turning a panic into a nil protocol, and
// reports whether it called it. A port's
// connection that track did not count (mustStart) gets nil without a call
// once the port is closing (startBuild).
func (c *Conn) build(f Factory, mustStart bool) (p Protocol, called bool) {
	if c.port != nil {
		if mustStart && !c.port.startBuild() {
			return nil, false
		}
		defer c.port.endBuild()
		c.applyKeepAlive()
	}
	defer func() {
		if r := recover(); r != nil {
			c.logPanic("BuildProtocol", r)
			p = nil
		}
	}()
	called = true
	return f.BuildProtocol(c.RemoteAddr()), true
}

// run serves a connection whose protocol is known, then ends it. It
// reports true when the connection parked instead: another goroutine
// carries on (resumeServe), and the caller must not touch it again.
func (c *Conn) run() (parked bool) {
	if h, ok := c.proto.(handlerProtocol); ok {
		c.mu.Lock()
		c.handler = true
		if c.drainReq {
			// Shutdown came first, and woke the read with a deadline
			// in the past: the handler must see EOF, not that.
			c.restoreDeadlineLocked()
			c.drainContext()
			c.closeReadLocked()
		}
		c.mu.Unlock()
		c.runHandler(h)
	} else {
		// Before ConnectionMade, which may hand the connection to
		// writers on other goroutines: Write reads rc too.
		c.useRawRead()
		c.call("ConnectionMade", func() { c.proto.ConnectionMade(c) })
		if c.readLoop() {
			return true
		}
	}
	c.end()
	return false
}

// end closes the connection and calls ConnectionLost.
func (c *Conn) end() {
	c.setEnd(done(nil))
	c.endSend()
	c.closeNC()
	c.endContext()
	c.mu.Lock()
	reason := c.reason
	c.reported = true
	c.mu.Unlock()
	c.call("ConnectionLost", func() { c.proto.ConnectionLost(reason) })
}

func (c *Conn) runHandler(h handlerProtocol) {
	defer func() {
		if r := recover(); r != nil {
			c.logPanic("Handler", r)
			c.setEnd(lost(panicError(r)))
		}
	}()
	h.run(c)
}

// finish runs last on the connection's goroutine.
func (c *Conn) finish() {
	c.putBuf()
	c.leaveWatcher()
	c.mu.Lock()
	c.finished = true
	if c.waits != nil && c.waits.done != nil {
		close(c.waits.done)
	}
	c.mu.Unlock()
	if c.port != nil {
		c.port.forget(c)
	}
}

// call runs a protocol callback; a panic ends the connection.
func (c *Conn) call(name string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			c.logPanic(name, r)
			c.abort(panicError(r))
		}
	}()
	fn()
}

// deliver is call for DataReceived, without a closure on the hot path.
func (c *Conn) deliver(b []byte) {
	defer func() {
		if r := recover(); r != nil {
			c.logPanic("DataReceived", r)
			c.abort(panicError(r))
		}
	}()
	c.proto.DataReceived(b)
}

func panicError(r any) error {
	if err, ok := r.(error); ok {
		return fmt.Errorf("netport: panic: %w", err)
	}
	return fmt.Errorf("netport: panic: %v", r)
}

func (c *Conn) logPanic(where string, r any) {
	c.countPanic()
	c.cfg.logger().Error("netport: panic serving connection", "callback", where,
		"remote", c.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
}

// noteLocked refreshes unusual after a flag it mirrors has changed;
// called with mu held.
func (c *Conn) noteLocked() {
	c.unusual.Store(c.paused || c.drainReq || c.lingering || c.writeClosed)
}

// setEnd records why the connection ends, if nothing was recorded yet,
// and reports whether this call decided it.
func (c *Conn) setEnd(reason error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setEndLocked(reason)
}

// setEndLocked is setEnd with mu held.
func (c *Conn) setEndLocked(reason error) bool {
	if c.ending.Load() {
		return false
	}
	c.reason = reason
	c.ending.Store(true)
	if c.waits != nil && c.waits.end != nil {
		close(c.waits.end)
	}
	return true
}

func (c *Conn) idleTimeout() time.Duration {
	if c.cfg == nil {
		return 0
	}
	return c.cfg.IdleTimeout
}

// PauseProducing stops reading: no DataReceived until ResumeProducing.
// Data already read when it is called is delivered after ResumeProducing.
func (c *Conn) PauseProducing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.paused {
		c.paused = true
		c.waitsLocked().resume = make(chan struct{})
		c.noteLocked()
	}
}

// ResumeProducing undoes PauseProducing.
func (c *Conn) ResumeProducing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused {
		c.paused = false
		close(c.waits.resume)
		c.noteLocked()
	}
}

// isNetsOwn reports whether nc is one of net's own stream connections,
// whose methods never block on the peer.
func isNetsOwn(nc net.Conn) bool {
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}
