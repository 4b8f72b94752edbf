//go:build !darwin && !freebsd && !linux && !netbsd && !openbsd

package netport

import (
	"net"
	"os"
	"syscall"
)

// listenStream makes a fresh listening stream socket with net.Listen.
// Backlog, ReusePort and UnixMode need a Unix socket descriptor: set here,
// they give ErrNotSupported rather than being silently ignored.
func (c *Config) listenStream(network, address string) (net.Listener, *socketFile, error) {
	if c != nil && (c.Backlog != 0 || c.ReusePort || c.UnixMode != 0) {
		return nil, nil, &net.OpError{Op: "listen", Net: network, Err: ErrNotSupported}
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, nil, err
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		// The port removes the file itself, as on Unix.
		ul.SetUnlinkOnClose(false)
		file, err := boundSocketFile(address, 0)
		if err != nil {
			ln.Close()
			return nil, nil, &net.OpError{Op: "listen", Net: network, Err: err}
		}
		return ln, file, nil
	}
	return ln, nil, nil
}

// setReusePort refuses Config.ReusePort where there is no SO_REUSEPORT.
func setReusePort(network, address string, rc syscall.RawConn) error {
	return ErrNotSupported
}

// reserveFD reserves nothing: the descriptor shedding of the accept loop
// is for Unix descriptors.
func reserveFD() int   { return -1 }
func releaseFD(fd int) {}

// dupFile refuses: Port.File hands a Unix descriptor to a child process.
func dupFile(sc syscall.Conn, name string) (*os.File, error) { return nil, ErrNotSupported }
