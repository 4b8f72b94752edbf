//go:build darwin || freebsd || linux || netbsd || openbsd

package netport

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// datagramCanReadMsg reports whether datagramReadMsg can read from pc:
// recvmsg(2) sets MSG_TRUNC in the flags it returns when a datagram did not
// fit (on Linux, macOS and the BSDs alike), so the read buffer needs no
// spare byte.
func datagramCanReadMsg(pc net.PacketConn) bool {
	switch pc.(type) {
	case *net.UDPConn, *net.UnixConn:
		return true
	}
	return false
}

// datagramReadMsg reads one datagram from pc, a *net.UDPConn or a
// *net.UnixConn, into buf, and reports whether the kernel cut it to fit.
func datagramReadMsg(pc net.PacketConn, buf []byte) (n int, from net.Addr, truncated bool, err error) {
	var flags int
	switch c := pc.(type) {
	case *net.UDPConn:
		var addr *net.UDPAddr
		n, _, flags, addr, err = c.ReadMsgUDP(buf, nil)
		if addr != nil {
			from = addr
		}
	case *net.UnixConn:
		var addr *net.UnixAddr
		n, _, flags, addr, err = c.ReadMsgUnix(buf, nil)
		if addr != nil {
			from = addr
		}
	default:
		return 0, nil, false, &net.OpError{Op: "read", Net: "datagram", Err: syscall.EINVAL}
	}
	return n, from, flags&unix.MSG_TRUNC != 0, err
}
