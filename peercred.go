package netport

// PeerCred is the identity of the process at the other end of a unix
// socket connection, as the kernel recorded it when the connection was
// made: SO_PEERCRED on Linux and OpenBSD, LOCAL_PEERCRED on macOS and
// FreeBSD, LOCAL_PEEREID on NetBSD. UID and GID are the effective ones.
// PID is 0 where the kernel does not record it (FreeBSD before 13).
type PeerCred struct {
	PID, UID, GID int
}
