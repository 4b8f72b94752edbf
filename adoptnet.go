package netport

import (
	"crypto/tls"
	"net"
)

// AdoptListener returns a net.Listener serving a duplicate of fd, for a
// server that has its own accept loop: http.Server.Serve, a gRPC server's
// Serve, any Serve(net.Listener). fd and family are as for
// AdoptStreamPort, and so are the checks, in the same order, and the
// errors (a *net.OpError with Op "adopt" wrapping ErrUnsupportedAddressFamily,
// syscall.EBADF, syscall.ENOTSOCK, ErrUnsupportedSocketType,
// ErrAddressFamilyMismatch or ErrNotListening); on error no descriptor is
// left open.
//
// The caller keeps fd and may close it as soon as the call returns.
// Closing the listener closes only the duplicate: never shutdown(2), never
// a chmod or unlink of a unix socket file, so another holder of the socket
// (the process that handed it over, in a restart) keeps accepting. With
// Config.TLS set the listener is a tls.NewListener over the adopted one,
// and its connections do their handshake on their first Read or Write.
func (c *Config) AdoptListener(fd, family int) (net.Listener, error) {
	if err := c.check(true); err != nil {
		return nil, &net.OpError{Op: "adopt", Err: err}
	}
	ln, err := adoptListener(fd, family)
	if err != nil {
		return nil, err
	}
	return c.wrapTLS(ln), nil
}

// AdoptConn returns a net.Conn over a duplicate of fd, a connected stream
// socket, with the checks and errors of AdoptStreamConnection (a socket
// without a peer gives syscall.ENOTCONN). The caller keeps fd. Closing the
// connection closes only the duplicate: while fd (or another descriptor
// of the socket) is still open the peer sees nothing, so close fd too, or
// call CloseWrite first, when the peer must see the end.
// Config.TLS does not apply, as for AdoptStreamConnection.
func (c *Config) AdoptConn(fd, family int) (net.Conn, error) {
	if err := c.check(false); err != nil {
		return nil, &net.OpError{Op: "adopt", Err: err}
	}
	return adoptConn(fd, family)
}

// AdoptPacketConn returns a net.PacketConn over a duplicate of fd, a
// SOCK_DGRAM socket, with the checks and errors of AdoptDatagramPort. The
// caller keeps fd; closing the result closes only the duplicate, so
// another holder of the socket keeps reading.
func (c *Config) AdoptPacketConn(fd, family int) (net.PacketConn, error) {
	if err := c.check(false); err != nil {
		return nil, &net.OpError{Op: "adopt", Err: err}
	}
	return adoptPacketConn(fd, family)
}

// NetListen makes the listening socket Listen makes, with Backlog,
// ReusePort and UnixMode (set before the socket listens), and returns it
// as a plain net.Listener, with no Port: for a server that has its own
// accept loop. network is "tcp", "tcp4", "tcp6" or "unix". With
// Config.TLS set the listener is a tls.NewListener over the socket.
// Closing the listener removes a unix socket file it made, as
// net.Listen's does.
//
// Errors are those of Listen: a *net.OpError with Op "listen" wrapping the
// cause (errors.Is(err, syscall.EADDRINUSE) works); on error nothing is
// left open.
func (c *Config) NetListen(network, address string) (net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if err := c.check(true); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ln, file, err := c.listenStream(network, address)
	if err != nil {
		return nil, err
	}
	if ul, ok := ln.(*net.UnixListener); ok && file != nil {
		// A listener made from a descriptor does not remove its file on
		// Close; one made by net.Listen does, and this one stands for it.
		ul.SetUnlinkOnClose(true)
	}
	return c.wrapTLS(ln), nil
}

// wrapTLS serves TLS over ln when Config.TLS is set.
func (c *Config) wrapTLS(ln net.Listener) net.Listener {
	if c == nil || c.TLS == nil {
		return ln
	}
	return tls.NewListener(ln, c.TLS)
}

// AdoptListener calls Config.AdoptListener with a zero Config.
func AdoptListener(fd, family int) (net.Listener, error) {
	return (*Config)(nil).AdoptListener(fd, family)
}

// AdoptConn calls Config.AdoptConn with a zero Config.
func AdoptConn(fd, family int) (net.Conn, error) {
	return (*Config)(nil).AdoptConn(fd, family)
}

// AdoptPacketConn calls Config.AdoptPacketConn with a zero Config.
func AdoptPacketConn(fd, family int) (net.PacketConn, error) {
	return (*Config)(nil).AdoptPacketConn(fd, family)
}

// NetListen calls Config.NetListen with a zero Config.
func NetListen(network, address string) (net.Listener, error) {
	return (*Config)(nil).NetListen(network, address)
}
