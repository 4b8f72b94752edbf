package netport

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ListenMulticast is [Config.ListenMulticast] with a zero Config.
func ListenMulticast(network, address string, p DatagramProtocol, maxPacketSize int) (*DatagramPort, error) {
	return (*Config)(nil).ListenMulticast(network, address, p, maxPacketSize)
}

// ListenMulticast opens a UDP port meant to receive multicast datagrams,
// Twisted's listenMulticast: network is "udp4" or "udp6", address is
// HOST:PORT. A multicast group as HOST binds the wildcard address on PORT
// (as net.ListenMulticastUDP does, with SO_REUSEADDR) so that one port can
// serve several groups; the group is not joined: call JoinGroup. With
// c.ReusePort, several ports and processes may bind the same group port
// at once (Twisted's listenMultiple), and each receives every datagram
// sent to a group it joined.
//
// The result is an ordinary DatagramPort; JoinGroup and the other
// multicast calls work on any UDP port, from ListenPacket or adopted as
// well. Errors are those of ListenPacket; a network other than "udp4" and
// "udp6" wraps net.UnknownNetworkError, since a group belongs to one IP
// version.
func (c *Config) ListenMulticast(network, address string, p DatagramProtocol, maxPacketSize int) (*DatagramPort, error) {
	if network != "udp4" && network != "udp6" {
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	return c.ListenPacket(network, address, p, maxPacketSize)
}

// ListenMulticast records the call as a ListenPacket call would be, with
// the same Network and Address, and serves p on one end of a new
// in-memory packet pipe. It refuses a network other than "udp4" and
// "udp6" as Config.ListenMulticast does, without recording the call. The
// multicast calls on the port it returns fail with ErrNotSupported: a
// memory pipe has no groups.
func (r *MemoryReactor) ListenMulticast(network, address string, p DatagramProtocol, maxPacketSize int) (*DatagramPort, error) {
	if network != "udp4" && network != "udp6" {
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	return r.datagram(DatagramCall{Network: network, Address: address, Protocol: p, MaxPacketSize: maxPacketSize})
}

// ListenMulticast returns r.Err.
func (r RaisingReactor) ListenMulticast(string, string, DatagramProtocol, int) (*DatagramPort, error) {
	return nil, r.Err
}

// JoinGroup makes the port a member of the multicast group on interface
// ifi (nil: the system chooses, by its route to the group), so that
// datagrams sent to the group and the port's port number are delivered.
// An IPv4 group uses the IPv4 socket options, an IPv6 group the IPv6
// ones, through golang.org/x/net/ipv4 and ipv6.
//
// Errors are *net.OpError values with Op "join": a group that is not a
// multicast address wraps syscall.EINVAL; a memory or unixgram port
// ErrNotSupported; a closed port net.ErrClosed; otherwise the system's
// refusal (syscall.ENODEV with no route to the group and a nil ifi,
// syscall.EADDRINUSE for a group already joined on ifi).
func (d *DatagramPort) JoinGroup(ifi *net.Interface, group net.IP) error {
	return d.group("join", ifi, group, (*ipv4.PacketConn).JoinGroup, (*ipv6.PacketConn).JoinGroup)
}

// LeaveGroup undoes JoinGroup for group on ifi (nil: as JoinGroup chose).
// Errors are those of JoinGroup, with Op "leave"; leaving a group not
// joined is the system's error (syscall.EADDRNOTAVAIL on Linux).
func (d *DatagramPort) LeaveGroup(ifi *net.Interface, group net.IP) error {
	return d.group("leave", ifi, group, (*ipv4.PacketConn).LeaveGroup, (*ipv6.PacketConn).LeaveGroup)
}

func (d *DatagramPort) group(op string, ifi *net.Interface, group net.IP,
	f4 func(*ipv4.PacketConn, *net.Interface, net.Addr) error,
	f6 func(*ipv6.PacketConn, *net.Interface, net.Addr) error) error {
	addr := &net.UDPAddr{IP: group}
	if !group.IsMulticast() {
		return d.opError(op, addr, fmt.Errorf("netport: %v is not a multicast group: %w", group, syscall.EINVAL))
	}
	uc, err := d.multicastConn()
	if err != nil {
		return d.opError(op, addr, err)
	}
	if group.To4() != nil {
		err = f4(ipv4.NewPacketConn(uc), ifi, addr)
	} else {
		err = f6(ipv6.NewPacketConn(uc), ifi, addr)
	}
	if err != nil {
		return d.opError(op, addr, err)
	}
	return nil
}

// SetMulticastInterface sets the interface that multicast datagrams the
// port sends leave by (nil: the system's choice, by route).
// Errors are *net.OpError values with Op "set": a memory or unixgram port
// wraps ErrNotSupported, a closed port net.ErrClosed.
func (d *DatagramPort) SetMulticastInterface(ifi *net.Interface) error {
	return d.multicastOption(func(c *ipv4.PacketConn) error { return c.SetMulticastInterface(ifi) },
		func(c *ipv6.PacketConn) error { return c.SetMulticastInterface(ifi) })
}

// SetMulticastTTL sets the time to live of the multicast datagrams the port
// sends (the hop limit on an IPv6 socket); the system's default is 1, this
// network only. Errors are those of SetMulticastInterface; a TTL outside
// 0-255 is the system's syscall.EINVAL.
func (d *DatagramPort) SetMulticastTTL(ttl int) error {
	return d.multicastOption(func(c *ipv4.PacketConn) error { return c.SetMulticastTTL(ttl) },
		func(c *ipv6.PacketConn) error { return c.SetMulticastHopLimit(ttl) })
}

// SetMulticastLoopback sets whether the multicast datagrams the port sends
// are also delivered to members on this host, the port itself included
// (the system's default is on). Errors are those of
// SetMulticastInterface.
func (d *DatagramPort) SetMulticastLoopback(on bool) error {
	return d.multicastOption(func(c *ipv4.PacketConn) error { return c.SetMulticastLoopback(on) },
		func(c *ipv6.PacketConn) error { return c.SetMulticastLoopback(on) })
}

// multicastOption sets a sending option with the IPv4 or the IPv6 call,
// as the socket's local address is one or the other.
func (d *DatagramPort) multicastOption(f4 func(*ipv4.PacketConn) error, f6 func(*ipv6.PacketConn) error) error {
	uc, err := d.multicastConn()
	if err != nil {
		return d.opError("set", nil, err)
	}
	if a, ok := d.addr.(*net.UDPAddr); ok && a.IP.To4() != nil {
		err = f4(ipv4.NewPacketConn(uc))
	} else {
		err = f6(ipv6.NewPacketConn(uc))
	}
	if err != nil {
		return d.opError("set", nil, err)
	}
	return nil
}

// multicastConn returns the port's UDP socket, or why it has none.
func (d *DatagramPort) multicastConn() (*net.UDPConn, error) {
	uc, ok := d.pc.(*net.UDPConn)
	if !ok {
		return nil, fmt.Errorf("%w: multicast needs a UDP socket", ErrNotSupported)
	}
	if d.closed.Load() {
		return nil, net.ErrClosed
	}
	return uc, nil
}
