package netport

import (
	"log/slog"
	"net"
	"strings"
)

// Ports log one Info line when they start listening and one when they
// stop, as Twisted's ports do, so that a server's log says what it served.

// logListening logs that a port listens on addr.
func logListening(l *slog.Logger, addr net.Addr, useTLS bool) {
	l.Info("netport: listening", "network", addrNetwork(addr), "addr", logAddr(addr), "kind", portKind(addr, useTLS))
}

// logStopped logs that a port stopped listening; err is the accept or
// read error that stopped it, nil after Close or a listener closed under
// the port.
func logStopped(l *slog.Logger, addr net.Addr, useTLS bool, err error) {
	args := []any{"network", addrNetwork(addr), "addr", logAddr(addr), "kind", portKind(addr, useTLS)}
	if err != nil {
		args = append(args, "err", err)
	}
	l.Info("netport: stopped listening", args...)
}

// portKind names a port as Twisted does: TCP, TLS, UNIX or UDP (and
// "memory" for an in-memory listener).
func portKind(addr net.Addr, useTLS bool) string {
	network := addrNetwork(addr)
	switch {
	case useTLS:
		return "TLS"
	case strings.HasPrefix(network, "tcp"):
		return "TCP"
	case strings.HasPrefix(network, "udp"):
		return "UDP"
	case strings.HasPrefix(network, "unix"):
		return "UNIX"
	}
	return network
}

func addrNetwork(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	return addr.Network()
}

// logAddr is addr.String(), or "<nil>" for no address: a listener of the
// caller's making may have none.
func logAddr(addr net.Addr) string {
	if addr == nil {
		return "<nil>"
	}
	return addr.String()
}
