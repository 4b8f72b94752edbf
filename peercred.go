package netport

// PeerCred is the identity of the process at the other end of a unix
// socket connection, as the kernel recorded it when the connection was
// made (SO_PEERCRED).
type PeerCred struct {
	PID, UID, GID int
}
