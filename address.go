//go:build darwin || freebsd || linux || netbsd || openbsd

package netport

import (
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// networkName returns the Go network name of a socket of the given family
// and type, or "" when Go has none. The names are family-precise ("tcp4",
// not "tcp") because an adopted socket has exactly one family, and error
// messages should say which: an AF_INET stream socket is "tcp4", an AF_INET6
// one "tcp6" (even when it also accepts IPv4 clients), datagram sockets are
// "udp4" and "udp6", and AF_UNIX sockets are "unix", "unixgram" or
// "unixpacket".
func networkName(family, sotype int) string {
	switch family {
	case unix.AF_INET, unix.AF_INET6:
		suffix := "4"
		if family == unix.AF_INET6 {
			suffix = "6"
		}
		switch sotype {
		case unix.SOCK_STREAM:
			return "tcp" + suffix
		case unix.SOCK_DGRAM:
			return "udp" + suffix
		}
	case unix.AF_UNIX:
		switch sotype {
		case unix.SOCK_STREAM:
			return "unix"
		case unix.SOCK_DGRAM:
			return "unixgram"
		case unix.SOCK_SEQPACKET:
			return "unixpacket"
		}
	}
	return ""
}

// familyName returns the C name of an address family, such as "AF_INET6",
// or "address family N" for one netport does not know.
func familyName(family int) string {
	switch family {
	case unix.AF_INET:
		return "AF_INET"
	case unix.AF_INET6:
		return "AF_INET6"
	case unix.AF_UNIX:
		return "AF_UNIX"
	}
	return "address family " + strconv.Itoa(family)
}

// typeName returns the C name of a socket type, such as "SOCK_DGRAM", or
// "socket type N" for one netport does not know.
func typeName(sotype int) string {
	switch sotype {
	case unix.SOCK_STREAM:
		return "SOCK_STREAM"
	case unix.SOCK_DGRAM:
		return "SOCK_DGRAM"
	case unix.SOCK_SEQPACKET:
		return "SOCK_SEQPACKET"
	case unix.SOCK_RAW:
		return "SOCK_RAW"
	}
	return "socket type " + strconv.Itoa(sotype)
}

// sockaddrToAddr converts a socket address to the net.Addr that Go's own
// sockets of type sotype report, or returns nil when there is none: an
// unknown family, or an unnamed unix socket (whose empty name would only
// blur an error message).
func sockaddrToAddr(sa unix.Sockaddr, sotype int) net.Addr {
	var ip netip.Addr
	var port int
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		ip, port = netip.AddrFrom4(sa.Addr), sa.Port
	case *unix.SockaddrInet6:
		ip, port = netip.AddrFrom16(sa.Addr).WithZone(zoneName(sa.ZoneId)), sa.Port
	case *unix.SockaddrUnix:
		// x/sys reports an unnamed socket as "@", like an abstract one
		// with an empty name, which Linux never gives out.
		if sa.Name == "" || sa.Name == "@" {
			return nil
		}
		return &net.UnixAddr{Name: sa.Name, Net: networkName(unix.AF_UNIX, sotype)}
	default:
		return nil
	}
	ap := netip.AddrPortFrom(ip, uint16(port))
	if sotype == unix.SOCK_DGRAM {
		return net.UDPAddrFromAddrPort(ap)
	}
	return net.TCPAddrFromAddrPort(ap)
}

// zoneName returns the interface name of an IPv6 zone index, or the index
// itself in decimal when the interface is gone, as package net does.
func zoneName(index uint32) string {
	if index == 0 {
		return ""
	}
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(index), 10)
}
