// Ending a Conn: LoseConnection, AbortConnection and Shutdown's request.

package netport

import (
	"errors"
	"net"
	"time"
)

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
	if err := c.closeNC(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	// The end decided above also ends the read loop of a connection
	// whose peer has half-closed, and that goroutine may have closed the
	// socket first: the close asked for has happened.
	return nil
}

// closeReadLocked ends a Handler connection gracefully: the handler's
// next read sees EOF and it can still write its reply. Called with mu held.
func (c *Conn) closeReadLocked() error {
	if cr, ok := c.raw.(interface{ CloseRead() error }); ok && cr.CloseRead() == nil {
		return nil
	}
	c.unwatchLocked()
	return closeSocket(c.raw, false, c.sharedLocked())
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
	shared := c.sharedLocked()
	c.mu.Unlock()
	// The raw connection, not TLS over it: tls.Conn.Close would try to
	// send close_notify first.
	closeSocket(c.raw, true, shared)
}

// firstDataGrace is how long Shutdown waits for the first data of a
// connection it finds freshly accepted and silent. A client sends its
// request right after the handshake, so at Shutdown it may be on the way
// to a connection the port has just accepted: closing that connection now
// would lose the request, and the client would see its connection end
// unanswered, as in a restart that hands the listening socket over.
// net/http waits for such connections too (five seconds); one second
// covers a request in flight, a retransmission included, without making
// every Shutdown with a silent client wait long.
const firstDataGrace = time.Second

// young reports whether the connection was accepted less than
// firstDataGrace ago.
func (c *Conn) young() bool {
	return c.port != nil && monoMillis()-c.born < uint32(firstDataGrace/time.Millisecond)
}

// heardFirst is called by the serving goroutine after the first data
// has reached the protocol: a request that Shutdown postponed until then
// is answered now, on the next turn of the read loop.
func (c *Conn) heardFirst() {
	c.idle.heard = true
	c.mu.Lock()
	c.heard = true
	if c.drainLater {
		c.drainLater = false
		c.drainReq = true
		c.noteLocked()
	}
	c.mu.Unlock()
}

// drain is Shutdown's request. A protocol connection is woken with a read
// deadline in the past and answers on its own goroutine (Drain, or
// LoseConnection), which then puts back the deadline it had; a Handler
// connection has its read side closed.
//
// A connection that is young (see firstDataGrace) and has not yet given
// its protocol any data is asked later, and drain reports true: a
// protocol connection once its first data has been delivered
// (heardFirst), any connection when Shutdown calls drain again with force
// set, after the grace. A Handler's reads are its own, so a young Handler
// connection always waits for force. With force set, drain asks only a
// connection that it postponed.
func (c *Conn) drain(force bool) (postponed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case force && !c.drainLater:
		return false
	case !force && !c.heard && c.young():
		c.drainLater = true
		return true
	}
	c.drainLater = false
	c.drainReq = true
	c.noteLocked()
	if c.handler {
		c.drainContext()
		c.closeReadLocked()
		return false
	}
	c.raw.SetReadDeadline(aLongTimeAgo)
	select {
	case c.kickLocked() <- struct{}{}:
	default:
	}
	c.wake()
	return false
}
