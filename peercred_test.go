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
	roundTrip(t, c, []byte("x"))
	proto := recv(t, f.built)
	proto.mu.Lock()
	tr := proto.t
	proto.mu.Unlock()
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
	roundTrip(t, c, []byte("x"))
	proto := recv(t, f.built)
	proto.mu.Lock()
	tr := proto.t
	proto.mu.Unlock()
	_, err := PeerCredentials(tr)
	var opErr *net.OpError
	if !errors.Is(err, ErrNotSupported) || !errors.As(err, &opErr) {
		t.Fatalf("PeerCredentials on tcp: %v; want a *net.OpError wrapping ErrNotSupported", err)
	}
	if _, err := PeerCredentials(&StringTransport{}); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("PeerCredentials on a StringTransport: %v; want ErrNotSupported", err)
	}
}
