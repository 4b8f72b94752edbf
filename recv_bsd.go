//go:build (darwin || freebsd || netbsd || openbsd) && !race

package netport

import "syscall"

// recvNonblock reads from a socket the poller has found readable, with
// recv(2) and MSG_DONTWAIT (recv_unix.go), which cannot block even if the
// descriptor lost O_NONBLOCK. These systems allow no raw system call
// (macOS and OpenBSD go through libc), so unlike Linux's it goes through
// the scheduler's system-call hand-off, as syscall.Read does.
func recvNonblock(fd int, b []byte) (int, syscall.Errno) {
	return recvDontwait(fd, b)
}
