//go:build freebsd || linux || netbsd || openbsd

package netport

import (
	"os"

	"golang.org/x/sys/unix"
)

// newSocket makes a close-on-exec, non-blocking socket in one call.
func newSocket(family, sotype int) (int, error) {
	fd, err := unix.Socket(family, sotype|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}
