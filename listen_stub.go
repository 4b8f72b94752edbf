//go:build !linux

package netport

import (
	"net"
	"os"
	"syscall"
)

// listenStream makes a fresh listening stream socket with net.Listen.
// Backlog, ReusePort and UnixMode need Linux here and give ErrNotSupported.
func (c *Config) listenStream(network, address string) (net.Listener, *socketFile, error) {
	if c != nil && (c.Backlog != 0 || c.ReusePort || c.UnixMode != 0) {
		return nil, nil, &net.OpError{Op: "listen", Net: network, Err: ErrNotSupported}
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, nil, err
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		// The port removes the file itself, as on Linux.
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

func reserveFD() int   { return -1 }
func releaseFD(fd int) {}

func dupFile(sc syscall.Conn, name string) (*os.File, error) { return nil, ErrNotSupported }

// unreadData reports false: without SIOCINQ it cannot tell (unsentData
// makes a TCP connection linger all the same).
func unreadData(net.Conn) bool { return false }

// unsentData reports true for a TCP connection: without SIOCOUTQ,
// LoseConnection cannot tell whether a reset would drop data still on its
// way to the peer, so it lingers.
func unsentData(nc net.Conn) bool {
	_, ok := nc.(*net.TCPConn)
	return ok
}
