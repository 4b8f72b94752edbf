//go:build darwin || freebsd || linux || netbsd || openbsd

package netport

import "net"

// PeerCredentials returns the pid, uid and gid of the peer of a unix
// socket connection, so that a server can refuse a user. It works on
// Linux, macOS, FreeBSD, OpenBSD and NetBSD (see PeerCred for what each
// kernel records); elsewhere it returns an error wrapping ErrNotSupported.
// t is the Transport a protocol was given (or any Transport whose Conn is
// a *net.UnixConn, TLS over one included). It returns an error wrapping
// ErrNotSupported for any other connection, and a *net.OpError wrapping
// the OS error when the kernel cannot tell.
func PeerCredentials(t Transport) (PeerCred, error) {
	nc := t.Conn()
	for {
		// A *tls.Conn, and the view a Conn gives of net's own conn.
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		nc = u.NetConn()
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return PeerCred{}, &net.OpError{Op: "peercred", Net: t.LocalAddr().Network(), Addr: t.RemoteAddr(), Err: ErrNotSupported}
	}
	fail := func(err error) (PeerCred, error) {
		return PeerCred{}, &net.OpError{Op: "peercred", Net: "unix", Source: uc.LocalAddr(), Addr: uc.RemoteAddr(), Err: err}
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return fail(err)
	}
	var cred PeerCred
	var gerr error
	if err := rc.Control(func(fd uintptr) { cred, gerr = peerCred(int(fd)) }); err != nil {
		return fail(err)
	}
	if gerr != nil {
		return fail(gerr)
	}
	return cred, nil
}
