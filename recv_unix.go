//go:build darwin || freebsd || linux || netbsd || openbsd

package netport

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// recvDontwait is recv(2) with MSG_DONTWAIT, through x/sys: the read of
// the BSDs and macOS (recv_bsd.go), built on Linux too so that it is
// tested there. On the BSDs it does not allocate: Recvfrom's address
// buffer stays on its stack there (go build -gcflags=-m), and neither a
// TCP nor a unix stream socket reports a source address, so there is no
// Sockaddr to make. On Linux the buffer escapes and a unix peer's address
// is reported, which is why Linux has its own raw call. A descriptor
// that is not a socket is read with read(2). The error is a bare Errno
// (0 for none).
func recvDontwait(fd int, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, err := unix.Recvfrom(fd, b, unix.MSG_DONTWAIT)
	if err == nil {
		return n, 0
	}
	errno, ok := err.(syscall.Errno)
	if !ok {
		errno = syscall.EIO
	}
	if errno == syscall.ENOTSOCK {
		return readErrno(fd, b)
	}
	return 0, errno
}
