//go:build unix && (!linux || race)

package netport

import "syscall"

// recvNonblock reads from a descriptor the poller has found readable; see
// recv_linux.go for the raw variant used by non-race Linux builds.
func recvNonblock(fd int, b []byte) (int, syscall.Errno) {
	return readErrno(fd, b)
}
