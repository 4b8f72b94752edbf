package netport

import (
	"net"
)

// AdoptStreamPort serves a listening stream socket that someone else made:
// a descriptor from systemd, a parent process or a unix-socket handoff. fd
// is an AF_INET, AF_INET6 or AF_UNIX SOCK_STREAM socket on which listen(2)
// was called; family declares which.
//
// The call duplicates fd (close-on-exec, non-blocking) and serves the
// duplicate exactly as Listen serves a fresh socket, StartFactory included.
// The caller keeps fd and may close it as soon as the call returns. The
// port's Close closes only the duplicate: it never calls shutdown(2) and
// never changes or removes a unix socket file, so another holder of the
// socket keeps accepting.
//
// Before anything starts it checks, in this order: the family is known
// (ErrUnsupportedAddressFamily), fd is open (syscall.EBADF) and a socket
// (syscall.ENOTSOCK), the socket is a stream one (ErrUnsupportedSocketType),
// its own family is family (ErrAddressFamilyMismatch), and it is listening
// (ErrNotListening). Each error is a *net.OpError with Op "adopt" wrapping
// the cause; no descriptor is left open on any error path. A nil f or a
// Config it cannot use gives ErrInvalidConfig before fd is touched; a
// StartFactory that panics gives an error saying so.
//
// Adoption works on Linux, macOS and the BSDs. Where the kernel has no
// SO_DOMAIN (macOS, NetBSD) the family comes from getsockname(2); where it
// has no SO_ACCEPTCONN (macOS) a unix socket that was bound but never
// listened on passes as listening, and the port stops at its first accept
// with EINVAL. Elsewhere (Windows) every Adopt call returns a *net.OpError
// wrapping ErrNotSupported.
func (c *Config) AdoptStreamPort(fd, family int, f Factory) (*Port, error) {
	if err := c.checkStream(f); err != nil {
		return nil, &net.OpError{Op: "adopt", Err: err}
	}
	ln, err := adoptListener(fd, family)
	if err != nil {
		return nil, err
	}
	return c.serve("adopt", ln, f, nil)
}

// AdoptStreamConnection serves one connected stream socket, such as the
// socket an inetd-style service manager passes as standard input. It
// duplicates fd as AdoptStreamPort does, after the same checks (a socket
// that is not connected gives syscall.ENOTCONN), calls
// f.BuildProtocol(peer) on the caller's goroutine and serves the
// connection on a goroutine of its own; wait for Conn.Done to know it
// ended. A nil protocol closes the duplicate and returns ErrNoProtocol.
// StartFactory and StopFactory are never called for it, and no Port
// tracks it: Port.Shutdown does not reach it. Config.TLS does not apply:
// a handed-over connection is served as it is, since whoever accepted it
// may already have spoken on it. As AdoptStreamPort, it works on Linux,
// macOS and the BSDs, and returns ErrNotSupported elsewhere.
func (c *Config) AdoptStreamConnection(fd, family int, f Factory) (*Conn, error) {
	if err := c.checkStream(f); err != nil {
		return nil, &net.OpError{Op: "adopt", Err: err}
	}
	nc, err := adoptConn(fd, family)
	if err != nil {
		return nil, err
	}
	return c.serveConn(nc, f)
}

// serveConn serves one connection outside any port.
func (c *Config) serveConn(nc net.Conn, f Factory) (*Conn, error) {
	conn := newConn(c, nil, nc)
	conn.setup() // net's own conn: its addresses are at hand
	conn.proto, _ = conn.build(f, false)
	if conn.proto == nil {
		nc.Close()
		return nil, conn.opError("adopt", ErrNoProtocol)
	}
	go func() {
		parked := false
		defer func() {
			if !parked {
				conn.finish()
			}
		}()
		parked = conn.run()
	}()
	return conn, nil
}

// AdoptStreamPort calls Config.AdoptStreamPort with a zero Config.
func AdoptStreamPort(fd, family int, f Factory) (*Port, error) {
	return (*Config)(nil).AdoptStreamPort(fd, family, f)
}

// AdoptStreamConnection calls Config.AdoptStreamConnection with a zero
// Config.
func AdoptStreamConnection(fd, family int, f Factory) (*Conn, error) {
	return (*Config)(nil).AdoptStreamConnection(fd, family, f)
}

// SocketInfo describes a socket descriptor, as Inspect and Inherited report
// it.
type SocketInfo struct {
	FD        int    // the descriptor
	Name      string // its name from LISTEN_FDNAMES; "" when not named
	Family    int    // SO_DOMAIN (getsockname(2) on macOS, NetBSD): syscall.AF_INET, AF_INET6, AF_UNIX...
	Type      int    // SO_TYPE: syscall.SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET...
	Listening bool   // SO_ACCEPTCONN: listen(2) was called on it (on macOS, see AdoptStreamPort)
}
