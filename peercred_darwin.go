package netport

import (
	"os"

	"golang.org/x/sys/unix"
)

// peerCred reads LOCAL_PEERCRED for the uid and gid and LOCAL_PEERPID for
// the pid (unix(4) on macOS). The effective gid is cr_groups[0].
func peerCred(fd int) (PeerCred, error) {
	x, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return PeerCred{}, os.NewSyscallError("getsockopt LOCAL_PEERCRED", err)
	}
	pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	if err != nil {
		return PeerCred{}, os.NewSyscallError("getsockopt LOCAL_PEERPID", err)
	}
	return xucredPeer(x, pid), nil
}

// xucredPeer turns a struct xucred and a pid into a PeerCred.
func xucredPeer(x *unix.Xucred, pid int) PeerCred {
	cred := PeerCred{PID: pid, UID: int(x.Uid)}
	if x.Ngroups > 0 {
		cred.GID = int(x.Groups[0])
	}
	return cred
}
