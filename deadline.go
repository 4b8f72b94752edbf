package netport

import (
	"net"
	"reflect"
	"sync/atomic"
	"syscall"
	"time"
)

// Deadlines. net leaves a connection's deadlines to its user, and so does
// netport: a deadline set through Transport.Conn means what the user set.
// netport's own uses of the read deadline (IdleTimeout, the park request,
// Shutdown's drain, the linger after LoseConnection) are told apart from
// it because the user's is recorded here, by the view Conn returns, and
// put back after each of them:
//
//   - a read deadline the user set is the connection's read deadline
//     together with IdleTimeout's: the earlier of the two applies;
//   - a connection with a user read deadline never parks, so that its own
//     goroutine is there when the deadline passes (setting one wakes a
//     parked connection);
//   - once it passes, the read fails and the connection ends:
//     ConnectionLost gets ErrConnectionLost wrapping os.ErrDeadlineExceeded;
//   - a write deadline is the earlier of the user's and WriteTimeout's for
//     each Write; one that passes fails the Write and ends the connection.
//
// A Handler's serve reads and writes its conn itself: there IdleTimeout
// and WriteTimeout are set before each Read and Write unless serve has set
// a deadline of its own, which then applies alone.

// userConn is what Conn returns over the accepted connection, and what a
// *tls.Conn is built over: a net.Conn whose deadlines netport records.
type userConn struct {
	net.Conn // the connection as accepted

	c *Conn

	// The deadlines set through it. netport's own wake-ups put rd back
	// afterwards; while it is set the connection does not park. They
	// live here, not in Conn, since only a connection whose user asked
	// for Conn can have them.
	rd time.Time    // guarded by c.mu: the user's read deadline; zero: none
	wd atomic.Int64 // the user's write deadline in Unix nanoseconds; 0: none

	// The addresses of a conn that is not net's own (or has none), set
	// by setup before the protocol is built; nil: read them from c.raw.
	local, remote net.Addr
}

// NetConn returns the connection as accepted (a *net.TCPConn, say).
func (u *userConn) NetConn() net.Conn { return u.Conn }

// SyscallConn returns the raw connection of the accepted one, or an error
// wrapping ErrNotSupported when it has none.
func (u *userConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := u.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, u.opError("raw-conn", ErrNotSupported)
}

// CloseWrite half-closes the connection, or returns an error wrapping
// ErrNotSupported when the accepted connection cannot.
func (u *userConn) CloseWrite() error {
	if cw, ok := u.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return u.opError("close", ErrNotSupported)
}

// CloseRead shuts the reading side, or returns an error wrapping
// ErrNotSupported when the accepted connection cannot.
func (u *userConn) CloseRead() error {
	if cr, ok := u.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return u.opError("close", ErrNotSupported)
}

// Close closes the connection; the peer sees the close even while another
// descriptor holds the socket (closeSocket).
func (u *userConn) Close() error {
	u.c.unwatch()
	return closeSocket(u.Conn, false, true)
}

// SetDeadline sets both deadlines; see SetReadDeadline and SetWriteDeadline.
func (u *userConn) SetDeadline(t time.Time) error {
	if err := u.SetReadDeadline(t); err != nil {
		return err
	}
	return u.SetWriteDeadline(t)
}

// SetReadDeadline sets the user's read deadline; the zero time clears it.
func (u *userConn) SetReadDeadline(t time.Time) error { return u.setUserReadDeadline(t) }

// SetWriteDeadline sets the user's write deadline; the zero time clears it.
func (u *userConn) SetWriteDeadline(t time.Time) error { return u.setUserWriteDeadline(t) }

// Read reads from the accepted connection. For a Handler with an
// IdleTimeout it first sets the read deadline, unless serve set one.
func (u *userConn) Read(b []byte) (int, error) {
	if c := u.c; c.timeouts {
		if d := c.idleTimeout(); d > 0 {
			c.mu.Lock()
			if u.rd.IsZero() {
				u.Conn.SetReadDeadline(time.Now().Add(d))
			}
			c.mu.Unlock()
		}
	}
	return u.Conn.Read(b)
}

// Write writes to the accepted connection. For a Handler with a
// WriteTimeout it first sets the write deadline, unless serve set one.
func (u *userConn) Write(b []byte) (int, error) {
	if c := u.c; c.timeouts {
		if d := c.writeTimeout(); d > 0 && u.wd.Load() == 0 {
			u.Conn.SetWriteDeadline(time.Now().Add(d))
		}
	}
	return u.Conn.Write(b)
}

func (u *userConn) opError(op string, err error) error { return u.c.opError(op, err) }

// viewLocked returns the view over raw, making it on first use; called
// with mu held.
func (c *Conn) viewLocked() *userConn {
	v := c.view.Load()
	if v == nil {
		v = &userConn{Conn: c.raw, c: c}
		c.view.Store(v)
	}
	return v
}

// userRDLocked returns the user's read deadline, zero for none; called
// with mu held.
func (c *Conn) userRDLocked() time.Time {
	if v := c.view.Load(); v != nil {
		return v.rd
	}
	return time.Time{}
}

// handlerConn is the conn a Handler's serve is given: the served conn
// itself, or, when IdleTimeout or WriteTimeout is set, one that applies
// them to each Read and Write (over TLS, the *tls.Conn already reads and
// writes through the view). An adopted connection's handler always gets
// the view, whose Close shuts the socket down: the caller may still hold
// the original descriptor, and close(2) alone would not reach the peer.
func (c *Conn) handlerConn() net.Conn {
	c.timeouts = c.idleTimeout() > 0 || c.writeTimeout() > 0
	if c.nc != c.raw || !c.timeouts && c.port != nil {
		return c.nc
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.viewLocked()
}

// setUserReadDeadline records the user's read deadline and makes it the
// socket's, with IdleTimeout's when that comes first. While one of
// netport's own wake-ups is under way the goroutine serving the connection
// puts it in place afterwards (restoreDeadlineLocked).
func (u *userConn) setUserReadDeadline(t time.Time) error {
	c := u.c
	c.mu.Lock()
	u.rd = t
	var err error
	switch {
	case c.handler:
		err = c.raw.SetReadDeadline(t)
	case c.parkReq || c.drainReq || c.lingering || c.ending.Load():
	default:
		err = c.raw.SetReadDeadline(c.readDeadlineLocked())
	}
	c.mu.Unlock()
	if !t.IsZero() {
		// A parked connection takes a goroutine again, which keeps the
		// deadline; with one set it does not park.
		c.wake()
	}
	return err
}

// readDeadlineLocked is the read deadline the connection's reads wait
// with: the earlier of the user's and IdleTimeout's; called with mu held.
func (c *Conn) readDeadlineLocked() time.Time {
	t := c.userRDLocked()
	if c.idleTimeout() > 0 && !c.handler && c.idle.at != 0 {
		now := time.Now()
		at := now.Add(time.Duration(c.idle.at - monoSince(now)))
		if t.IsZero() || at.Before(t) {
			t = at
		}
	}
	return t
}

// setUserWriteDeadline records the user's write deadline and sets it; the
// next Write arms WriteTimeout's when that comes first.
func (u *userConn) setUserWriteDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = max(t.UnixNano(), 1)
	}
	u.wd.Store(ns)
	return u.c.raw.SetWriteDeadline(t)
}

// armWriteDeadline sets WriteTimeout's deadline before a Write, or the
// user's when that comes first; without a WriteTimeout the user's is
// already on the socket.
func (c *Conn) armWriteDeadline() {
	d := c.writeTimeout()
	if d <= 0 {
		return
	}
	t := time.Now().Add(d)
	if v := c.view.Load(); v != nil {
		if u := v.wd.Load(); u != 0 && u < t.UnixNano() {
			t = time.Unix(0, u)
		}
	}
	c.raw.SetWriteDeadline(t)
}

// closeNC closes the connection as served (over TLS, close_notify goes
// first), after taking it out of the idle watcher; the socket itself is
// closed by closeSocket, directly or through the view's Close.
func (c *Conn) closeNC() error {
	c.unwatch()
	if c.nc == c.raw {
		c.mu.Lock()
		shared := c.sharedLocked()
		c.mu.Unlock()
		return closeSocket(c.raw, false, shared)
	}
	return c.nc.Close()
}

// sharedLocked reports whether the socket may have another descriptor
// than netport's, so that closing it must shut it down first
// (closeSocket): an adopted connection's original may stay open, and user
// code that has reached the conn (through Conn, or as a Handler's) may
// have taken a File. A socket the port accepted and kept to itself has
// no other. Called with mu held.
func (c *Conn) sharedLocked() bool {
	return c.port == nil || c.handler || c.view.Load() != nil
}

// unknownAddr stands for an address a conn does not give (a custom
// listener's conn whose LocalAddr or RemoteAddr returns nil).
type unknownAddr struct{ network string }

func (a unknownAddr) Network() string { return a.network }
func (a unknownAddr) String() string  { return "unknown" }

// isNilAddr reports whether a is nil or a typed nil pointer.
func isNilAddr(a net.Addr) bool {
	if a == nil {
		return true
	}
	v := reflect.ValueOf(a)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
