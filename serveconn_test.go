package netport

import (
	"errors"
	"io"
	"net"
	"testing"
)

func TestServeConnErrors(t *testing.T) {
	if _, err := ServeConn(nil, newEchoFactory()); err == nil {
		t.Fatal("ServeConn(nil): nil error; want one")
	}
	for _, tt := range []struct {
		name string
		f    Factory
		want error
	}{
		{"nil factory", nil, errNilFactory},
		{"nil protocol", FactoryFunc(func(net.Addr) Protocol { return nil }), ErrNoProtocol},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln := NewMemoryListener()
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				c, _ := ln.Accept()
				accepted <- c
			}()
			client, err := ln.Dial()
			if err != nil {
				t.Fatal(err)
			}
			server := recv(t, accepted)
			_, err = ServeConn(server, tt.f)
			var oe *net.OpError
			if !errors.Is(err, tt.want) || !errors.As(err, &oe) || oe.Op != "serve" {
				t.Fatalf("ServeConn: %v; want a *net.OpError \"serve\" wrapping %v", err, tt.want)
			}
			if _, err := client.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("peer read after the failed ServeConn: %v; want io.EOF (closed)", err)
			}
		})
	}
}

// TestServeConnEcho: a dialled connection served with a protocol behaves
// as an accepted one.
func TestServeConnEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	f := newEchoFactory()
	conn, err := (&Config{WriteBuffer: 1024}).ServeConn(nc, f)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	roundTrip(t, peer, []byte("served"))
	conn.LoseConnection()
	waitClosed(t, conn.Done(), "the served connection's end")
	if reason := recv(t, recv(t, f.built).lost); !errors.Is(reason, ErrConnectionDone) {
		t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
	}
}
