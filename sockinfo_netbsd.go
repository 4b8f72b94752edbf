package netport

// soDomain is 0: NetBSD has no SO_DOMAIN (getsockopt(2)), so the family
// comes from getsockname(2).
const soDomain = 0

// tcpListenState reports ok false: NetBSD answers SO_ACCEPTCONN.
func tcpListenState(s int) (listening, ok bool) { return false, false }
