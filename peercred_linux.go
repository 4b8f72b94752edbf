package netport

import (
	"os"

	"golang.org/x/sys/unix"
)

// peerCred reads SO_PEERCRED (socket(7)).
func peerCred(fd int) (PeerCred, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return PeerCred{}, os.NewSyscallError("getsockopt SO_PEERCRED", err)
	}
	return PeerCred{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}, nil
}
