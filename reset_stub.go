//go:build unix && (!linux || 386)

package netport

// resetSocket cannot disconnect a socket on request here: AbortConnection
// then shuts the socket down, and while another descriptor holds it the
// peer sees EOF rather than a reset.
func resetSocket(int) error { return ErrNotSupported }
