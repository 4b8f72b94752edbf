//go:build linux && !race && !386

package netport

import (
	"syscall"
	"unsafe"
)

// sendNoWait reports that writeErrno is send(2) with MSG_DONTWAIT, which
// cannot block: the blocking Write may then offer its bytes first
// (write_fast.go).
const sendNoWait = true

// writeErrno writes to a socket without waiting, for the send queue's
// direct write and its flusher.
//
// send(2) with MSG_DONTWAIT cannot block, even if the descriptor lost
// O_NONBLOCK, so it can be a raw system call that keeps the goroutine's P,
// as recvNonblock does for reads; MSG_NOSIGNAL turns a write to a closed
// peer into EPIPE without a signal. Race builds use syscall.Write
// (send_other.go), whose annotations tell the race detector that socket
// I/O orders memory. The error is a bare Errno (0 for none).
func writeErrno(fd int, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(fd),
		uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
	if errno == syscall.ENOTSOCK {
		return plainWrite(fd, b)
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}
