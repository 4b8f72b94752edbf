package netport

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// newSocket makes a close-on-exec, non-blocking socket. macOS's socket(2)
// takes no SOCK_CLOEXEC, so the flag is set right after, under
// syscall.ForkLock so that no fork in between hands the descriptor to a
// child (as package net does on macOS).
func newSocket(family, sotype int) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, sotype, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("setnonblock", err)
	}
	return fd, nil
}
