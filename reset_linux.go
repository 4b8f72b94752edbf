//go:build linux && !386

package netport

import (
	"syscall"
	"unsafe"
)

// resetSocket sends a reset to a TCP socket's peer at once, whoever else
// holds the socket: connect(2) to an AF_UNSPEC address disconnects it,
// and Linux answers a disconnect of an open connection with a reset.
func resetSocket(fd int) error {
	sa := syscall.RawSockaddr{Family: syscall.AF_UNSPEC}
	_, _, errno := syscall.Syscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	if errno != 0 {
		return errno
	}
	return nil
}
