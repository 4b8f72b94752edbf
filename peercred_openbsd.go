package netport

import (
	"os"

	"golang.org/x/sys/unix"
)

// peerCred reads SO_PEERCRED, which on OpenBSD is a struct sockpeercred of
// uid, gid and pid in that order (getsockopt(2)), unlike Linux's struct
// ucred; x/sys has no getter for it.
func peerCred(fd int) (PeerCred, error) {
	w, err := getsockoptWords(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return PeerCred{}, os.NewSyscallError("getsockopt SO_PEERCRED", err)
	}
	return PeerCred{UID: int(w[0]), GID: int(w[1]), PID: int(int32(w[2]))}, nil
}
