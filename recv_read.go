//go:build unix && (race || (linux && 386) || !(darwin || freebsd || linux || netbsd || openbsd))

package netport

import "syscall"

// recvNonblock reads from a descriptor the poller has found readable,
// with read(2): in race builds (see recv_linux.go), on linux/386, and on
// the Unix systems netport does not otherwise support.
func recvNonblock(fd int, b []byte) (int, syscall.Errno) {
	return readErrno(fd, b)
}
