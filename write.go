// The write side of a Conn: Write, WriteSequence and the half-close.

package netport

import (
	"net"
	"syscall"
	"time"
)

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
	n, err := c.writeFirst(b) // write_fast.go
	if err == nil && (n == 0 || n < len(b)) {
		c.armWriteDeadline()
		var m int
		m, err = c.nc.Write(b[n:])
		n += m
	}
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
		return c.opError(op, net.ErrClosed)
	}
	if !c.unusual.Load() {
		return nil // writeClosed is false: no need for mu
	}
	c.mu.Lock()
	wc := c.writeClosed
	c.mu.Unlock()
	if wc {
		return c.opError(op, syscall.EPIPE)
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
		return c.opError("close", ErrNotSupported)
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
