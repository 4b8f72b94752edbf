//go:build !linux

package netport

import "net"

// unreadData reports false: without Linux's SIOCINQ it cannot tell
// (unsentData makes a TCP connection linger all the same).
func unreadData(net.Conn) bool { return false }

// unsentData reports true for a TCP connection: without Linux's SIOCOUTQ,
// LoseConnection cannot tell whether a reset would drop data still on its
// way to the peer, so it lingers.
func unsentData(nc net.Conn) bool {
	_, ok := nc.(*net.TCPConn)
	return ok
}
