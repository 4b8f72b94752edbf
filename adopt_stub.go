//go:build !darwin && !freebsd && !linux && !netbsd && !openbsd

package netport

import (
	"net"
	"os"
	"strconv"
)

// Descriptor adoption needs a Unix socket descriptor to check and
// duplicate; here every call answers ErrNotSupported.

func adoptListener(fd, family int) (net.Listener, error) {
	return nil, &net.OpError{Op: "adopt", Err: ErrNotSupported}
}

func adoptConn(fd, family int) (net.Conn, error) {
	return nil, &net.OpError{Op: "adopt", Err: ErrNotSupported}
}

func adoptPacketConn(fd, family int) (net.PacketConn, error) {
	return nil, &net.OpError{Op: "adopt", Err: ErrNotSupported}
}

// Inspect reports what descriptor fd is, on Linux, macOS and the BSDs. On
// this system it always returns a *net.OpError with Op "inspect" wrapping
// ErrNotSupported.
func Inspect(fd int) (SocketInfo, error) {
	return SocketInfo{}, &net.OpError{Op: "inspect", Err: ErrNotSupported}
}

// Inherited returns the sockets a service manager passed to this process
// by systemd's socket-activation protocol, on Linux, macOS and the BSDs.
// On this system it returns nil,
// nil when LISTEN_PID is unset or names another process (nothing was
// passed to this one), and an error wrapping ErrNotSupported when sockets
// were passed to it.
func Inherited() ([]SocketInfo, error) {
	if pid, err := strconv.Atoi(listenPID()); err != nil || pid != os.Getpid() {
		return nil, nil
	}
	return nil, &net.OpError{Op: "inherit", Err: ErrNotSupported}
}
