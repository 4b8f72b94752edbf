package netport

import "net"

// ServeConn serves one connection that is already open, such as one the
// program dialled itself: the far side of a proxy, say, which can then
// register as a producer on the near side (see Producer). It calls
// f.BuildProtocol(nc.RemoteAddr()) on the caller's goroutine and serves
// the connection on a goroutine of its own, as a port serves what it
// accepts; wait for Conn.Done to know it ended. The connection is the
// Conn's from then on: it is closed when the Conn ends, and at once, with
// ErrNoProtocol returned, when BuildProtocol returns nil. WriteBuffer,
// MaxWriteBuffer, IdleTimeout, WriteTimeout and ReadBufferSize apply;
// Config.TLS does not (wrap nc with tls.Client first), and no Port tracks
// the connection, so Port.Shutdown does not reach it.
func (c *Config) ServeConn(nc net.Conn, f Factory) (*Conn, error) {
	if nc == nil {
		return nil, &net.OpError{Op: "serve", Err: errNilConn}
	}
	if f == nil {
		nc.Close()
		return nil, &net.OpError{Op: "serve", Net: nc.LocalAddr().Network(), Source: nc.LocalAddr(), Addr: nc.RemoteAddr(), Err: errNilFactory}
	}
	conn, err := c.serveConn(nc, f)
	if err != nil {
		if oe, ok := err.(*net.OpError); ok {
			oe.Op = "serve"
		}
		return nil, err
	}
	return conn, nil
}

// ServeConn calls Config.ServeConn with a zero Config.
func ServeConn(nc net.Conn, f Factory) (*Conn, error) {
	return (*Config)(nil).ServeConn(nc, f)
}
