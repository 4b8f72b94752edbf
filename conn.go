package netport

import (
	"context"
	"crypto/tls"
	"errors"
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
	cfg    *Config
	port   *Port    // nil for an adopted connection
	raw    net.Conn // as accepted or adopted
	nc     net.Conn // what is served: raw, or TLS over it; set before proto
	local  net.Addr
	remote net.Addr
	bufs   *bufferPool
	proto  Protocol

	wmu sync.Mutex // serialises writes and the write side's close

	snd atomic.Pointer[sendState] // send queue and producer (sendqueue.go); nil until used

	ending atomic.Bool // set once the end is decided; later ends are ignored
	reason error       // guarded by mu: why it ends; set before ending (an abort may still replace it until reported)

	// unusual mirrors paused || drainReq || lingering || writeClosed,
	// refreshed under mu by noteLocked whenever one of them changes, so
	// that the per-read and per-write checks can skip mu while the
	// connection is simply reading and writing.
	unusual atomic.Bool

	// The fields are ordered so that a Conn fits a 288-byte allocation:
	// every idle connection keeps one.
	mu          sync.Mutex
	paused      bool          // guarded by mu
	drainReq    bool          // guarded by mu: Shutdown asked for Drain
	lingering   bool          // guarded by mu: LoseConnection sent FIN
	writeClosed bool          // guarded by mu: LoseWriteConnection sent FIN
	readClosed  bool          // guarded by mu: the peer sent FIN
	handler     bool          // guarded by mu: served by a Handler function
	reported    bool          // guarded by mu: ConnectionLost has been given reason
	parkReq     bool          // guarded by mu: the sweeper asked this connection to park
	finished    bool          // guarded by mu: ConnectionLost has returned (lazy.go)
	resume      chan struct{} // guarded by mu: closed by ResumeProducing
	waits       *connWaits    // guarded by mu: made when first needed (lazy.go)

	// Deadlines set through Conn (deadline.go). netport's own wake-ups
	// put userRD back afterwards; while it is set the connection does
	// not park.
	userRD   time.Time    // guarded by mu: the user's read deadline; zero: none
	userWD   atomic.Int64 // the user's write deadline in Unix nanoseconds; 0: none
	view     *userConn    // guarded by mu: what Conn returns over raw; nil until needed
	timeouts bool         // a Handler's conn applies IdleTimeout and WriteTimeout per call; set before serve runs

	// The readiness read: rc waits for data without holding a buffer, and
	// readFn (bound once, so no closure is allocated per read) takes a
	// buffer only when data is there.
	rc     syscall.RawConn
	readFn func(fd uintptr) bool
	buf    *[]byte
	rn     int
	rerr   error

	// Parking (park.go): an idle connection may give up its goroutine
	// until the idle watcher sees data. The fields in idle belong to
	// whichever goroutine serves the connection; pstate hands it over.
	pstate    atomic.Uint64
	idle      idleState
	blockedAt atomic.Uint32 // the sweeper's epoch when the read began to wait; 0 while busy
	listed    uint32        // the latest epoch whose sweeper list holds the connection; belongs to the serving goroutine (sweep.go)

	ctxs atomic.Pointer[connContext] // Context (context.go); nil until asked for
}

// newConn makes the Conn for nc. It calls nothing on nc, since it runs on
// the accept goroutine, and a wrapped conn's methods may block (a PROXY
// protocol listener reads the header in RemoteAddr): setup does that on the
// connection's own goroutine.
func newConn(cfg *Config, p *Port, nc net.Conn, bufs *bufferPool) *Conn {
	c := &Conn{
		cfg:  cfg,
		port: p,
		raw:  nc,
		nc:   nc,
		bufs: bufs,
	}
	return c
}

// setup asks the connection for its addresses, on the goroutine that
// serves it. A conn that has none gets a placeholder (the port's address
// for the local end), so that logging and errors never meet a nil address.
func (c *Conn) setup() {
	c.local = c.raw.LocalAddr()
	c.remote = c.raw.RemoteAddr()
	if isNilAddr(c.local) {
		c.local = nil
		if c.port != nil && !isNilAddr(c.port.addr) {
			c.local = c.port.addr
		}
	}
	if isNilAddr(c.local) {
		c.local = unknownAddr{"unknown"}
	}
	if isNilAddr(c.remote) {
		c.remote = unknownAddr{c.local.Network()}
	}
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
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

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
	local, remote := c.local, c.remote
	if local == nil {
		local = unknownAddr{"unknown"}
	}
	if remote == nil {
		remote = unknownAddr{local.Network()}
	}
	return fmt.Sprintf("%s %s <- %s", local.Network(), local, remote)
}

// serve runs on the connection's own goroutine from accept to the end.
func (c *Conn) serve(f Factory, useTLS bool) {
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
	c.proto = c.build(f, useTLS)
	if c.proto == nil {
		c.countRefused()
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
		c.cfg.logger().Debug("netport: TLS handshake failed", "remote", c.remote.String(), "err", err)
		c.closeNC()
		return false
	}
	c.nc = tc
	return true
}

// build calls BuildProtocol, turning a panic into a nil protocol. A port's
// TLS connection gets nil without a call once the port is closing
// (startBuild); every other one was counted at accept (track).
func (c *Conn) build(f Factory, afterHandshake bool) (p Protocol) {
	if c.port != nil {
		if afterHandshake && !c.port.startBuild() {
			return nil
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
	return f.BuildProtocol(c.remote)
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
		"remote", c.remote.String(), "panic", r, "stack", string(debug.Stack()))
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

func (c *Conn) writeTimeout() time.Duration {
	if c.cfg == nil {
		return 0
	}
	return c.cfg.WriteTimeout
}

// Write writes b, blocking until it is written, or with Config.WriteBuffer
// queueing what the socket does not take at once; see Transport.
func (c *Conn) Write(b []byte) (int, error) {
	if c.sendPath() {
		return c.sendWrite("write", b, nil, false)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writable("write"); err != nil {
		return 0, err
	}
	c.armWriteDeadline()
	n, err := c.nc.Write(b)
	if err != nil {
		c.fail(err)
	}
	return n, err
}

// WriteSequence writes bufs in order with one vectored write where the
// connection has one; see Transport.
func (c *Conn) WriteSequence(bufs [][]byte) error {
	if c.sendPath() {
		_, err := c.sendWrite("writev", nil, bufs, true)
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writable("writev"); err != nil {
		return err
	}
	c.armWriteDeadline()
	// WriteTo consumes the slice it is given, not the caller's.
	nb := net.Buffers(append([][]byte(nil), bufs...))
	if _, err := nb.WriteTo(c.nc); err != nil {
		c.fail(err)
		return err
	}
	return nil
}

// writable reports an error once the connection is ending or its write
// side is closed; called with wmu held.
func (c *Conn) writable(op string) error {
	if c.ending.Load() {
		return &net.OpError{Op: op, Net: c.local.Network(), Source: c.local, Addr: c.remote, Err: net.ErrClosed}
	}
	if !c.unusual.Load() {
		return nil // writeClosed is false: no need for mu
	}
	c.mu.Lock()
	wc := c.writeClosed
	c.mu.Unlock()
	if wc {
		return &net.OpError{Op: op, Net: c.local.Network(), Source: c.local, Addr: c.remote, Err: syscall.EPIPE}
	}
	return nil
}

// fail ends the connection after an I/O error.
func (c *Conn) fail(err error) {
	if c.setEnd(lost(err)) {
		c.closeNC()
		c.wake()
	}
}

// LoseConnection closes the connection after writes in flight. When data
// from the peer is waiting unread, or data written is not yet acknowledged
// by the peer, it first sends FIN and reads (and discards) until the peer
// closes too or LingerTimeout passes: closing at once would answer the
// peer's data, now or later, with a reset that could lose what was
// written. ConnectionLost gets ErrConnectionDone. Calling it again, or
// after the connection ended, does nothing and returns nil.
//
// With bytes queued (Config.WriteBuffer) or a producer registered, it
// returns at once and closes once the queue has gone out and the producer
// has been unregistered (Twisted's rule); writes meanwhile are still sent.
func (c *Conn) LoseConnection() error {
	c.mu.Lock()
	if c.handler {
		defer c.mu.Unlock()
		return c.closeReadLocked()
	}
	c.mu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.loseLater() {
		return nil // sendqueue.go calls it again once the queue has gone out
	}
	// close(2) would answer the peer's data with a reset and drop what
	// is still queued for the peer: then send FIN and read until the
	// peer's FIN instead. The end and that decision are made together
	// under mu, so that the read loop sees both or neither; the FIN,
	// which over TLS writes an alert and may block, is sent after.
	cw, canFIN := c.nc.(interface{ CloseWrite() error })
	c.mu.Lock()
	if !c.setEndLocked(done(nil)) {
		c.mu.Unlock()
		return nil
	}
	// A parked connection has no goroutine to linger or to call
	// ConnectionLost: give it one once the decision below is made.
	defer c.wake()
	linger := canFIN && !c.readClosed && (unreadData(c.raw) || unsentData(c.raw))
	if linger {
		c.lingering = true
		c.noteLocked()
		c.raw.SetReadDeadline(time.Now().Add(LingerTimeout))
	}
	writeClosed := c.writeClosed
	c.mu.Unlock()
	if linger && (writeClosed || sendFIN(c.nc, c.raw, cw) == nil) {
		return nil
	}
	return c.closeNC()
}

// closeReadLocked ends a Handler connection gracefully: the handler's
// next read sees EOF and it can still write its reply. Called with mu held.
func (c *Conn) closeReadLocked() error {
	if cr, ok := c.raw.(interface{ CloseRead() error }); ok && cr.CloseRead() == nil {
		return nil
	}
	c.unwatchLocked()
	return closeSocket(c.raw, false)
}

// StopProducing is LoseConnection, for Twisted's producer interface.
func (c *Conn) StopProducing() { c.LoseConnection() }

// AbortConnection closes the connection at once, discarding unsent data;
// a TCP peer sees a reset (see closeSocket for where the system can send
// one while another descriptor still holds the socket). ConnectionLost
// gets a reason matching both ErrConnectionAborted and ErrConnectionLost,
// also when it comes after a LoseConnection that is still lingering.
func (c *Conn) AbortConnection() error {
	c.abort(ErrConnectionAborted)
	return nil
}

// abort ends the connection at once with reason lost(cause); cause is
// ErrConnectionAborted or wraps it for an abort the user or Shutdown
// asked for, and a panic otherwise.
func (c *Conn) abort(cause error) {
	defer c.wake()
	c.mu.Lock()
	if !c.setEndLocked(lost(cause)) {
		// Already ending (perhaps lingering): close now all the same,
		// and say so unless ConnectionLost has its reason already.
		if c.lingering && !c.reported && errors.Is(cause, ErrConnectionAborted) {
			c.reason = lost(cause)
		}
	}
	c.unwatchLocked()
	c.mu.Unlock()
	// The raw connection, not TLS over it: tls.Conn.Close would try to
	// send close_notify first.
	closeSocket(c.raw, true)
}

// LoseWriteConnection half-closes the connection: it sends FIN after
// writes in flight and keeps reading. It returns an error wrapping
// ErrNotSupported when the connection cannot half-close.
func (c *Conn) LoseWriteConnection() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writable("close"); err != nil {
		return err
	}
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok {
		return &net.OpError{Op: "close", Net: c.local.Network(), Source: c.local, Addr: c.remote, Err: ErrNotSupported}
	}
	if c.closeWriteLater() {
		return nil // sendqueue.go calls it again once the queue has gone out
	}
	if err := sendFIN(c.nc, c.raw, cw); err != nil {
		return err
	}
	c.mu.Lock()
	c.writeClosed = true
	c.noteLocked()
	both := c.readClosed
	c.mu.Unlock()
	if both {
		// The peer's FIN came first: nothing is left to do either way.
		if c.setEnd(done(nil)) {
			c.closeNC()
			c.wake()
		}
	}
	return nil
}

// PauseProducing stops reading: no DataReceived until ResumeProducing.
// Data already read when it is called is delivered after ResumeProducing.
func (c *Conn) PauseProducing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.paused {
		c.paused = true
		c.resume = make(chan struct{})
		c.noteLocked()
	}
}

// ResumeProducing undoes PauseProducing.
func (c *Conn) ResumeProducing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused {
		c.paused = false
		close(c.resume)
		c.noteLocked()
	}
}

// drain is Shutdown's request. A protocol connection is woken with a read
// deadline in the past and answers on its own goroutine (Drain, or
// LoseConnection), which then puts back the deadline it had; a Handler
// connection has its read side closed.
func (c *Conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drainReq = true
	c.noteLocked()
	if c.handler {
		c.drainContext()
		c.closeReadLocked()
		return
	}
	c.raw.SetReadDeadline(aLongTimeAgo)
	select {
	case c.kickLocked() <- struct{}{}:
	default:
	}
	c.wake()
}

// sendFIN half-closes nc. Over TLS, the close_notify alert is followed
// by the FIN itself on the raw connection, which tls.Conn.CloseWrite does
// not send.
func sendFIN(nc, raw net.Conn, cw interface{ CloseWrite() error }) error {
	if err := cw.CloseWrite(); err != nil {
		return err
	}
	if nc != raw {
		if rcw, ok := raw.(interface{ CloseWrite() error }); ok {
			return rcw.CloseWrite()
		}
	}
	return nil
}
