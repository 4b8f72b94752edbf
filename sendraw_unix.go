//go:build unix

package netport

import (
	"net"
	"syscall"
)

// rawSendConn returns the raw connection through which Write offers bytes
// to the socket without waiting: only for net's own socket types, whose
// Write is exactly a write(2) on the descriptor. Any other connection
// (TLS, in-memory, a user's wrapper) gets nil and is written through its
// own Write.
func rawSendConn(nc net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// writeNow is the direct write, called by the poller with the socket's
// write lock held: it sends what the socket takes of s.wb and never waits.
func (s *sendState) writeNow(fd uintptr) bool {
	for len(s.wb) > 0 {
		n, errno := writeErrno(int(fd), s.wb)
		switch errno {
		case 0:
			s.wb = s.wb[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return true
		default:
			s.werr = errno
			return true
		}
	}
	return true
}

// plainWrite is syscall.Write with its error as a bare Errno (0 for none).
func plainWrite(fd int, b []byte) (int, syscall.Errno) {
	n, err := syscall.Write(fd, b)
	if err != nil {
		errno, ok := err.(syscall.Errno)
		if !ok {
			errno = syscall.EIO
		}
		return 0, errno
	}
	return n, 0
}
