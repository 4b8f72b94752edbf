//go:build linux && !race && !386

package netport

import (
	"syscall"
	"unsafe"
)

// recvNonblock reads from a socket the poller has found readable.
//
// recv(2) with MSG_DONTWAIT cannot block, even if the descriptor lost
// O_NONBLOCK (a File taken from the connection and passed to exec can do
// that, as both share one open file description), so it can be a raw
// system call: the goroutine keeps its P rather than going through the
// scheduler's system-call hand-off twice per read, which is most of what
// netport's read costs above the kernel's own work. recv also takes a
// shorter path through the kernel than read(2).
//
// Race builds use syscall.Read instead (recv_read.go): only it tells the
// race detector that data written to a socket by one goroutine and read
// here by another orders their memory accesses. So does linux/386, where
// recvfrom is reached through socketcall(2) and the direct system call
// needs Linux 4.3.
//
// The error is a bare Errno (0 for none), so that the caller compares
// numbers rather than interfaces.
func recvNonblock(fd int, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd),
		uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_DONTWAIT, 0, 0)
	if errno == syscall.ENOTSOCK {
		// A syscall.Conn that is not a socket (a pipe, say).
		return readErrno(fd, b)
	}
	return int(n), errno
}
