package netport

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// unreadData reports whether bytes from the peer wait unread in the
// socket's receive queue.
func unreadData(nc net.Conn) bool { return queued(nc, unix.SIOCINQ) }

// unsentData reports whether bytes written on a TCP connection are not yet
// acknowledged by the peer: data from the peer that arrives after close(2)
// is answered with a reset, which would drop them.
func unsentData(nc net.Conn) bool {
	if _, ok := nc.(*net.TCPConn); !ok {
		return false
	}
	return queued(nc, unix.SIOCOUTQ)
}

// queued returns whether the socket queue that the ioctl req measures
// holds any bytes.
func queued(nc net.Conn, req uint) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	rc.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), req)
	})
	return n > 0
}
