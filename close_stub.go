//go:build !unix

package netport

import "net"

// closeSocket closes a connection's socket; with reset a TCP peer sees a
// reset. There is no descriptor to share here, so close is enough.
func closeSocket(nc net.Conn, reset, _ bool) error {
	if tcp, ok := nc.(*net.TCPConn); ok && reset {
		tcp.SetLinger(0)
	}
	return nc.Close()
}
