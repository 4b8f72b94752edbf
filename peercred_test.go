package netport

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestPeerCredentialsOnUnixConnection(t *testing.T) {
	f := newEchoFactory()
	p := listen(t, nil, "unix", filepath.Join(t.TempDir(), "sock"), f)
	c := dial(t, p)
	tr := servedTransport(t, c, f)
	got, err := PeerCredentials(tr)
	if err != nil {
		t.Fatalf("PeerCredentials: %v", err)
	}
	want := PeerCred{PID: os.Getpid(), UID: os.Getuid(), GID: os.Getgid()}
	if got != want {
		t.Fatalf("PeerCredentials = %+v; want %+v", got, want)
	}
}

func TestPeerCredentialsNotSupportedOnTCP(t *testing.T) {
	f := newEchoFactory()
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	c := dial(t, p)
	tr := servedTransport(t, c, f)
	_, err := PeerCredentials(tr)
	var opErr *net.OpError
	if !errors.Is(err, ErrNotSupported) || !errors.As(err, &opErr) {
		t.Fatalf("PeerCredentials on tcp: %v; want a *net.OpError wrapping ErrNotSupported", err)
	}
	if _, err := PeerCredentials(&StringTransport{}); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("PeerCredentials on a StringTransport: %v; want ErrNotSupported", err)
	}
}

// servedTransport round-trips one byte over c and returns the Transport
// the server's protocol got.
func servedTransport(tb testing.TB, c net.Conn, f *echoFactory) Transport {
	tb.Helper()
	roundTrip(tb, c, []byte("x"))
	proto := recv(tb, f.built)
	proto.mu.Lock()
	defer proto.mu.Unlock()
	return proto.t
}
