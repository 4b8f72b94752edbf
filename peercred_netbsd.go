package netport

import "os"

// NetBSD's LOCAL_PEEREID and the level it is read at, from <sys/un.h>
// (unix(4)); x/sys does not export them.
const (
	solLocal     = 0
	localPeerEID = 3
)

// peerCred reads LOCAL_PEEREID: a struct unpcbid of pid, effective uid and
// effective gid in that order, recorded at connect(2) and listen(2).
func peerCred(fd int) (PeerCred, error) {
	w, err := getsockoptWords(fd, solLocal, localPeerEID)
	if err != nil {
		return PeerCred{}, os.NewSyscallError("getsockopt LOCAL_PEEREID", err)
	}
	return PeerCred{PID: int(int32(w[0])), UID: int(w[1]), GID: int(w[2])}, nil
}
