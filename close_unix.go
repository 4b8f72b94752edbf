//go:build unix

package netport

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// closeSocket closes a connection's socket so that the peer sees it even
// while another descriptor still refers to the socket (an adopted
// connection's original, kept open by whoever passed it, as inetd does;
// or a File taken from the connection): close(2) alone ends nothing then.
// So when shared says that may be so, net's own connections are shut
// down first: with reset (an abort) a TCP peer gets a reset where the
// system can send one on request (resetSocket), and EOF otherwise;
// without, the peer reads EOF after what was written. When netport's
// descriptor is the only one, close(2) does the same by itself: with reset
// after SO_LINGER 0 (a reset), without it a FIN. This is for connections
// only: a listening or datagram socket is never shut down, as another
// holder may still use it.
func closeSocket(nc net.Conn, reset, shared bool) error {
	var sc syscall.Conn
	tcp := false
	switch c := nc.(type) {
	case *net.TCPConn:
		if reset {
			c.SetLinger(0)
		}
		sc, tcp = c, true
	case *net.UnixConn:
		sc = c
	}
	if sc != nil && shared {
		if rc, err := sc.SyscallConn(); err == nil {
			// Functions that capture nothing: a closure over reset would
			// be allocated on every close.
			if reset && tcp {
				rc.Control(resetOrShutdownFD)
			} else {
				rc.Control(shutdownFD)
			}
		}
	}
	return nc.Close()
}

func shutdownFD(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RDWR) }

func resetOrShutdownFD(fd uintptr) {
	if resetSocket(int(fd)) != nil {
		shutdownFD(fd)
	}
}
