package netport

import (
	"context"
	"net"
)

// ListenPacket is [Config.ListenPacket] with a zero Config.
func ListenPacket(network, address string, p DatagramProtocol, maxPacketSize int) (*DatagramPort, error) {
	return (*Config)(nil).ListenPacket(network, address, p, maxPacketSize)
}

// ListenPacket opens a fresh datagram socket on address and serves it with
// p, reading datagrams of up to maxPacketSize bytes (0 means
// DefaultMaxPacketSize). network is "udp", "udp4", "udp6" or "unixgram".
//
// c.ReusePort sets SO_REUSEPORT on a udp socket before it binds. For
// unixgram, c.UnixMode (when not zero) is applied to the fresh socket file
// right after bind, and Close removes that file, unless it has been
// replaced by another since.
//
// Errors are *net.OpError values with Op "listen": a network other than
// the four above wraps net.UnknownNetworkError, an address already taken
// matches syscall.EADDRINUSE, a protocol value already served by another
// live datagram port matches ErrProtocolInUse, and a nil p matches
// ErrNoProtocol. Nothing is left open on error.
func (c *Config) ListenPacket(network, address string, p DatagramProtocol, maxPacketSize int) (*DatagramPort, error) {
	unixgram := false
	switch network {
	case "udp", "udp4", "udp6":
	case "unixgram":
		unixgram = true
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if err := c.checkDatagramArgs(p, maxPacketSize); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	var lc net.ListenConfig
	if c != nil && c.ReusePort && !unixgram {
		lc.Control = setReusePort
	}
	pc, err := lc.ListenPacket(context.Background(), network, address)
	if err != nil {
		return nil, err
	}
	laddr := pc.LocalAddr()
	var file *socketFile
	if unixgram {
		if file, err = boundSocketFile(address, c.unixMode()); err != nil {
			pc.Close()
			return nil, &net.OpError{Op: "listen", Net: network, Addr: laddr, Err: err}
		}
	}
	d, err := c.serveDatagram(pc, p, maxPacketSize, file)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: laddr, Err: err}
	}
	return d, nil
}
