package netport

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerCred reads LOCAL_PEERCRED (unix(4) on FreeBSD): a struct xucred whose
// cr_groups[0] is the effective gid. Since FreeBSD 13 its last field, a
// union that x/sys declares as an unnamed pointer, holds cr_pid; earlier
// kernels leave it zero, so PID is 0 there.
func peerCred(fd int) (PeerCred, error) {
	x, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return PeerCred{}, os.NewSyscallError("getsockopt LOCAL_PEERCRED", err)
	}
	// pid_t is the union's first 32 bits, whatever the byte order.
	pid := *(*int32)(unsafe.Add(unsafe.Pointer(x), unsafe.Sizeof(*x)-unsafe.Sizeof(uintptr(0))))
	cred := PeerCred{PID: int(pid), UID: int(x.Uid)}
	if x.Ngroups > 0 {
		cred.GID = int(x.Groups[0])
	}
	return cred, nil
}
