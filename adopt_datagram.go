package netport

import "net"

// AdoptDatagramPort serves a datagram socket that someone else made, with
// p, reading at most maxPacketSize bytes of each datagram (0 means
// DefaultMaxPacketSize). family is AF_INET or AF_INET6, or AF_UNIX for a
// unixgram socket. Ownership and the checks are those of AdoptStreamPort,
// with SOCK_DGRAM as the type and no listening check. Closing the port
// closes only the duplicate, so another holder keeps reading. As
// AdoptStreamPort, it works on Linux, macOS and the BSDs, and returns
// ErrNotSupported elsewhere.
func (c *Config) AdoptDatagramPort(fd, family int, p DatagramProtocol, maxPacketSize int) (*DatagramPort, error) {
	if err := c.checkDatagramArgs(p, maxPacketSize); err != nil {
		return nil, &net.OpError{Op: "adopt", Err: err}
	}
	pc, err := adoptPacketConn(fd, family)
	if err != nil {
		return nil, err
	}
	d, err := c.servePacket(pc, p, maxPacketSize)
	if err != nil {
		return nil, &net.OpError{Op: "adopt", Net: pc.LocalAddr().Network(), Addr: pc.LocalAddr(), Err: err}
	}
	return d, nil
}

// AdoptDatagramPort calls Config.AdoptDatagramPort with a zero Config.
func AdoptDatagramPort(fd, family int, p DatagramProtocol, maxPacketSize int) (*DatagramPort, error) {
	return (*Config)(nil).AdoptDatagramPort(fd, family, p, maxPacketSize)
}
