//go:build linux

package netport

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// listenerFD returns a descriptor of a fresh listening socket, owned by
// the test.
func listenerFD(tb testing.TB, network, address string) (fd int, family int, addr net.Addr) {
	tb.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		tb.Fatalf("net.Listen: %v", err)
	}
	f, err := ln.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		tb.Fatalf("File: %v", err)
	}
	addr = ln.Addr()
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
		tb.Cleanup(func() { os.Remove(address) })
	}
	ln.Close()
	tb.Cleanup(func() { f.Close() })
	switch network {
	case "tcp4":
		family = syscall.AF_INET
	case "tcp6":
		family = syscall.AF_INET6
	default:
		family = syscall.AF_UNIX
	}
	return int(f.Fd()), family, addr
}

func TestAdoptStreamPortServesLikeAFreshPort(t *testing.T) {
	nets := []struct{ network, address string }{
		{"tcp4", "127.0.0.1:0"},
		{"unix", filepath.Join(t.TempDir(), "adopted")},
	}
	if hasIPv6() {
		nets = append(nets, struct{ network, address string }{"tcp6", "[::1]:0"})
	}
	for _, tt := range nets {
		t.Run(tt.network, func(t *testing.T) {
			fd, family, addr := listenerFD(t, tt.network, tt.address)
			f := &countingFactory{newEchoFactory(), make(chan struct{}, 1), make(chan struct{}, 1)}
			p, err := AdoptStreamPort(fd, family, f)
			if err != nil {
				t.Fatalf("AdoptStreamPort: %v", err)
			}
			recv(t, f.starts)
			if p.Addr().String() != addr.String() {
				t.Fatalf("Addr = %v; want %v", p.Addr(), addr)
			}
			c := dial(t, p)
			roundTrip(t, c, []byte("adopted"))
			shutdown(t, p)
			recv(t, f.stops)
			if tt.network == "unix" {
				if _, err := os.Stat(tt.address); err != nil {
					t.Fatalf("adopted unix socket file after Shutdown: %v; want it left in place", err)
				}
			}
		})
	}
}

func TestAdoptStreamConnection(t *testing.T) {
	f, client := connectedFile(t)

	fact := &countingFactory{newEchoFactory(), make(chan struct{}, 1), make(chan struct{}, 1)}
	var remote net.Addr
	fn := FactoryFunc(func(a net.Addr) Protocol { remote = a; return fact.BuildProtocol(a) })
	c, err := AdoptStreamConnection(int(f.Fd()), syscall.AF_INET, fn)
	if err != nil {
		t.Fatalf("AdoptStreamConnection: %v", err)
	}
	f.Close()
	if remote.String() != client.LocalAddr().String() {
		t.Fatalf("BuildProtocol(%v); want the peer %v", remote, client.LocalAddr())
	}
	roundTrip(t, client, []byte("one connection"))
	c.LoseConnection()
	waitClosed(t, c.Done(), "the adopted connection to end")
	proto := recv(t, fact.built)
	if reason := recv(t, proto.lost); !errors.Is(reason, ErrConnectionDone) {
		t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
	}
	if n, err := client.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("client read after LoseConnection: %d, %v; want EOF", n, err)
	}
	// StartFactory and StopFactory are never called for a connection.
	select {
	case <-fact.starts:
		t.Fatal("StartFactory called for an adopted connection")
	default:
	}
}

func TestAdoptStreamConnectionNilProtocol(t *testing.T) {
	f, _ := connectedFile(t)
	before := countFDs(t)
	_, err := AdoptStreamConnection(int(f.Fd()), syscall.AF_INET, FactoryFunc(func(net.Addr) Protocol { return nil }))
	if !errors.Is(err, ErrNoProtocol) {
		t.Fatalf("AdoptStreamConnection with a nil protocol: %v; want ErrNoProtocol", err)
	}
	if after := countFDs(t); after != before {
		t.Fatalf("open descriptors: %d after; want %d", after, before)
	}
}

// connectedFile returns the server end of a fresh loopback TCP connection
// as a file, and the client end.
func connectedFile(tb testing.TB) (*os.File, net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	f, err := server.(*net.TCPConn).File()
	server.Close()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f, client
}
