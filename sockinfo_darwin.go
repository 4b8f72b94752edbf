package netport

import "golang.org/x/sys/unix"

// soDomain is 0: macOS has no SO_DOMAIN (getsockopt(2)), so the family
// comes from getsockname(2).
const soDomain = 0

// tcpsListen is TCPS_LISTEN of <netinet/tcp_fsm.h>, the state
// TCP_CONNECTION_INFO reports for a listening socket; x/sys does not
// export the TCP states.
const tcpsListen = 1

// tcpListenState reports whether a TCP socket is listening, from its TCP
// state (macOS answers TCP_CONNECTION_INFO, not SO_ACCEPTCONN); ok is false
// for a socket that is not TCP.
func tcpListenState(s int) (listening, ok bool) {
	info, err := unix.GetsockoptTCPConnectionInfo(s, unix.IPPROTO_TCP, unix.TCP_CONNECTION_INFO)
	if err != nil {
		return false, false
	}
	return info.State == tcpsListen, true
}
